// Package zk reads Dubbo registrations out of ZooKeeper: a connection with chroot, digest auth
// and reconnect (go-zookeeper), and a Scanner that keeps an in-memory copy of the registration
// tree current with a parallel full scan, child watches and a periodic resync, and that says
// exactly which paths it could not read.
package zk

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-zookeeper/zk"
)

// Options say how to reach ZooKeeper.
type Options struct {
	// Servers is a ZooKeeper connection string: host:port[,host:port...][/chroot].
	Servers string
	// Auth is "user:password" for the digest scheme; empty for none. Never logged.
	Auth string
	// SessionTimeout is asked of the server (which clamps it to 2..20 ticks). Default 15s.
	SessionTimeout time.Duration
	// Dialer replaces net.DialTimeout (tests route through a proxy to cut the network).
	Dialer zk.Dialer
	Log    logr.Logger
}

// ParseServers splits a connection string into servers and chroot, as the Java client does.
func ParseServers(s string) (servers []string, chroot string, err error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		chroot = path.Clean(s[i:])
		s = s[:i]
		if chroot == "/" {
			chroot = ""
		}
	}
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		servers = append(servers, h)
	}
	if len(servers) == 0 {
		return nil, "", fmt.Errorf("--zk %q names no server: want host:port[,host:port...][/chroot]", s)
	}
	return servers, chroot, nil
}

// AuthFromFile reads digest credentials ("user:password", one line) from a file, or from the
// environment variable env when file is empty. The value is returned, never printed.
func AuthFromFile(file, env string) (string, error) {
	var v string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading ZooKeeper credentials: %w", err)
		}
		v = strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("ZooKeeper credentials file %s is empty: want user:password", file)
		}
	} else {
		v = strings.TrimSpace(os.Getenv(env))
	}
	if v != "" && !strings.Contains(v, ":") {
		// Do not echo the value: it may be a password typed into the wrong place.
		return "", errors.New("ZooKeeper credentials must read user:password")
	}
	return v, nil
}

// logAdapter sends go-zookeeper's log lines (connection state, never credentials) to logr.
type logAdapter struct{ log logr.Logger }

func (l logAdapter) Printf(format string, args ...any) {
	l.log.V(1).Info(fmt.Sprintf(format, args...))
}

// dial connects and returns the connection with its chroot. Events go to cb (never blocking).
func dial(o Options, cb zk.EventCallback) (*zk.Conn, string, error) {
	servers, chroot, err := ParseServers(o.Servers)
	if err != nil {
		return nil, "", err
	}
	timeout := o.SessionTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	dialer := o.Dialer
	if dialer == nil {
		dialer = net.DialTimeout
	}
	conn, _, err := zk.Connect(servers, timeout, zk.WithLogger(logAdapter{o.Log}), zk.WithLogInfo(false),
		zk.WithEventCallback(cb), zk.WithDialer(dialer))
	if err != nil {
		return nil, "", fmt.Errorf("connecting to ZooKeeper %s: %w", strings.Join(servers, ","), err)
	}
	return conn, chroot, nil
}

// ErrorKind classifies a read error for metrics and messages.
func ErrorKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, zk.ErrNoAuth), errors.Is(err, zk.ErrAuthFailed):
		return "permission"
	case errors.Is(err, zk.ErrConnectionClosed), errors.Is(err, zk.ErrSessionExpired), errors.Is(err, zk.ErrClosing),
		errors.Is(err, zk.ErrNoServer), errors.Is(err, errNotConnected):
		return "connection"
	}
	return "other"
}

var errNotConnected = errors.New("not connected to ZooKeeper")

// describe says what a read error means for the person reading the report.
func describe(err error) string {
	switch ErrorKind(err) {
	case "permission":
		return "permission denied by the znode's ACL: give dubboreach read access, or digest credentials with --zk-auth-file"
	case "connection":
		return "not read: " + err.Error()
	}
	return err.Error()
}
