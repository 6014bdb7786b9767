package registry_test

import (
	"os"
	"testing"

	"github.com/dubboreach/dubboreach/test/javareg"
)

// classpath runs the Java registrar compiled once for the package's tests.
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
	if benchZK != nil {
		benchZK.Stop()
		_ = os.RemoveAll(benchDir)
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
