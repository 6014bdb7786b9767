package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/registry/dashboard"
	"github.com/dubboreach/dubboreach/registry/measure"
	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/test/harness"
)

// The long-running auditor takes probe reports on --listen and flags the contradictions:
// orders-1 (verdict reachable, node-a's route listed as installed) timed out from the vantage,
// cart-1 (verdict unreachable, node-b's route not listed) answered.
func TestAuditTakesProbeReports(t *testing.T) {
	z := harness.StartZooKeeper(t)
	c := connect(t, z.Addr)
	seed(t, c)
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("t0ken\n"), 0o600))
	port, err := harness.FreePort()
	require.NoError(t, err)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- Run(ctx, []string{"audit", "--zk", z.Addr, "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--inventory", auditInventory, "--fabric", auditFabric, "--probe-token-file", tok}, &out, &errOut)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			assert.Equal(t, ExitOK, code, errOut.String())
		case <-time.After(30 * time.Second):
			t.Error("audit did not stop")
		}
	}()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "the auditor never got ready")

	u, err := url.Parse(base)
	require.NoError(t, err)
	r := &probe.Reporter{URL: u, Vantage: "outside-dc1", Token: "t0ken"}
	ack, err := r.Send(context.Background(), &probe.Report{Measurements: []probe.Measurement{
		{Address: "10.244.1.7", Port: 20880, Protocol: "dubbo", Result: probe.Timeout},
		{Address: "10.244.2.5", Port: 20880, Protocol: "dubbo", Result: probe.Answered},
		{Address: "10.244.2.77", Port: 20880, Protocol: "dubbo", Result: probe.Refused},
	}})
	require.NoError(t, err)
	assert.Equal(t, &probe.Ack{Vantage: "outside-dc1", Accepted: 3, Contradictions: 2, Judged: true}, ack)

	resp, err := http.Get(base + "/api/v1/measurements")
	require.NoError(t, err)
	var list measure.List
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	_ = resp.Body.Close()
	require.Len(t, list.Contradictions, 2)
	assert.Equal(t, "10.244.1.7", list.Contradictions[0].Address)
	assert.Equal(t, "published-pod-route", string(list.Contradictions[0].Reason))
	assert.Equal(t, "10.244.2.5", list.Contradictions[1].Address)
	assert.Equal(t, &measure.MissingRoute{Prefix: "10.244.2.0/24", NextHop: "10.132.2.12", Node: "node-b"}, list.Contradictions[1].MissingRoute)

	// The dashboard shows them beside the verdicts, and filters the contradicted.
	resp, err = http.Get(base + "/api/v1/providers?contradicted=true&limit=500")
	require.NoError(t, err)
	var page dashboard.Page
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	_ = resp.Body.Close()
	require.NotEmpty(t, page.Items)
	for _, row := range page.Items {
		assert.Contains(t, []string{"10.244.1.7:20880", "10.244.2.5:20880"}, row.HostPort)
		assert.True(t, row.Contradicted, row.HostPort)
		require.NotEmpty(t, row.Measured, row.HostPort)
		assert.Equal(t, "outside-dc1", row.Measured[0].Vantage)
		assert.NotEmpty(t, row.Measured[0].Hint)
	}

	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	metrics := string(b)
	assert.Contains(t, metrics, `dubboreach_probe_contradictions{vantage="outside-dc1"} 2`)
	assert.Contains(t, metrics, `dubboreach_probe_measurements{result="timeout",vantage="outside-dc1"} 1`)
	assert.Contains(t, metrics, `dubboreach_probe_reports_total{outcome="accepted"} 1`)
	assert.True(t, strings.Contains(metrics, `dubboreach_probe_reports_total{outcome="unauthorized"} 0`))
}

func TestAuditProbeFlagErrors(t *testing.T) {
	base := []string{"audit", "--zk", "127.0.0.1:1", "--inventory", auditInventory, "--fabric", auditFabric}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--probe-token-file", "/tmp/x"}, "--probe-token-file takes probe reports on --listen: give --listen too"},
		{[]string{"--listen", "127.0.0.1:0", "--probe-token-file", "/nonexistent/token"}, "--probe-token-file: probe token file: open /nonexistent/token"},
		{[]string{"--listen", "127.0.0.1:0", "--probe-ttl", "0s"}, "--probe-ttl 0s: want a positive duration"},
	} {
		_, errOut, code := run(t, append(append([]string{}, base...), tc.args...)...)
		assert.Equal(t, ExitUsage, code, errOut)
		assert.Contains(t, errOut, tc.want)
	}
}
