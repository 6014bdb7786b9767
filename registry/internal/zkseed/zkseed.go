// Package zkseed fills a test ZooKeeper with many interface-level registrations, fast (batched
// multi-ops over parallel requests), for the registry's benchmarks.
package zkseed

import (
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Connect opens a session and waits for it.
func Connect(addr string) (*zk.Conn, error) {
	c, _, err := zk.Connect([]string{addr}, 30*time.Second, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		return nil, err
	}
	for i := 0; c.State() != zk.StateHasSession; i++ {
		if i > 3000 {
			c.Close()
			return nil, fmt.Errorf("zkseed: no session with %s", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c, nil
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// ProviderName is the znode name of provider i of service s, as Dubbo's URLEncoder names it.
// Addresses are spread over 10.244.0.0/16 (pod network) so that every entry is judged.
func ProviderName(s, i int) string {
	u := fmt.Sprintf("dubbo://10.244.%d.%d:20880/com.bench.Service%d?anyhost=true&application=app%d&dubbo=2.0.2&interface=com.bench.Service%d&methods=get,put,list&pid=%d&side=provider&timestamp=1700000000000",
		(s*10+i)/250%256, (s*10+i)%250+1, s, s, s, 1000+i)
	return url.QueryEscape(u)
}

// Seed creates services x perService providers under root (persistent nodes, so that they stay
// after the seeding session closes).
func Seed(c *zk.Conn, root string, services, perService int) error {
	acl := zk.WorldACL(zk.PermAll)
	if _, err := c.Create(root, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return err
	}
	work := make(chan int)
	errc := make(chan error, 32)
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				dir := fmt.Sprintf("%s/com.bench.Service%d", root, s)
				ops := []any{
					&zk.CreateRequest{Path: dir, Acl: acl},
					&zk.CreateRequest{Path: dir + "/providers", Acl: acl},
				}
				for i := 0; i < perService; i++ {
					ops = append(ops, &zk.CreateRequest{Path: dir + "/providers/" + ProviderName(s, i), Acl: acl})
				}
				if _, err := c.Multi(ops...); err != nil {
					select {
					case errc <- fmt.Errorf("zkseed: %s: %w", dir, err):
					default:
					}
				}
			}
		}()
	}
	for s := 0; s < services; s++ {
		work <- s
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
