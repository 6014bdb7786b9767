package zk

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Client is a plain connection for code that reads or writes single znodes (the fixes of
// `audit --fix`, the dashboard's detail view). It embeds *zk.Conn, whose paths are absolute
// from the server's root: prefix them with Chroot. go-zookeeper reconnects by itself; Ready
// adds the digest credentials once a session is up (the client re-sends them after reconnects).
type Client struct {
	*zk.Conn
	// Chroot is the connection string's chroot ("" for none).
	Chroot string

	auth   string
	mu     sync.Mutex
	authed bool
}

// NewClient connects in the background. Close it when done.
func NewClient(o Options) (*Client, error) {
	conn, chroot, err := dial(o, func(zk.Event) {})
	if err != nil {
		return nil, err
	}
	return &Client{Conn: conn, Chroot: chroot, auth: o.Auth}, nil
}

// Ready waits for a session (up to ctx's deadline) and authenticates once. It returns an error
// when there is no session or the credentials were refused (they are never shown).
func (c *Client) Ready(ctx context.Context) error {
	for c.State() != zk.StateHasSession {
		select {
		case <-ctx.Done():
			return errNotConnected
		case <-time.After(20 * time.Millisecond):
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.auth == "" || c.authed {
		return nil
	}
	if err := c.AddAuth("digest", []byte(c.auth)); err != nil {
		return errors.New("ZooKeeper digest authentication failed (credentials not shown): " + err.Error())
	}
	c.authed = true
	return nil
}

// Read returns a znode's data (path absolute, chroot included), once a session is up.
func (c *Client) Read(ctx context.Context, p string) ([]byte, error) {
	if err := c.Ready(ctx); err != nil {
		return nil, err
	}
	data, _, err := c.Get(p)
	return data, err
}
