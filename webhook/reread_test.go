package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// erringNamespaces is an API server that must not be asked, or that cannot answer.
type erringNamespaces struct{ err error }

func (f erringNamespaces) Namespace(context.Context, string) (*corev1.Namespace, error) {
	return nil, f.err
}

func namespace(name string, labelled bool) corev1.Namespace {
	ns := corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if labelled {
		ns.Labels = map[string]string{LabelInject: InjectEnabled}
	}
	return ns
}

// RereadNamespaces trusts a cache that says "labelled", and otherwise asks the API server,
// whose answer wins; a disagreement is reported once per admission.
func TestRereadNamespaces(t *testing.T) {
	askNot := erringNamespaces{errors.New("the API server must not be asked when the cache says labelled")}
	for _, tc := range []struct {
		name          string
		cache, api    NamespaceGetter
		wantLabelled  bool
		wantMissing   bool
		wantDisagreed int
		wantErr       string
	}{
		{name: "cache labelled: API not asked", cache: NewStaticNamespaces([]corev1.Namespace{namespace("shop", true)}), api: askNot, wantLabelled: true},
		{name: "cache lags a new namespace", cache: NewStaticNamespaces(nil), api: NewStaticNamespaces([]corev1.Namespace{namespace("shop", true)}), wantLabelled: true, wantDisagreed: 1},
		{name: "cache lags a new label", cache: NewStaticNamespaces([]corev1.Namespace{namespace("shop", false)}), api: NewStaticNamespaces([]corev1.Namespace{namespace("shop", true)}), wantLabelled: true, wantDisagreed: 1},
		{name: "both unlabelled: agreement", cache: NewStaticNamespaces([]corev1.Namespace{namespace("shop", false)}), api: NewStaticNamespaces([]corev1.Namespace{namespace("shop", false)})},
		{name: "both missing: agreement", cache: NewStaticNamespaces(nil), api: NewStaticNamespaces(nil), wantMissing: true},
		{name: "API server fails", cache: NewStaticNamespaces(nil), api: erringNamespaces{errors.New("connection refused")}, wantErr: "connection refused"},
		{name: "no API reader: the cache's answer", cache: NewStaticNamespaces([]corev1.Namespace{namespace("shop", false)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disagreed := 0
			r := RereadNamespaces{Cache: tc.cache, API: tc.api, Disagreed: func() { disagreed++ }}
			ns, err := r.Namespace(context.Background(), "shop")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Nil(t, ns)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantMissing, ns == nil, "namespace missing")
			assert.Equal(t, tc.wantLabelled, injectionEnabled(ns), "labelled for injection")
			assert.Equal(t, tc.wantDisagreed, disagreed, "disagreements reported")
		})
	}
}

// A pod in a namespace the cache has not seen labelled yet is injected (the API server's
// label wins) and the disagreement is counted in the metric.
func TestHandlerRereadCountsDisagreement(t *testing.T) {
	h, _ := newTestHandler(t, coverage(1, 1))
	h.Namespaces = RereadNamespaces{
		Cache:     NewStaticNamespaces(nil),
		API:       NewStaticNamespaces([]corev1.Namespace{*labelledNS(nil)}),
		Disagreed: h.Metrics.NamespaceDisagreed,
	}
	w := post(h, reviewBody(t, nil, basePod()), "application/json")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), `"patch"`, "the pod is injected from the API server's answer")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.nsDisagreements))
}

// A client that announces a body and then stalls is cut off at the request deadline: the
// server closes the connection (its write deadline has passed too, so no answer is owed to a
// caller the API server has given up on) and counts an error, instead of holding the buffer
// and the in-flight slot for as long as the client likes. The handler runs on a real net/http
// server, whose connection deadlines apply.
func TestHandlerStalledBodyIsCutOff(t *testing.T) {
	h, _ := newTestHandler(t, coverage(1, 1))
	h.Timeout = 300 * time.Millisecond
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"kind\":", Path)
	require.NoError(t, err)
	// Generous: the point is that the server ends it while the client never sends more.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(60*time.Second)))
	answer, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server held the stalled request for 60 s (answer so far %q)", answer)
	}
	assert.NotContains(t, string(answer), "200 OK")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.injections.WithLabelValues(string(ModeNone), string(OutcomeError))), "the cut-off request is counted as an error")
}
