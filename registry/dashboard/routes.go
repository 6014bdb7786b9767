package dashboard

import (
	"net/http"
	"strings"

	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/routes/render"
)

// RoutesView is the answer of /api/v1/routes: desired, published and missing pod routes per
// node, and router configuration in every format of the routes core.
type RoutesView struct {
	Nodes    []NodeRoutes     `json:"nodes"`
	Problems []routes.Problem `json:"problems"`
	// Stale are prefixes installed on the gateway that no node needs any more.
	Stale []string `json:"stale"`
	// Formats lists the router dialects, in the CLI's order.
	Formats []string `json:"formats"`
	// Missing holds, per format, the configuration adding every missing route; All every
	// desired route; RemoveStale the removal of stale routes (or why a dialect cannot).
	Missing     map[string]string `json:"missing"`
	All         map[string]string `json:"all"`
	RemoveStale map[string]string `json:"removeStale"`
}

// NodeRoutes is one node's pod routes.
type NodeRoutes struct {
	Name      string      `json:"name"`
	Desired   int         `json:"desired"`
	Published int         `json:"published"`
	Missing   int         `json:"missing"`
	Routes    []RouteJSON `json:"routes"`
}

type routesCache struct {
	t    *routes.Table
	view *RoutesView
}

func (d *Dashboard) routesView(w http.ResponseWriter, r *http.Request) {
	if _, e := params(r); e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	if d.opts.Store == nil {
		writeError(w, http.StatusServiceUnavailable, apiError{Error: "this dashboard was started without the route table"})
		return
	}
	t := d.opts.Store.Table()
	d.mu.Lock()
	c := d.routes
	d.mu.Unlock()
	if c == nil || c.t != t {
		c = &routesCache{t: t, view: buildRoutesView(t)}
		d.mu.Lock()
		d.routes = c
		d.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, c.view)
}

func buildRoutesView(t *routes.Table) *RoutesView {
	v := &RoutesView{Nodes: []NodeRoutes{}, Problems: t.Problems, Stale: []string{}, Formats: render.Names(),
		Missing: map[string]string{}, All: map[string]string{}, RemoveStale: map[string]string{}}
	if v.Problems == nil {
		v.Problems = []routes.Problem{}
	}
	byNode := map[string]int{}
	for _, n := range t.Nodes {
		byNode[n.Name] = len(v.Nodes)
		v.Nodes = append(v.Nodes, NodeRoutes{Name: n.Name, Desired: n.Routes, Published: n.Published, Missing: n.Routes - n.Published, Routes: []RouteJSON{}})
	}
	var missing, all []render.Entry
	for i := range t.Routes {
		rt := &t.Routes[i]
		if k, ok := byNode[rt.Node]; ok {
			v.Nodes[k].Routes = append(v.Nodes[k].Routes, *routeJSON(rt))
		} else {
			byNode[rt.Node] = len(v.Nodes)
			v.Nodes = append(v.Nodes, NodeRoutes{Name: rt.Node, Desired: 1, Published: boolInt(rt.Published), Missing: 1 - boolInt(rt.Published), Routes: []RouteJSON{*routeJSON(rt)}})
		}
		if !rt.NextHop.IsValid() {
			continue // a Problem of the table; it cannot be rendered
		}
		e := render.Entry{Prefix: rt.Prefix, NextHop: rt.NextHop, Node: rt.Node}
		all = append(all, e)
		if !rt.Published {
			missing = append(missing, e)
		}
	}
	var stale []render.Entry
	for _, p := range t.Stale {
		v.Stale = append(v.Stale, p.String())
		stale = append(stale, render.Entry{Prefix: p})
	}
	for _, f := range render.Formats {
		v.Missing[string(f)] = renderText(f, missing, false)
		v.All[string(f)] = renderText(f, all, false)
		if len(stale) > 0 {
			v.RemoveStale[string(f)] = renderText(f, stale, true)
		}
	}
	return v
}

func renderText(f render.Format, entries []render.Entry, remove bool) string {
	if len(entries) == 0 {
		return ""
	}
	var b strings.Builder
	if err := render.Render(&b, f, entries, render.Options{Remove: remove}); err != nil {
		return "# " + err.Error() + "\n"
	}
	return b.String()
}
