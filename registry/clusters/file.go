// Package clusters lets one auditor judge a ZooKeeper that several Kubernetes clusters and VMs
// share: the clusters file (which clusters, where their state comes from, their pod-route facts),
// the ownership of an address (which cluster's pod is behind it, or that this cannot be told),
// and judging a registry against all of them (docs/clusters.md).
//
// Clusters very often share the default pod network (10.244.0.0/16, 192.168.0.0/16): an
// address must never be judged, called stale or corrected against the wrong cluster's nodes.
package clusters

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/dubboreach/dubboreach/routes"
)

// Kind is the kind of a clusters file; its apiVersion is routes.FabricAPIVersion.
const Kind = "Clusters"

// MaxClusters bounds a clusters file: each cluster is a watch on its API server and a route table.
const MaxClusters = 64

// maxFileBytes bounds what is read: a clusters file is written by a person.
const maxFileBytes = 4 << 20

// Cluster is one cluster of a clusters file, validated.
type Cluster struct {
	// Name identifies the cluster in findings, tables, metrics and Events: a DNS label.
	Name string
	// Exactly one source of cluster state: Kubeconfig (with an optional Context), Inventory, or
	// InCluster. Paths are absolute (relative ones are resolved against the clusters file).
	Kubeconfig string
	Context    string
	Inventory  string
	InCluster  bool
	// Fabric holds the cluster's pod-route facts together with the shared data-center facts
	// (reachable, unreachable), so that routes.Build judges the cluster as a fabric file would.
	Fabric *routes.Fabric
	// BGPStatusNamespace is where the cluster's `dubboreach publish` keeps its status objects
	// (podRoutes.publish: bgp, a cluster read from an API server): they say which routes are
	// announced. Empty for an in-cluster cluster: $POD_NAMESPACE.
	BGPStatusNamespace string
	// Correct is false when this auditor judges the cluster but leaves its corrections to
	// another auditor (one auditor per cluster, all sharing the registry).
	Correct bool
}

// File is a validated clusters file.
type File struct {
	// Reachable and Unreachable are the shared data-center facts.
	Reachable   []netip.Prefix
	Unreachable []netip.Prefix
	Clusters    []Cluster
}

// Names returns the cluster names in file order.
func (f *File) Names() []string {
	out := make([]string, len(f.Clusters))
	for i, c := range f.Clusters {
		out[i] = c.Name
	}
	return out
}

// document mirrors the YAML; it is decoded strictly, so that a typo is an error naming its path.
type document struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata,omitempty"`
	Spec       struct {
		Reachable   []string      `json:"reachable,omitempty"`
		Unreachable []string      `json:"unreachable,omitempty"`
		Clusters    []clusterItem `json:"clusters"`
	} `json:"spec"`
}

type clusterItem struct {
	Name        string          `json:"name"`
	Kubeconfig  string          `json:"kubeconfig,omitempty"`
	Context     string          `json:"context,omitempty"`
	Inventory   string          `json:"inventory,omitempty"`
	InCluster   bool            `json:"inCluster,omitempty"`
	Correct     *bool           `json:"correct,omitempty"`
	ServiceCIDR string          `json:"serviceCIDR,omitempty"`
	PodRoutes   json.RawMessage `json:"podRoutes,omitempty"`
	BGP         json.RawMessage `json:"bgp,omitempty"`
	BGPStatusNS string          `json:"bgpStatusNamespace,omitempty"`
}

// nameRE is a DNS label (RFC 1123): safe as a metrics label value, in JSON, in file names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Load reads and validates a clusters file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clusters file: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a clusters document. name (the file's path) is used in errors and is the
// base of relative kubeconfig and inventory paths. Every error names the file, the field and
// the offending value, and says what is expected.
func Parse(name string, data []byte) (*File, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: %d bytes is too large for a clusters file (limit %d)", name, len(data), maxFileBytes)
	}
	const see = "(see docs/clusters.md for the format)"
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s", name, clean(err), see)
	}
	var doc document
	strictErrs, err := kjson.UnmarshalStrict(js, &doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s", name, clean(err), see)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("%s: %s %s", name, clean(errors.Join(strictErrs...)), see)
	}
	fieldErr := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", name, field, fmt.Sprintf(format, args...))
	}
	if doc.APIVersion != routes.FabricAPIVersion {
		return nil, fieldErr("apiVersion", "%q is not supported; use %q", doc.APIVersion, routes.FabricAPIVersion)
	}
	if doc.Kind != Kind {
		hint := ""
		if doc.Kind == routes.FabricKind {
			hint = " (a Fabric file describes one cluster: pass it with --fabric, or list clusters here)"
		}
		return nil, fieldErr("kind", "%q is not a clusters file; use %q%s", doc.Kind, Kind, hint)
	}
	// The shared facts are parsed by the fabric parser itself: same rules, same field paths.
	shared := map[string]any{"reachable": doc.Spec.Reachable, "unreachable": doc.Spec.Unreachable}
	sf, err := parseFabric(name, shared, "spec.")
	if err != nil {
		return nil, err
	}
	out := &File{Reachable: sf.Reachable, Unreachable: sf.Unreachable}
	list := doc.Spec.Clusters
	switch {
	case len(list) == 0:
		return nil, fieldErr("spec.clusters", "is empty: list at least one cluster (name and kubeconfig, inventory or inCluster: true)")
	case len(list) > MaxClusters:
		return nil, fieldErr("spec.clusters", "has %d clusters, more than the %d one auditor takes: run one auditor per group of clusters", len(list), MaxClusters)
	}
	seen := map[string]int{}
	inCluster := -1
	base := filepath.Dir(name)
	for i, it := range list {
		at := fmt.Sprintf("spec.clusters[%d]", i)
		switch {
		case it.Name == "":
			return nil, fieldErr(at+".name", "is required: a short DNS label such as east or prod-eu-1")
		case len(it.Name) > 63 || !nameRE.MatchString(it.Name):
			return nil, fieldErr(at+".name", "%q is not a DNS label: use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit", it.Name)
		}
		if j, dup := seen[it.Name]; dup {
			return nil, fieldErr(at+".name", "%q is also the name of spec.clusters[%d]: cluster names must be unique", it.Name, j)
		}
		seen[it.Name] = i
		at = fmt.Sprintf("spec.clusters[%d] (%s)", i, it.Name)
		sources := 0
		for _, set := range []bool{it.Kubeconfig != "", it.Inventory != "", it.InCluster} {
			if set {
				sources++
			}
		}
		if sources != 1 {
			return nil, fieldErr(at, "give exactly one of kubeconfig (with an optional context), inventory or inCluster: true (it has %d)", sources)
		}
		if it.Context != "" && it.Kubeconfig == "" {
			return nil, fieldErr(at+".context", "is only meaningful with kubeconfig: add kubeconfig or remove context")
		}
		if it.InCluster {
			if inCluster >= 0 {
				return nil, fieldErr(at+".inCluster", "spec.clusters[%d] is in-cluster already: only the cluster the auditor runs in can be; give the others a kubeconfig", inCluster)
			}
			inCluster = i
		}
		facts := map[string]any{"reachable": doc.Spec.Reachable, "unreachable": doc.Spec.Unreachable}
		if it.ServiceCIDR != "" {
			facts["serviceCIDR"] = it.ServiceCIDR
		}
		if len(it.PodRoutes) > 0 {
			facts["podRoutes"] = it.PodRoutes
		}
		if len(it.BGP) > 0 {
			facts["bgp"] = it.BGP
		}
		fab, err := parseFabric(name, facts, fmt.Sprintf("spec.clusters[%d].", i))
		if err != nil {
			return nil, err
		}
		switch {
		case it.BGPStatusNS != "" && fab.Publish != routes.PublishBGP:
			return nil, fieldErr(at+".bgpStatusNamespace", "is only read under podRoutes.publish: bgp (it names where the cluster's BGP speaker keeps its status); remove it or set publish: bgp")
		case it.BGPStatusNS != "" && it.Inventory != "":
			return nil, fieldErr(at+".bgpStatusNamespace", "is read from the cluster's API server, and this cluster is an inventory file (whose routes under publish: bgp read unpublished); use kubeconfig or inCluster, or remove it")
		case it.BGPStatusNS != "" && (len(it.BGPStatusNS) > 63 || !nameRE.MatchString(it.BGPStatusNS)):
			return nil, fieldErr(at+".bgpStatusNamespace", "%q is not a namespace name (a DNS label)", it.BGPStatusNS)
		case fab.Publish == routes.PublishBGP && it.Kubeconfig != "" && it.BGPStatusNS == "":
			return nil, fieldErr(at+".bgpStatusNamespace", "is required under podRoutes.publish: bgp for a cluster read through a kubeconfig: name the namespace `dubboreach publish` runs in there (its ConfigMap and Lease dubboreach-bgp say what is announced)")
		}
		c := Cluster{Name: it.Name, Context: it.Context, InCluster: it.InCluster, Fabric: fab, Correct: it.Correct == nil || *it.Correct, BGPStatusNamespace: it.BGPStatusNS,
			Kubeconfig: resolve(base, it.Kubeconfig), Inventory: resolve(base, it.Inventory)}
		out.Clusters = append(out.Clusters, c)
	}
	return out, nil
}

// parseFabric runs the fabric file parser on spec and puts the clusters file's own field path
// (at, e.g. "spec.clusters[1].") in place of the fabric's "spec." in its errors.
func parseFabric(name string, spec map[string]any, at string) (*routes.Fabric, error) {
	js, err := json.Marshal(map[string]any{"apiVersion": routes.FabricAPIVersion, "kind": routes.FabricKind, "spec": spec})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	const marker = "\x00clusters"
	fab, err := routes.ParseFabric(marker, js)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), marker+": ")
		msg = strings.ReplaceAll(msg, "see the fabric file format in the README", "see docs/clusters.md")
		if rest, ok := strings.CutPrefix(msg, "spec."); ok {
			msg = at + rest
		}
		msg = strings.ReplaceAll(msg, `"spec.`, `"`+at)
		return nil, fmt.Errorf("%s: %s", name, msg)
	}
	return fab, nil
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// clean strips the decoder's layers of "error unmarshaling JSON: while decoding JSON:".
func clean(err error) string {
	msg := err.Error()
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}
