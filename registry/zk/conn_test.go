package zk

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dubboreach/dubboreach/test/harness"
)

func TestParseServers(t *testing.T) {
	tests := []struct {
		in      string
		servers []string
		chroot  string
		err     bool
	}{
		{in: "zk-0:2181", servers: []string{"zk-0:2181"}},
		{in: "zk-0:2181,zk-1:2181, zk-2:2181/env/prod/", servers: []string{"zk-0:2181", "zk-1:2181", "zk-2:2181"}, chroot: "/env/prod"},
		{in: "zk-0:2181/", servers: []string{"zk-0:2181"}},
		{in: "/chroot", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		s, c, err := ParseServers(tt.in)
		if (err != nil) != tt.err || !reflect.DeepEqual(s, tt.servers) || c != tt.chroot {
			t.Errorf("ParseServers(%q) = %v, %q, %v", tt.in, s, c, err)
		}
	}
}

func TestAuthFromFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "auth")
	if err := os.WriteFile(good, []byte("audit:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := AuthFromFile(good, "UNUSED"); err != nil || v != "audit:s3cret" {
		t.Errorf("file: %q, %v", v, err)
	}
	t.Setenv("DUBBOREACH_TEST_AUTH", "env:pw")
	if v, err := AuthFromFile("", "DUBBOREACH_TEST_AUTH"); err != nil || v != "env:pw" {
		t.Errorf("env: %q, %v", v, err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("justapassword"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := AuthFromFile(bad, "")
	if err == nil || strings.Contains(err.Error(), "justapassword") {
		t.Errorf("malformed credentials: %v (must be refused without echoing them)", err)
	}
	if _, err := AuthFromFile(filepath.Join(dir, "none"), ""); err == nil {
		t.Error("missing file accepted")
	}
}

func TestSeveralServersOneDown(t *testing.T) {
	z := harness.StartZooKeeper(t)
	dead, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Once(harness.Context(t), Config{Options: Options{Servers: "127.0.0.1:" + fmtInt(dead) + "," + z.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Complete {
		t.Fatalf("with one live server of two: missing %+v", snap.Missing)
	}
}
