package registry_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-zookeeper/zk"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/internal/zkseed"
	rzk "github.com/dubboreach/dubboreach/registry/zk"
	"github.com/dubboreach/dubboreach/routes"
	"github.com/dubboreach/dubboreach/test/harness"
)

// One real ZooKeeper per benchmark process, seeded with $DUBBOREACH_BENCH_SERVICES services
// (default 10000) x 10 providers = 100,000 providers.
var (
	benchOnce sync.Once
	benchZK   *harness.ZooKeeper
	benchErr  error
	benchN    int
	benchDir  string
)

func benchServer(b *testing.B) (string, int) {
	b.Helper()
	benchOnce.Do(func() {
		benchN = 10000
		if s := os.Getenv("DUBBOREACH_BENCH_SERVICES"); s != "" {
			if benchN, benchErr = strconv.Atoi(s); benchErr != nil {
				return
			}
		}
		dir, err := os.MkdirTemp("", "zkbench")
		if err != nil {
			benchErr = err
			return
		}
		benchDir = dir
		if benchZK, benchErr = harness.StartZooKeeperIn(dir); benchErr != nil {
			return
		}
		c, err := zkseed.Connect(benchZK.Addr)
		if err != nil {
			benchErr = err
			return
		}
		defer c.Close()
		start := time.Now()
		benchErr = zkseed.Seed(c, "/dubbo", benchN, 10)
		fmt.Fprintf(os.Stderr, "seeded %d providers in %s\n", benchN*10, time.Since(start).Round(time.Millisecond))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchZK.Addr, benchN
}

func benchTable(b *testing.B) (*routes.Store, *registry.PodIndex) {
	fab, err := routes.LoadFabric(testdata("fabric.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	inv, err := routes.LoadInventory(testdata("inventory.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	store := routes.NewStore(fab, nil)
	store.Replace(inv)
	pods := registry.NewPodIndex()
	pods.Replace(inv)
	return store, pods
}

// BenchmarkWatchLatency measures the time from the creation of a new unreachable registration
// to its finding in the auditor's published result, through watches, on the seeded registry.
func BenchmarkWatchLatency(b *testing.B) {
	addr, n := benchServer(b)
	store, pods := benchTable(b)
	holder := registry.NewHolder()
	a := &registry.Auditor{Scan: rzk.Config{Options: rzk.Options{Servers: addr}, Resync: time.Hour},
		Routes: store, Pods: pods, Holder: holder, Log: logr.Discard()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for {
		r := holder.Latest()
		if r != nil && r.Complete && len(r.Providers) >= n*10 {
			break
		}
		select {
		case <-holder.Updated():
		case <-time.After(5 * time.Minute):
			b.Fatal("no complete first scan within 5 minutes")
		}
	}
	c, err := zkseed.Connect(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := i % n
		name := fmt.Sprintf("dubbo%%3A%%2F%%2F10.244.2.%d%%3A%d%%2Fcom.bench.Service%d%%3Fside%%3Dprovider", i%250+1, 30000+i%30000, s)
		path := fmt.Sprintf("/dubbo/com.bench.Service%d/providers/%s", s, name)
		upd := holder.Updated()
		start := time.Now()
		if _, err := c.Create(path, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
		for !hasZnode(holder.Latest(), path) {
			select {
			case <-upd:
				upd = holder.Updated()
			case <-time.After(30 * time.Second):
				b.Fatalf("registration %d not reported within 30s", i)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

func hasZnode(r *registry.Result, path string) bool {
	if r == nil {
		return false
	}
	// New entries of the benchmark sort last in their directory; search from the end.
	for i := len(r.Providers) - 1; i >= 0; i-- {
		if r.Providers[i].Znode == path {
			return true
		}
	}
	return false
}

// BenchmarkMemory reports the heap held by one complete audit of the seeded registry: the
// scanner's copy of the tree, the judge's parse cache and the published Result.
func BenchmarkMemory(b *testing.B) {
	addr, n := benchServer(b)
	store, pods := benchTable(b)
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := rzk.NewScanner(rzk.Config{Options: rzk.Options{Servers: addr, Log: logr.Discard()}, Watch: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.WaitConnected(context.Background()); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		s.FullScan(context.Background())
		scan := time.Since(start)
		j := &registry.Judge{}
		start = time.Now()
		first := j.Judge(s.Snapshot(), store.Table(), pods.View())
		judge := time.Since(start)
		runtime.KeepAlive(first)
		// A second pass, as after a watch event: served from the parse cache.
		start = time.Now()
		r := j.Judge(s.Snapshot(), store.Table(), pods.View())
		rejudge := time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if f := os.Getenv("DUBBOREACH_BENCH_HEAPPROFILE"); f != "" {
			// What the heap holds now, by allocation site: go tool pprof -sample_index=inuse_space
			if out, err := os.Create(f); err == nil {
				_ = pprof.WriteHeapProfile(out)
				_ = out.Close()
			}
		}
		if len(r.Providers) != n*10 {
			b.Fatalf("judged %d providers, want %d", len(r.Providers), n*10)
		}
		heap := float64(after.HeapInuse) - float64(before.HeapInuse)
		b.ReportMetric(heap/(1<<20), "heap-MiB")
		b.ReportMetric(heap/float64(n*10), "heap-B/provider")
		b.ReportMetric(float64(scan.Milliseconds()), "scan-ms")
		b.ReportMetric(float64(judge.Milliseconds()), "judge-ms")
		b.ReportMetric(float64(rejudge.Milliseconds()), "rejudge-ms")
		runtime.KeepAlive(j)
		runtime.KeepAlive(r)
		s.Close()
	}
}
