#!/usr/bin/env bash
# Installs everything dubboreach's tests need on a Debian machine with Go, idempotently:
# Debian packages (ZooKeeper, Curator, promtool, BIRD, ...) and tool binaries built from their Go
# modules into ./bin (kube-apiserver and etcd for envtest, helm, golangci-lint).
# Fast when everything is present; loud when something cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/bin"
mkdir -p "$BIN"

# --- Debian packages -------------------------------------------------------------------------
# zookeeper (+ its JRE): the registry the auditor reads; libcurator-discovery-java: Apache
# Curator's ServiceDiscovery, which writes Dubbo 3's application-level instances in tests;
# prometheus: promtool for the alert tests; bird2, frr, iproute2, net-tools: renderer tests check
# (bird -p, vtysh --dryrun) or apply
# routes for real; chromium: dashboard browser tests; iptables: the lab's masquerade and hostPort
# DNAT (test/lab); maven: builds the lab's real Dubbo providers and consumers (test/lab/java);
# bird2 and gobgpd are also the real BGP peers of the speaker's tests (routes/bgp).
APT_PACKAGES=(zookeeper libcurator-discovery-java prometheus bird2 frr iproute2 net-tools chromium iptables maven gobgpd)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-tools: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# BIRD's package starts a daemon we do not want; the tests run bird in parse-only mode.
for unit in bird gobgpd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
    systemctl stop "$unit" || true
  fi
done

# --- Binaries built from Go modules (hack/tools/go.mod keeps them out of the main module) ------
build_tool() { # name module-dir package
  local name=$1 dir=hack/tools/$2 pkg=$3 stamp="$BIN/.$1.stamp" want
  want=$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-16)
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  echo "install-tools: building $name from its Go module (a few minutes the first time)"
  (cd "$dir" && go build -trimpath -o "$BIN/$name" "$pkg")
  echo "$want" > "$stamp"
}
build_tool etcd kube ./etcd
build_tool kube-apiserver kube ./kube-apiserver
build_tool helm helm helm.sh/helm/v3/cmd/helm
build_tool golangci-lint lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint

# --- Maven artifacts: real Apache Dubbo for the lab (test/lab/java) ---------------------------
# Fetches Dubbo 2.7/3.3 and their ZooKeeper clients from Maven Central into ~/.m2 and builds the
# lab's mains; the lab's tests then rebuild offline (mvn -o) only when a source changed. The
# .built markers are the ones test/lab checks (dubbo.go, buildJava).
lab_java() {
  local dir=test/lab/java m fresh=1
  for m in dubbo33 dubbo27; do
    if [ ! -e "$dir/$m/target/lib/.built" ] || \
       [ -n "$(find "$dir" -path '*/target' -prune -o -type f -newer "$dir/$m/target/lib/.built" -print -quit)" ]; then
      fresh=0
    fi
  done
  [ "$fresh" = 1 ] && return
  echo "install-tools: fetching Apache Dubbo from Maven Central and building test/lab/java (a minute the first time)"
  mvn -B -q -f "$dir/pom.xml" -DskipTests clean package
  for m in dubbo33 dubbo27; do touch "$dir/$m/target/lib/.built"; done
}
command -v mvn >/dev/null || { echo "install-tools: mvn is still missing after install" >&2; exit 1; }
lab_java

for t in java javac promtool bird birdc gobgpd gobgp vtysh ip route iptables mvn; do
  command -v "$t" >/dev/null || { echo "install-tools: $t is still missing after install" >&2; exit 1; }
done
