package dashboard

import (
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/dubbo"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

// Detail is the answer of /api/v1/registration: one registration and what to do about it.
type Detail struct {
	Generation uint64 `json:"generation"`
	Row
	// Dir and Name split the znode path; Name is URL-encoded for interface-level entries.
	Dir         string `json:"dir"`
	Name        string `json:"name"`
	Explanation string `json:"explanation,omitempty"`
	// URL is the parsed Dubbo URL of an interface-level entry.
	URL *URLJSON `json:"url,omitempty"`
	// Instance is the parsed Curator ServiceInstance of an application-level entry.
	Instance *InstanceJSON `json:"instance,omitempty"`
	// ParseError says why the entry could not be parsed again for display.
	ParseError string `json:"parseError,omitempty"`
	Fix        Fix    `json:"fix"`
}

// URLJSON is a parsed Dubbo URL (never with a password).
type URLJSON struct {
	Decoded  string  `json:"decoded"`
	Protocol string  `json:"protocol"`
	Username string  `json:"username,omitempty"`
	Host     string  `json:"host"`
	Port     int     `json:"port,omitempty"`
	Path     string  `json:"path"`
	Params   []Param `json:"params"`
}

// Param is one URL parameter.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// InstanceJSON is an application-level instance: parsed from the znode's data when the
// dashboard can read it, otherwise the facts the audit kept.
type InstanceJSON struct {
	Name         string            `json:"name"`
	ID           string            `json:"id,omitempty"`
	Address      string            `json:"address"`
	Port         int               `json:"port,omitempty"`
	SSLPort      int               `json:"sslPort,omitempty"`
	PayloadClass string            `json:"payloadClass,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Endpoints    []dubbo.Endpoint  `json:"endpoints,omitempty"`
	// Raw is the znode's data as read (escaped for display), when it could be read.
	Raw string `json:"raw,omitempty"`
	// FromAudit is true when the data could not be read and the fields come from the audit.
	FromAudit bool `json:"fromAudit,omitempty"`
}

// Fix is what makes the registration reachable, as commands to copy.
type Fix struct {
	// Route is the missing pod route rendered for a router.
	Route *RouteFix `json:"route,omitempty"`
	// NamespaceLabel turns injection on for the pod's namespace.
	NamespaceLabel *Command `json:"namespaceLabel,omitempty"`
	// Restart recreates the pod so that it registers an injected address.
	Restart *Command `json:"restart,omitempty"`
	// DeleteZnode removes a stale persistent registration.
	DeleteZnode *Command `json:"deleteZnode,omitempty"`
}

// RouteFix is the missing route in one router dialect.
type RouteFix struct {
	Route   RouteJSON `json:"route"`
	Format  string    `json:"format"`
	Formats []string  `json:"formats"`
	Config  string    `json:"config"`
	// All is the command printing every missing route in this dialect.
	All string `json:"all"`
}

// Command is a command line to run, and whether it is still needed when that is known.
type Command struct {
	Command string `json:"command"`
	// Done is true when the state it creates is already there (the namespace is labelled);
	// absent when not known.
	Done *bool  `json:"done,omitempty"`
	Note string `json:"note,omitempty"`
}

func (d *Dashboard) registration(w http.ResponseWriter, r *http.Request) {
	v, e := params(r, "znode", "format")
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	z := v.Get("znode")
	if z == "" {
		writeError(w, http.StatusBadRequest, apiError{Error: "znode is required: the registration's znode path, as listed by /api/v1/providers", Parameter: "znode"})
		return
	}
	format, e := oneOf(v, "format", render.Names(), string(d.opts.Format))
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	x := d.latest(w)
	if x == nil {
		return
	}
	ref, ok := x.byZnode[z]
	if !ok {
		writeError(w, http.StatusNotFound, apiError{Error: "no registration with this znode in the latest scan (it may have gone); see /api/v1/providers", Parameter: "znode"})
		return
	}
	f := x.finding(ref)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	writeJSON(w, http.StatusOK, d.detail(ctx, x, f, render.Format(format)))
}

func (d *Dashboard) detail(ctx context.Context, x *index, f *registry.Finding, format render.Format) Detail {
	dt := Detail{Generation: x.gen, Row: toRow(f), Explanation: f.Explanation}
	if i := strings.LastIndexByte(f.Znode, '/'); i >= 0 {
		dt.Dir, dt.Name = f.Znode[:i], f.Znode[i+1:]
	}
	if f.Kind == registry.KindApplication {
		dt.Instance = d.instance(ctx, f)
	} else if u, err := dubbo.ParseZnodeName(dt.Name); err != nil {
		dt.ParseError = dubbo.Display(err.Error())
	} else {
		dec, _ := dubbo.DecodeZnodeName(dt.Name)
		uj := &URLJSON{Decoded: dubbo.Display(dec), Protocol: dubbo.Display(u.Protocol), Username: dubbo.Display(u.Username),
			Host: dubbo.Display(u.Host), Port: int(u.Port), Path: dubbo.Display(u.Path), Params: make([]Param, 0, len(u.Params))}
		for k, val := range u.Params {
			uj.Params = append(uj.Params, Param{dubbo.Display(k), dubbo.Display(val)})
		}
		sort.Slice(uj.Params, func(i, j int) bool { return uj.Params[i].Key < uj.Params[j].Key })
		dt.URL = uj
	}
	dt.Fix = d.fix(f, format)
	d.withMeasured(d.snapshot(), &dt.Row, f, 0)
	return dt
}

func (d *Dashboard) instance(ctx context.Context, f *registry.Finding) *InstanceJSON {
	fromAudit := &InstanceJSON{Name: f.Service, Address: f.Address, Port: f.Port, FromAudit: true}
	if d.opts.ReadZnode == nil {
		return fromAudit
	}
	data, err := d.opts.ReadZnode(ctx, f.Znode)
	if err != nil {
		return fromAudit
	}
	in, err := dubbo.ParseInstance(data)
	if err != nil {
		fromAudit.Raw = rawText(data)
		return fromAudit
	}
	out := &InstanceJSON{Name: dubbo.Display(in.Name), ID: dubbo.Display(in.ID), Address: dubbo.Display(in.Address), Port: in.Port,
		SSLPort: in.SSLPort, PayloadClass: dubbo.Display(in.PayloadClass), Endpoints: in.Endpoints, Raw: rawText(data)}
	if len(in.Metadata) > 0 {
		out.Metadata = make(map[string]string, len(in.Metadata))
		for k, v := range in.Metadata {
			out.Metadata[dubbo.Display(k)] = dubbo.Display(v)
		}
	}
	return out
}

// kubeName matches names that need no quoting in a shell (Kubernetes names are DNS labels).
var kubeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

func shellQuote(s string) string {
	if kubeName.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (d *Dashboard) fix(f *registry.Finding, format render.Format) Fix {
	var fx Fix
	if mr := f.MissingRoute; mr != nil {
		rf := &RouteFix{Route: *routeJSON(mr), Format: string(format), Formats: render.Names(),
			All: "dubboreach routes --missing -o " + string(format)}
		var b strings.Builder
		if !mr.NextHop.IsValid() {
			rf.Config = "# node " + mr.Node + " has no address to route " + mr.Prefix.String() + " through: see `dubboreach routes`"
		} else if err := render.Render(&b, format, []render.Entry{{Prefix: mr.Prefix, NextHop: mr.NextHop, Node: mr.Node}}, render.Options{}); err != nil {
			rf.Config = "# " + err.Error()
		} else {
			rf.Config = b.String()
		}
		fx.Route = rf
	}
	if f.Verdict != routes.Reachable && f.PodName != "" && f.PodNamespace != "" && !f.DubboGo {
		ns := shellQuote(f.PodNamespace)
		lbl := &Command{Command: "kubectl label namespace " + ns + " " + registry.LabelInject + "=enabled"}
		if done, ok := d.namespaceLabelled(f); ok {
			lbl.Done = &done
			if done {
				lbl.Note = "namespace " + f.PodNamespace + " is already labelled"
			}
		}
		fx.NamespaceLabel = lbl
		fx.Restart = &Command{Command: "kubectl -n " + ns + " delete pod " + shellQuote(f.PodName),
			Note: "or roll out its owner (kubectl -n " + ns + " rollout restart deployment/<name>) so that the new pod registers an injected address"}
	}
	if f.Stale && f.Persistent {
		fx.DeleteZnode = &Command{Command: "zkCli.sh -server <zookeeper> delete " + shellQuote(f.Znode),
			Note: "a persistent entry (dynamic=false) that no pod holds any more"}
	}
	return fx
}

// namespaceLabelled says whether the pod's namespace turns injection on, when the pods are known.
func (d *Dashboard) namespaceLabelled(f *registry.Finding) (done, known bool) {
	if d.opts.Pods == nil {
		return false, false
	}
	a, err := netip.ParseAddr(strings.Trim(f.Address, "[]"))
	if err != nil {
		return false, false
	}
	m := d.opts.Pods.View().Lookup(a, uint16(f.Port))
	if m.Pod == nil || m.Namespace == nil || m.Pod.Namespace != f.PodNamespace {
		return false, false
	}
	return m.Namespace.Labels[registry.LabelInject] == "enabled", true
}

// rawText is znode data for display: valid UTF-8 and at most 64 KiB (the JSON encoder escapes
// it on the wire, the page renders it as text).
func rawText(data []byte) string {
	const max = 64 << 10
	s := string(data)
	if len(s) > max {
		s = s[:max] + "...(" + strconv.Itoa(len(data)) + " bytes)"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
