// Package clusters_test audits one ZooKeeper that several clusters and VMs share, against real
// API servers (envtest) whose pod networks overlap, and tests the ZooKeeper lock that several
// auditors correct under.
package clusters_test

import (
	"os"
	"testing"

	"github.com/dubboreach/dubboreach/test/javareg"
)

// classpath runs the Java registrar (real URLEncoder names, real Curator ServiceDiscovery).
var classpath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "javareg")
	if err != nil {
		panic(err)
	}
	classpath, err = javareg.Compile(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
