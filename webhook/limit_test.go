package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
)

// A request that arrives while max others are in flight is answered 429 with Retry-After,
// counted, and its body is never read; once a slot frees, requests are served again.
func TestLimitInFlightRejectsOverMax(t *testing.T) {
	h, _ := newTestHandler(t, coverage(1, 1))
	const max = 2
	entered := make(chan struct{})
	release := make(chan struct{})
	held := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	})
	first := true
	var mu sync.Mutex
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hold := first
		mu.Unlock()
		if hold {
			held(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
	lim := LimitInFlight(next, max, h.Metrics)

	var wg sync.WaitGroup
	for i := 0; i < max; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lim.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, Path, nil))
		}()
		<-entered // this one holds a slot
	}

	r := httptest.NewRequest(http.MethodPost, Path, unreadable{})
	w := httptest.NewRecorder()
	lim.ServeHTTP(w, r)
	assert.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.Contains(t, w.Body.String(), "--max-in-flight 2")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.rejected))

	mu.Lock()
	first = false
	mu.Unlock()
	close(release)
	wg.Wait()

	w = post(lim, reviewBody(t, nil, basePod()), "application/json")
	assert.True(t, answer(t, w).Allowed)
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.rejected), "a request with a free slot is not counted")
}

// unreadable fails the test's expectations if the handler reads it.
type unreadable struct{}

func (unreadable) Read([]byte) (int, error) { return 0, errors.New("body must not be read") }

// A Content-Length over the limit is refused with 413 before any byte of the body is read.
func TestHandlerContentLengthOverLimit(t *testing.T) {
	h, _ := newTestHandler(t, coverage(1, 1))
	r := httptest.NewRequest(http.MethodPost, Path, unreadable{})
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = maxBody + 1
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), "over")
}

// A dry-run admission is answered (with the same patch) but not counted as an injection.
func TestHandlerDryRunNotCounted(t *testing.T) {
	h, _ := newTestHandler(t, coverage(1, 1))
	injected := h.Metrics.injections.WithLabelValues(string(ModePod), string(OutcomeInjected))
	dry := true
	body := reviewBody(t, func(r *admissionv1.AdmissionRequest) { r.DryRun = &dry }, basePod())
	resp := answer(t, post(h, body, "application/json"))
	require.True(t, resp.Allowed)
	require.NotEmpty(t, resp.Patch)
	assert.Equal(t, 0.0, testutil.ToFloat64(injected))

	resp = answer(t, post(h, bytes.Clone(reviewBody(t, nil, basePod())), "application/json"))
	require.True(t, resp.Allowed)
	assert.Equal(t, 1.0, testutil.ToFloat64(injected), "the same review without dryRun is counted")
}
