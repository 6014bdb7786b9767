// Package version holds the build's version, set with -ldflags -X at build time.
package version

import "runtime"

// Set by the Makefile and Dockerfile: -X github.com/dubboreach/dubboreach/internal/version.Version=...
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one-line version shown by `dubboreach version`.
func String() string {
	return "dubboreach " + Version + " (commit " + Commit + ", " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
