#!/bin/sh
# build-binary.sh OUT [GOOS GOARCH]: THE command that builds dubboreach's one binary, used by the
# Dockerfile (`RUN hack/build-binary.sh /out/dubboreach $TARGETOS $TARGETARCH`), by `make build`
# and by test/image, so that what the tests check is what the image ships: a static binary
# (CGO_ENABLED=0: no libc, no dynamic loader, runs on distroless/static), reproducible paths
# (-trimpath), no symbol table or DWARF (-s -w), and the version stamped in.
#
# VERSION and COMMIT come from the environment (the Dockerfile's ARGs, the Makefile's variables);
# without them, from git when the source is a checkout, else "dev" and "unknown".
# GOOS and GOARCH default to the build machine's. POSIX sh: it runs in any build image.
set -eu

if [ $# -ne 1 ] && [ $# -ne 3 ]; then
	echo "usage: $0 OUT [GOOS GOARCH]   e.g. $0 bin/dubboreach linux arm64" >&2
	exit 2
fi
out=$1
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
goos=${2:-$(go env GOOS)}
goarch=${3:-$(go env GOARCH)}
if [ -z "$goos" ] || [ -z "$goarch" ]; then
	echo "$0: empty GOOS or GOARCH ('$goos' '$goarch'): pass both, e.g. linux amd64" >&2
	exit 2
fi

cd "$(dirname "$0")/.."
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
pkg=github.com/dubboreach/dubboreach/internal/version

CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath \
	-ldflags "-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit" \
	-o "$out" ./cmd/dubboreach
