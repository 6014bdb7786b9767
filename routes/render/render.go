// Package render writes pod routes as configuration for the routers of the network team.
package render

import (
	"io"
	"net/netip"
)

// Format names a router configuration dialect; the names are the CLI's -o values.
type Format string

// Entry is one route to render. NextHop may be invalid only when removing a route whose next
// hop is not known (a stale route installed on the gateway).
type Entry struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	Node    string
}

// Options change what is rendered.
type Options struct {
	// Remove renders the commands that remove the routes instead of adding them.
	Remove bool
}

// Formats lists the router formats in the order the CLI documents them.
var Formats = []Format{"cisco-ios", "cisco-nxos", "junos", "huawei", "h3c", "linux", "net-tools", "frr", "bird"}

// Render writes entries in the given format. (Being implemented.)
func Render(w io.Writer, f Format, entries []Entry, opts Options) error {
	panic("render: not implemented yet")
}
