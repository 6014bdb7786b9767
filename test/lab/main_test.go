package lab_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/test/lab"
)

var theLab *lab.Lab

// TestMain builds one lab for the package's tests (building it per test would cost a ZooKeeper
// start each): tests add their own pods with unique names.
func TestMain(m *testing.M) {
	// The test binary re-executed inside a lab node's namespace is the BGP speaker there.
	if cfg := os.Getenv(speakerEnv); cfg != "" {
		os.Exit(speakerMain(cfg))
	}
	l, err := lab.Start(lab.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	theLab = l
	code := m.Run()
	l.Close()
	os.Exit(code)
}

func shared(t *testing.T) *lab.Lab {
	t.Helper()
	if theLab == nil {
		t.Fatal("lab: TestMain did not start the lab")
	}
	return theLab
}

var netDialer = net.Dialer{Timeout: 5 * time.Second}

// ctxTimeout bounds one dial; the context is cancelled by the test's cleanup.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
