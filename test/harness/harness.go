// Package harness starts the real servers that dubboreach's tests run against: a kube-apiserver
// with etcd (through controller-runtime's envtest) and a ZooKeeper, each on loopback and each
// stopped when its test ends.
//
// The binaries are installed by `make tools` (hack/install-tools.sh): kube-apiserver and etcd are
// built from their Go modules into ./bin, ZooKeeper comes from Debian's package. A missing
// prerequisite fails the test with the command that installs it; it is never skipped.
package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot is the directory holding dubboreach's go.mod, found from the working directory
// (go test runs each package in its own directory).
func RepoRoot() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && strings.Contains(string(data), "module github.com/dubboreach/dubboreach\n") {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = fmt.Errorf("harness: no dubboreach go.mod above the working directory")
				return
			}
			dir = parent
		}
	})
	return rootDir, rootErr
}

// MustRepoRoot is RepoRoot for code that cannot go on without it.
func MustRepoRoot() string {
	dir, err := RepoRoot()
	if err != nil {
		panic(err)
	}
	return dir
}

// BinDir is where `make tools` puts the tool binaries (kube-apiserver, etcd, helm, ...).
func BinDir() string { return filepath.Join(MustRepoRoot(), "bin") }

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func requireFile(path, fix string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("harness: %s is missing (%w): %s", path, err, fix)
	}
	return nil
}
