package measure_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/measure"
	"github.com/dubboreach/dubboreach/registry/probe"
	"github.com/dubboreach/dubboreach/routes"
)

type auditor struct {
	srv     *httptest.Server
	store   *measure.Store
	metrics *measure.Metrics
	token   string
	tokenF  string
	latest  atomic.Pointer[registry.Result]
}

// newAuditor serves the measurements API on a real HTTP server (the dashboard's catch-all
// /api/v1/ beside it, as in the auditor) with a token file.
func newAuditor(t *testing.T, o measure.Options, maxBody int64) *auditor {
	t.Helper()
	a := &auditor{token: "s3cret-token", tokenF: filepath.Join(t.TempDir(), "token")}
	require.NoError(t, os.WriteFile(a.tokenF, []byte(a.token+"\n"), 0o600))
	a.store = measure.NewStore(o)
	a.metrics = measure.NewMetrics(a.store, a.latest.Load)
	h, err := measure.NewHandler(measure.HandlerOptions{Store: a.store, TokenFile: a.tokenF, Latest: a.latest.Load, MaxBody: maxBody, Metrics: a.metrics})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.NotFoundHandler())
	for p, hh := range h.Routes() {
		mux.Handle(p, hh)
	}
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *auditor) post(t *testing.T, path, token, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := a.srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (a *auditor) get(t *testing.T, path string, into any) int {
	t.Helper()
	res, err := a.srv.Client().Get(a.srv.URL + path)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "application/json"), path)
	if into != nil && res.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(res.Body).Decode(into))
	}
	return res.StatusCode
}

func report(ms ...probe.Measurement) []byte {
	b, _ := json.Marshal(probe.Report{MeasuredAt: time.Now().UTC(), Complete: true, Missing: []string{}, Measurements: ms})
	return b
}

func ms(addr string, port int, r probe.Result) probe.Measurement {
	return probe.Measurement{Address: addr, Port: port, Protocol: "dubbo", Result: r, Registrations: 1, Services: []string{"com.a.S"}}
}

func fieldCase() *registry.Result {
	return &registry.Result{Scanned: true, Providers: []registry.Finding{
		{Service: "com.a.Cart", Address: "10.131.73.9", Port: 20880, Verdict: routes.Reachable, Reason: routes.ReasonPublishedPodRoute, Node: "node2"},
		{Service: "com.a.Pay", Address: "10.131.10.5", Port: 20880, Verdict: routes.Unreachable, Reason: routes.ReasonUnpublishedPodRoute, Node: "node1"},
	}}
}

func TestReportThroughTheReporter(t *testing.T) {
	a := newAuditor(t, measure.Options{}, 0)
	a.latest.Store(fieldCase())
	u, err := probe.ParseReportURL(a.srv.URL + "/")
	require.NoError(t, err)
	r := &probe.Reporter{URL: u, Vantage: "outside-dc1", Token: a.token, Client: a.srv.Client()}

	// A run bigger than one part is sent in parts and merged.
	rep := &probe.Report{MeasuredAt: time.Now().UTC(), Complete: true, Missing: []string{}}
	rep.Measurements = append(rep.Measurements, ms("10.131.73.9", 20880, probe.Timeout), ms("10.131.10.5", 20880, probe.Refused))
	for i := range probe.MaxPerReport + 10 {
		rep.Measurements = append(rep.Measurements, ms(fmt.Sprintf("10.200.%d.%d", i/250, i%250+1), 20880, probe.Answered))
	}
	ack, err := r.Send(context.Background(), rep)
	require.NoError(t, err)
	assert.Equal(t, &probe.Ack{Vantage: "outside-dc1", Accepted: len(rep.Measurements), Contradictions: 1, Judged: true}, ack)
	assert.Len(t, a.store.Entries("outside-dc1"), len(rep.Measurements))
	assert.Equal(t, 2.0, gather(t, a.metrics)["dubboreach_probe_reports_total{outcome=accepted}"], "two parts")

	var list measure.List
	require.Equal(t, http.StatusOK, a.get(t, "/api/v1/measurements", &list))
	assert.True(t, list.Judged)
	assert.Equal(t, measure.DefaultTTL.Seconds(), list.TTLSeconds)
	require.Len(t, list.Vantages, 1)
	assert.Equal(t, map[probe.Result]int{probe.Timeout: 1, probe.Refused: 1, probe.Answered: probe.MaxPerReport + 10}, list.Vantages[0].Results)
	require.Len(t, list.Contradictions, 1)
	assert.Equal(t, "10.131.73.9", list.Contradictions[0].Address)
	assert.Equal(t, probe.Timeout, list.Contradictions[0].Result)

	// The network team adds node1's route: 10.131.10.5 now answers, a contradiction of the other kind.
	ack, err = r.Send(context.Background(), &probe.Report{Measurements: []probe.Measurement{ms("10.131.10.5", 20880, probe.Answered)}})
	require.NoError(t, err)
	assert.Equal(t, 2, ack.Contradictions)

	var one measure.One
	require.Equal(t, http.StatusOK, a.get(t, "/api/v1/measurements/outside-dc1", &one))
	assert.Len(t, one.Measurements, len(rep.Measurements))
	require.Len(t, one.Contradictions, 2)
	assert.Equal(t, "10.131.10.5", one.Contradictions[0].Address)
	assert.Equal(t, routes.Unreachable, one.Contradictions[0].Verdict)

	assert.Equal(t, http.StatusNotFound, a.get(t, "/api/v1/measurements/nobody", nil))
	assert.Equal(t, http.StatusBadRequest, a.get(t, "/api/v1/measurements/Not_Valid!", nil))

	// The Reporter names the auditor's refusal.
	bad := &probe.Reporter{URL: u, Vantage: "outside-dc1", Token: "wrong", Client: a.srv.Client()}
	_, err = bad.Send(context.Background(), rep)
	var re *probe.ReportError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusUnauthorized, re.Status)
	assert.Contains(t, err.Error(), "401 Unauthorized: missing or wrong bearer token")
}

// gather scrapes m through a pedantic registry (which checks the collector's consistency)
// and returns each series' value by name{labels}.
func gather(t *testing.T, m prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, x := range mf.GetMetric() {
			var ls []string
			for _, l := range x.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := x.GetGauge().GetValue() + x.GetCounter().GetValue()
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

func TestReportRefusals(t *testing.T) {
	a := newAuditor(t, measure.Options{MaxVantages: 1}, 4096)
	good := report(ms("10.0.0.1", 1, probe.Answered))
	tests := []struct {
		name, path, token, ct string
		body                  []byte
		code                  int
		want                  string
	}{
		{"no token", "/api/v1/measurements/a", "", "application/json", good, 401, "missing or wrong bearer token"},
		{"wrong token", "/api/v1/measurements/a", "s3cret-tokeN", "application/json", good, 401, "missing or wrong bearer token"},
		{"bad vantage", "/api/v1/measurements/UPPER", a.token, "application/json", good, 400, "vantage UPPER is not a valid name"},
		{"escaped vantage", "/api/v1/measurements/a%1b", a.token, "application/json", good, 400, `vantage a\x1b is not a valid name`},
		{"not JSON", "/api/v1/measurements/a", a.token, "text/plain", good, 415, "Content-Type text/plain: send application/json"},
		{"broken JSON", "/api/v1/measurements/a", a.token, "application/json", []byte(`{"measurements":[`), 400, "the body ended early"},
		{"wrong type", "/api/v1/measurements/a", a.token, "application/json", []byte(`{"measurements":{}}`), 400, "field measurements: want []probe.Measurement, not object"},
		{"no measurements", "/api/v1/measurements/a", a.token, "application/json", []byte(`{}`), 400, `no "measurements" array`},
		{"two values", "/api/v1/measurements/a", a.token, "", append(append([]byte{}, good...), good...), 400, "more than one JSON value"},
		{"bad measurement", "/api/v1/measurements/a", a.token, "", report(ms("10.0.0.1", 0, probe.Answered)), 400, "measurements[0]: address 10.0.0.1 port 0"},
		{"other vantage", "/api/v1/measurements/a", a.token, "", []byte(`{"vantage":"b","measurements":[]}`), 400, "the report names vantage b but was sent to /api/v1/measurements/a"},
		{"too big", "/api/v1/measurements/a", a.token, "", bytes.Repeat([]byte(" "), 5000), 413, "more than the bound of 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := a.post(t, tc.path, tc.token, tc.ct, tc.body)
			assert.Equal(t, tc.code, code, body)
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
			assert.Contains(t, e.Error, tc.want)
		})
	}
	assert.Empty(t, a.store.Vantages(), "nothing refused was kept")

	// A body without Content-Length (chunked) is bounded as well.
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+"/api/v1/measurements/a", io.MultiReader(strings.NewReader(`{"measurements":[`), strings.NewReader(strings.Repeat(" ", 8000)+"]}")))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := a.srv.Client().Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)

	code, body := a.post(t, "/api/v1/measurements/a", a.token, "application/json; charset=utf-8", good)
	require.Equal(t, http.StatusOK, code, body)
	code, body = a.post(t, "/api/v1/measurements/b", a.token, "", good)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "too many vantages report to this auditor: 1 already")

	// The token is re-read: a rotated Secret takes effect, the old token stops working.
	require.NoError(t, os.WriteFile(a.tokenF, []byte("rotated\n"), 0o600))
	code, _ = a.post(t, "/api/v1/measurements/a", a.token, "", good)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = a.post(t, "/api/v1/measurements/a", "rotated", "", good)
	assert.Equal(t, http.StatusOK, code)
	// A token file gone: refused, and said so.
	require.NoError(t, os.Remove(a.tokenF))
	code, body = a.post(t, "/api/v1/measurements/a", "rotated", "", good)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "cannot read its probe token file")

}

func TestHandlerOptions(t *testing.T) {
	s := measure.NewStore(measure.Options{})
	_, err := measure.NewHandler(measure.HandlerOptions{Store: s, TokenFile: "/nonexistent/token"})
	assert.ErrorContains(t, err, "probe token file: open /nonexistent/token")
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	_, err = measure.NewHandler(measure.HandlerOptions{Store: s, TokenFile: empty})
	assert.ErrorContains(t, err, "is empty: write the token into it")
	_, err = measure.NewHandler(measure.HandlerOptions{})
	assert.ErrorContains(t, err, "Store is required")

	// Without a token file the auditor takes no reports, but serves what it has.
	h, err := measure.NewHandler(measure.HandlerOptions{Store: s})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := srv.Client().Post(srv.URL+"/api/v1/measurements/a", "application/json", strings.NewReader(`{"measurements":[]}`))
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, string(b), "this auditor takes no reports: start it with --probe-token-file")
	res, err = srv.Client().Get(srv.URL + "/api/v1/measurements")
	require.NoError(t, err)
	b, _ = io.ReadAll(res.Body)
	_ = res.Body.Close()
	assert.JSONEq(t, `{"ttlSeconds":900,"judged":false,"vantages":[],"contradictions":[]}`, string(b))

	// POST and GET are the only methods.
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/v1/measurements/a", nil)
	res, err = srv.Client().Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}
