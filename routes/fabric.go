package routes

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// FabricAPIVersion and FabricKind identify a fabric file.
const (
	FabricAPIVersion = "dubboreach.io/v1alpha1"
	FabricKind       = "Fabric"
)

// Source says where pod prefixes come from.
type Source string

// Sources of pod prefixes.
const (
	SourceAuto    Source = "auto"    // Calico blocks when the inventory has any, else Node pod CIDRs
	SourceNodes   Source = "nodes"   // Node spec.podCIDRs
	SourceCalico  Source = "calico"  // Calico IPAM blocks and their affinities
	SourceFlannel Source = "flannel" // Node spec.podCIDRs of nodes that flannel annotated
)

// NextHop says which node address a pod route points at.
type NextHop string

// Next-hop address kinds.
const (
	NextHopInternalIP      NextHop = "InternalIP"
	NextHopExternalIP      NextHop = "ExternalIP"
	NextHopFlannelPublicIP NextHop = "flannel-public-ip"
)

// Publish says how pod routes reach the external fabric, and so how we know which are published.
type Publish string

// Publish modes.
const (
	PublishStatic Publish = "static" // routes in podRoutes.installed are confirmed on the gateway
	PublishBGP    Publish = "bgp"    // our BGP speaker announces them; a Publisher confirms
	PublishCNI    Publish = "cni"    // the CNI (Calico BGP, ...) already announces all of them
	PublishNone   Publish = "none"   // nothing publishes pod routes
)

// Fabric is a validated fabric file: what the network outside the cluster can reach.
type Fabric struct {
	Reachable    []netip.Prefix
	Unreachable  []netip.Prefix
	ServiceCIDRs []netip.Prefix
	Source       Source
	NextHop      NextHop
	Publish      Publish
	Installed    []netip.Prefix
	// BGP is spec.bgp: required with publish: bgp, refused otherwise.
	BGP *BGP
}

// DefaultFabric is what dubboreach assumes without a fabric file: no network is known to be
// reachable and no pod route is confirmed, so every pod route is reported missing.
func DefaultFabric() *Fabric {
	return &Fabric{Source: SourceAuto, NextHop: NextHopInternalIP, Publish: PublishStatic}
}

// fabricFile mirrors the YAML document; it is decoded strictly so that a typo is an error,
// not a silently ignored setting.
type fabricFile struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata,omitempty"`
	Spec       struct {
		Reachable   []string `json:"reachable,omitempty"`
		Unreachable []string `json:"unreachable,omitempty"`
		ServiceCIDR string   `json:"serviceCIDR,omitempty"`
		PodRoutes   struct {
			Source    string   `json:"source,omitempty"`
			NextHop   string   `json:"nextHop,omitempty"`
			Publish   string   `json:"publish,omitempty"`
			Installed []string `json:"installed,omitempty"`
		} `json:"podRoutes"`
		BGP *bgpFile `json:"bgp,omitempty"`
	} `json:"spec"`
}

// maxFabricBytes bounds what we read: a fabric file is a few lines written by a person.
const maxFabricBytes = 4 << 20

// LoadFabric reads and validates a fabric file.
func LoadFabric(path string) (*Fabric, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fabric file: %w", err)
	}
	return ParseFabric(path, data)
}

// ParseFabric validates a fabric document. name is used in errors (usually the file path).
// Every error names the file, the field and the offending value, and says what is expected.
func ParseFabric(name string, data []byte) (*Fabric, error) {
	if len(data) > maxFabricBytes {
		return nil, fmt.Errorf("%s: %d bytes is too large for a fabric file (limit %d)", name, len(data), maxFabricBytes)
	}
	var doc fabricFile
	// YAMLToJSONStrict refuses duplicate keys; sigs.k8s.io/json's strict mode names unknown
	// fields by their path ("spec.reachble"), which is what the user needs to find the typo.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s (see the fabric file format in the README)", name, cleanYAMLError(err))
	}
	strictErrs, err := kjson.UnmarshalStrict(js, &doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %s (see the fabric file format in the README)", name, cleanYAMLError(err))
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("%s: %s (see the fabric file format in the README)", name, cleanYAMLError(errors.Join(strictErrs...)))
	}
	fieldErr := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", name, field, fmt.Sprintf(format, args...))
	}
	if doc.APIVersion != FabricAPIVersion {
		return nil, fieldErr("apiVersion", "%q is not supported; use %q", doc.APIVersion, FabricAPIVersion)
	}
	if doc.Kind != FabricKind {
		return nil, fieldErr("kind", "%q is not a fabric file; use %q", doc.Kind, FabricKind)
	}
	f := DefaultFabric()
	spec := doc.Spec
	if f.Reachable, err = parsePrefixes(spec.Reachable, "spec.reachable", fieldErr); err != nil {
		return nil, err
	}
	if f.Unreachable, err = parsePrefixes(spec.Unreachable, "spec.unreachable", fieldErr); err != nil {
		return nil, err
	}
	if spec.ServiceCIDR != "" {
		// Dual-stack clusters have one service range per family, written like
		// kube-apiserver's --service-cluster-ip-range: comma separated.
		parts := strings.Split(spec.ServiceCIDR, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		if f.ServiceCIDRs, err = parsePrefixes(parts, "spec.serviceCIDR", fieldErr); err != nil {
			return nil, err
		}
	}
	pr := spec.PodRoutes
	if pr.Source != "" {
		f.Source = Source(pr.Source)
	}
	if !oneOf(string(f.Source), SourceAuto, SourceNodes, SourceCalico, SourceFlannel) {
		return nil, fieldErr("spec.podRoutes.source", "%q is not a source; use one of auto, nodes, calico, flannel", pr.Source)
	}
	if pr.NextHop != "" {
		f.NextHop = NextHop(pr.NextHop)
	}
	if !oneOf(string(f.NextHop), NextHopInternalIP, NextHopExternalIP, NextHopFlannelPublicIP) {
		return nil, fieldErr("spec.podRoutes.nextHop", "%q is not a next hop; use one of InternalIP, ExternalIP, flannel-public-ip", pr.NextHop)
	}
	if pr.Publish != "" {
		f.Publish = Publish(pr.Publish)
	}
	if !oneOf(string(f.Publish), PublishStatic, PublishBGP, PublishCNI, PublishNone) {
		return nil, fieldErr("spec.podRoutes.publish", "%q is not a publish mode; use one of static, bgp, cni, none", pr.Publish)
	}
	if f.Installed, err = parsePrefixes(pr.Installed, "spec.podRoutes.installed", fieldErr); err != nil {
		return nil, err
	}
	if len(f.Installed) > 0 && f.Publish != PublishStatic {
		return nil, fieldErr("spec.podRoutes.installed", "is only meaningful with publish: static (publish is %q); remove it or set publish: static", f.Publish)
	}
	switch {
	case spec.BGP != nil && f.Publish != PublishBGP:
		return nil, fieldErr("spec.bgp", "is only meaningful with publish: bgp (publish is %q); remove it or set podRoutes.publish: bgp", f.Publish)
	case spec.BGP == nil && f.Publish == PublishBGP:
		return nil, fieldErr("spec.bgp", "is required with publish: bgp: give asn, routerID, within and peers (see docs/bgp.md)")
	case spec.BGP != nil:
		if f.BGP, err = parseBGP(spec.BGP, fieldErr); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func oneOf[T ~string](v string, allowed ...T) bool {
	for _, a := range allowed {
		if v == string(a) {
			return true
		}
	}
	return false
}

func parsePrefixes(in []string, field string, fieldErr func(string, string, ...any) error) ([]netip.Prefix, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(in))
	for i, s := range in {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefix parses a CIDR strictly: host bits must be zero, because a router would reject
// 10.132.2.5/24 or, worse, silently install something else. A bare address is a host route.
func ParsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New(`"" is not a CIDR; use a network such as 10.132.2.0/24`)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR; use a network such as 10.132.2.0/24", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR; use a network such as 10.132.2.0/24", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 prefix; write the IPv4 network instead", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, m)
	}
	return p, nil
}

// cleanYAMLError strips the decoder's layers of "error unmarshaling JSON: while decoding JSON:"
// so that the user sees the part that says what is wrong.
func cleanYAMLError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}
