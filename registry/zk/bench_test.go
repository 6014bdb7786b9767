package zk

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/go-logr/logr"

	"github.com/dubboreach/dubboreach/registry/internal/zkseed"
	"github.com/dubboreach/dubboreach/test/harness"
)

// Benchmarks run against one real ZooKeeper seeded once per process with
// $DUBBOREACH_BENCH_SERVICES services (default 10000) x 10 providers.
var (
	benchOnce sync.Once
	benchZK   *harness.ZooKeeper
	benchDir  string
	benchErr  error
	benchN    int
)

func benchServer(b *testing.B) (string, int) {
	b.Helper()
	benchOnce.Do(func() {
		benchN = 10000
		if s := os.Getenv("DUBBOREACH_BENCH_SERVICES"); s != "" {
			benchN, benchErr = strconv.Atoi(s)
			if benchErr != nil {
				return
			}
		}
		benchDir, benchErr = os.MkdirTemp("", "zkbench")
		if benchErr != nil {
			return
		}
		benchZK, benchErr = harness.StartZooKeeperIn(benchDir)
		if benchErr != nil {
			return
		}
		c, err := zkseed.Connect(benchZK.Addr)
		if err != nil {
			benchErr = err
			return
		}
		defer c.Close()
		benchErr = zkseed.Seed(c, "/dubbo", benchN, 10)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchZK.Addr, benchN
}

func stopBenchServer() {
	if benchZK != nil {
		benchZK.Stop()
		_ = os.RemoveAll(benchDir)
	}
}

// BenchmarkFullScan compares the scanner's full scan (providers and consumers of every
// service, parsed later) with bare GetChildren loops over the same providers directories.
func BenchmarkFullScan(b *testing.B) {
	addr, n := benchServer(b)
	want := n * 10
	b.Run("scanner", func(b *testing.B) {
		s, err := NewScanner(Config{Options: Options{Servers: addr, Log: logr.Discard()}})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		if err := s.WaitConnected(ctx); err != nil {
			b.Fatal(err)
		}
		s.event(zkEventHasSession)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s.FullScan(ctx)
		}
		b.StopTimer()
		snap := s.Snapshot()
		if len(snap.Entries) != want || !snap.Complete {
			b.Fatalf("scan found %d entries (complete %v, missing %d), want %d", len(snap.Entries), snap.Complete, len(snap.Missing), want)
		}
		b.ReportMetric(float64(want), "providers")
	})
	b.Run("bare-getchildren-loop", func(b *testing.B) {
		s, err := NewScanner(Config{Options: Options{Servers: addr, Log: logr.Discard()}})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if err := s.WaitConnected(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			svcs, _, err := s.conn.Children("/dubbo")
			if err != nil {
				b.Fatal(err)
			}
			total := 0
			for _, svc := range svcs {
				ch, _, err := s.conn.Children("/dubbo/" + svc + "/providers")
				if err != nil {
					b.Fatal(err)
				}
				total += len(ch)
			}
			if total != want {
				b.Fatalf("bare loop found %d", total)
			}
		}
	})
	b.Run("bare-getchildren-parallel", func(b *testing.B) {
		s, err := NewScanner(Config{Options: Options{Servers: addr, Log: logr.Discard()}})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if err := s.WaitConnected(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			svcs, _, err := s.conn.Children("/dubbo")
			if err != nil {
				b.Fatal(err)
			}
			work := make(chan string)
			var wg sync.WaitGroup
			for w := 0; w < 64; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for svc := range work {
						if _, _, err := s.conn.Children("/dubbo/" + svc + "/providers"); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			for _, svc := range svcs {
				work <- svc
			}
			close(work)
			wg.Wait()
		}
	})
}
