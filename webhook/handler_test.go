package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func reviewBody(t testing.TB, mutate func(r *admissionv1.AdmissionRequest), pod *corev1.Pod) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	req := &admissionv1.AdmissionRequest{
		UID:       types.UID("3f7a2c1e-0000-4000-8000-000000000001"),
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "shop",
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}
	if mutate != nil {
		mutate(req)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: reviewTypeMeta, Request: req})
	require.NoError(t, err)
	return b
}

func newTestHandler(t testing.TB, table RouteTable) (*Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	return &Handler{
		Injector:   &Injector{Routes: table, Config: Config{OwnNamespace: "dubboreach-system"}},
		Namespaces: NewStaticNamespaces([]corev1.Namespace{*labelledNS(nil), {ObjectMeta: metav1.ObjectMeta{Name: "plain"}}}),
		Metrics:    m,
	}, reg
}

func post(h http.Handler, body []byte, contentType string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func answer(t *testing.T, w *httptest.ResponseRecorder) *admissionv1.AdmissionResponse {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var review admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &review))
	assert.Equal(t, reviewTypeMeta, review.TypeMeta)
	require.NotNil(t, review.Response)
	return review.Response
}

func TestHandlerAnswers(t *testing.T) {
	tests := []struct {
		name    string
		pod     func(*corev1.Pod)
		req     func(*admissionv1.AdmissionRequest)
		allowed bool
		patched bool
		code    int32
		message string
		mode    Mode
		result  Outcome
		dryRun  bool // timed, not counted as an injection
	}{
		{name: "injects", allowed: true, patched: true, mode: ModePod, result: OutcomeInjected},
		{name: "dry run gets the same patch", req: func(r *admissionv1.AdmissionRequest) { dry := true; r.DryRun = &dry }, allowed: true, patched: true, mode: ModePod, result: OutcomeInjected, dryRun: true},
		{name: "namespace from the request wins", pod: func(p *corev1.Pod) { p.Namespace = "" }, allowed: true, patched: true, mode: ModePod, result: OutcomeInjected},
		{name: "unlabelled namespace", req: func(r *admissionv1.AdmissionRequest) { r.Namespace = "plain" }, allowed: true, mode: ModeNone, result: OutcomeSkipped},
		{name: "update is not ours", req: func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Update }, allowed: true, mode: ModeNone, result: OutcomeSkipped},
		{name: "delete is never refused", req: func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Delete; r.Object.Raw = nil }, allowed: true, mode: ModeNone, result: OutcomeSkipped},
		{name: "subresource is not ours", req: func(r *admissionv1.AdmissionRequest) { r.SubResource = "ephemeralcontainers" }, allowed: true, mode: ModeNone, result: OutcomeSkipped},
		{
			name: "not a pod",
			req: func(r *admissionv1.AdmissionRequest) {
				r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
			},
			code: 400, message: "dubboreach webhook mutates v1 Pods, got apps/v1 Deployment: fix the rules", mode: ModeNone, result: OutcomeError,
		},
		{
			name: "object is not a pod",
			req:  func(r *admissionv1.AdmissionRequest) { r.Object.Raw = []byte(`{"spec":{"containers":"app"}}`) },
			code: 400, message: "AdmissionReview request.object is not a v1 Pod", mode: ModeNone, result: OutcomeError,
		},
		{
			name: "object missing",
			req:  func(r *admissionv1.AdmissionRequest) { r.Object.Raw = nil },
			code: 400, message: "request.object is empty", mode: ModeNone, result: OutcomeError,
		},
		{
			name: "no namespace anywhere",
			pod:  func(p *corev1.Pod) { p.Namespace = "" },
			req:  func(r *admissionv1.AdmissionRequest) { r.Namespace = "" },
			code: 400, message: "no namespace", mode: ModeNone, result: OutcomeError,
		},
		{
			name: "bad annotation value",
			pod:  func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationAddress: "nodeIP"} },
			code: 422, message: `pod annotation dubboreach.io/address="nodeIP" is not understood: use one of auto, pod, host`, mode: ModeNone, result: OutcomeError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, reg := newTestHandler(t, coverage(1, 1))
			pod := basePod()
			if tt.pod != nil {
				tt.pod(pod)
			}
			resp := answer(t, post(h, reviewBody(t, tt.req, pod), "application/json"))
			assert.Equal(t, types.UID("3f7a2c1e-0000-4000-8000-000000000001"), resp.UID)
			assert.Equal(t, tt.allowed, resp.Allowed)
			if tt.patched {
				require.NotNil(t, resp.PatchType)
				assert.Equal(t, admissionv1.PatchTypeJSONPatch, *resp.PatchType)
				var ops []PatchOp
				require.NoError(t, json.Unmarshal(resp.Patch, &ops))
				got := applyPatch(t, pod, ops)
				assert.Equal(t, []corev1.EnvVar{podIPVar()}, got.Spec.Containers[0].Env)
			} else {
				assert.Empty(t, resp.Patch)
			}
			if !tt.allowed {
				require.NotNil(t, resp.Result)
				assert.Equal(t, tt.code, resp.Result.Code)
				assert.Contains(t, resp.Result.Message, tt.message)
			}
			counted := 1.0
			if tt.dryRun {
				counted = 0
			}
			assert.Equal(t, counted, testutil.ToFloat64(h.Metrics.injections.WithLabelValues(string(tt.mode), string(tt.result))))
			n, err := testutil.GatherAndCount(reg, MetricDuration)
			require.NoError(t, err)
			assert.Equal(t, 1, n)
		})
	}
}

func TestHandlerWarnings(t *testing.T) {
	h, _ := newTestHandler(t, coverage(0, 1))
	resp := answer(t, post(h, reviewBody(t, nil, basePod()), "application/json"))
	require.True(t, resp.Allowed)
	require.Len(t, resp.Warnings, 1)
	assert.True(t, strings.HasPrefix(resp.Warnings[0], "dubboreach: host mode: container app port 20880 has no hostPort"), resp.Warnings[0])
}

func TestHandlerMalformedRequests(t *testing.T) {
	valid := reviewBody(t, nil, basePod())
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		status      int
		message     string
	}{
		{name: "GET", method: http.MethodGet, status: 405, message: "takes POST requests"},
		{name: "wrong content type", body: string(valid), contentType: "text/plain", status: 415, message: `content type "text/plain"`},
		{name: "empty body", body: "", status: 400, message: "empty request body"},
		{name: "not JSON", body: "kind: AdmissionReview", status: 400, message: "request body is not an AdmissionReview"},
		{name: "JSON array", body: "[]", status: 400, message: "request body is not an AdmissionReview"},
		{name: "v1beta1", body: `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, status: 400, message: "set admissionReviewVersions: [v1]"},
		{name: "no request", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, status: 400, message: "has no request"},
		{name: "no uid", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, status: 400, message: "has no uid"},
		{name: "too large", body: strings.Repeat(" ", maxBody+1), status: 413, message: "over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newTestHandler(t, coverage(1, 1))
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, Path, strings.NewReader(tt.body))
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			r.Header.Set("Content-Type", ct)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tt.status, w.Code)
			assert.Contains(t, w.Body.String(), tt.message)
			assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.injections.WithLabelValues("none", "error")))
		})
	}
}

type failingNamespaces struct{}

func (failingNamespaces) Namespace(context.Context, string) (*corev1.Namespace, error) {
	return nil, errors.New("reading namespace shop: cache not synced")
}

// An internal failure is an HTTP 500, so that the API server applies the failure policy
// instead of treating it as the webhook's verdict on the pod.
func TestHandlerInternalFailureIs500(t *testing.T) {
	h, _ := newTestHandler(t, coverage(1, 1))
	h.Namespaces = failingNamespaces{}
	w := post(h, reviewBody(t, nil, basePod()), "application/json")
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Contains(t, w.Body.String(), "cache not synced")
}

// FuzzParseReview feeds arbitrary bytes to the decoder and the whole handler: no panic, and
// every answer is either a well-formed AdmissionReview or an HTTP error with a message.
func FuzzParseReview(f *testing.F) {
	pod := basePod()
	f.Add(reviewBody(f, nil, pod))
	f.Add(reviewBody(f, func(r *admissionv1.AdmissionRequest) { r.Object.Raw = []byte(`{"spec":{"containers":[{}]}}`) }, pod))
	f.Add(reviewBody(f, func(r *admissionv1.AdmissionRequest) { r.Object.Raw = []byte(`null`) }, pod))
	f.Add(reviewBody(f, func(r *admissionv1.AdmissionRequest) { r.Kind.Kind = "Service" }, pod))
	withAnn := basePod()
	withAnn.Annotations = map[string]string{AnnotationAddress: "host", AnnotationPort: "dubbo", AnnotationContainers: "app,app"}
	withAnn.Spec.InitContainers = []corev1.Container{{Name: "side", RestartPolicy: always()}}
	f.Add(reviewBody(f, nil, withAnn))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"shop","object":{"metadata":{"annotations":null},"spec":{"containers":null,"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[]}}}}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"shop","object":{"spec":{"containers":[{"name":"a","env":[{"name":"DUBBO_IP_TO_REGISTRY","valueFrom":{}}]}]}}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"apiVersion":1}`))
	f.Add([]byte("\x00\xff"))
	f.Add([]byte(``))

	h, _ := newTestHandler(f, coverage(1, 2))
	h.Injector.Config.RequireRoutableNode = true
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseReview(body)
		if err != nil {
			require.NotEmpty(t, err.Error())
			assert.Nil(t, req)
		}
		w := post(h, body, "application/json")
		if w.Code != http.StatusOK {
			require.NotEmpty(t, strings.TrimSpace(w.Body.String()), "HTTP %d without a message", w.Code)
			require.Error(t, err, "HTTP %d for a request ParseReview accepted", w.Code)
			return
		}
		require.NoError(t, err)
		var review admissionv1.AdmissionReview
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &review))
		require.NotNil(t, review.Response)
		assert.Equal(t, req.UID, review.Response.UID)
		if !review.Response.Allowed {
			require.NotNil(t, review.Response.Result)
			assert.NotEmpty(t, review.Response.Result.Message)
		}
		if len(review.Response.Patch) > 0 {
			// The patch must apply to the object it was computed from.
			var ops []PatchOp
			require.NoError(t, json.Unmarshal(review.Response.Patch, &ops))
			p, err := jsonpatch.DecodePatch(review.Response.Patch)
			require.NoError(t, err)
			_, err = p.Apply(req.Object.Raw)
			require.NoError(t, err, "patch %s does not apply to %s", review.Response.Patch, req.Object.Raw)
		}
	})
}
