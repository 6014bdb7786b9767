package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Path is where the handler is served; config/webhook points the API server at it.
const Path = "/mutate-v1-pod"

// maxBody bounds a request: the API server caps objects at 3 MiB, and a CREATE review
// carries the object once.
const maxBody = 4 << 20

// firstRead is what a request's buffer starts with, whatever its Content-Length says: the
// buffer grows only as bytes arrive, so a client announcing 4 MiB and sending nothing costs
// this much, not 4 MiB (a typical pod review is 5-20 KiB).
const firstRead = 32 << 10

// DefaultRequestTimeout bounds reading one request and answering it. The API server gives up
// after the webhook's timeoutSeconds (3 s in config/webhook, at most 30 s): past that, nobody
// reads the answer, and a connection that trickles its body only holds memory.
const DefaultRequestTimeout = 10 * time.Second

// NamespaceGetter returns a namespace by name, or nil (and no error) if it does not exist.
type NamespaceGetter interface {
	Namespace(ctx context.Context, name string) (*corev1.Namespace, error)
}

// ReaderNamespaces reads namespaces through a client, normally the manager's cache.
type ReaderNamespaces struct{ Reader client.Reader }

// Namespace implements NamespaceGetter.
func (r ReaderNamespaces) Namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	var ns corev1.Namespace
	if err := r.Reader.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	return &ns, nil
}

// RereadNamespaces reads namespaces from a cache and, when the cache says a namespace is
// missing or not labelled for injection, again from the API server: the API server only sends
// pods from namespaces its selector matched, so such an answer is almost always a cache that
// has not seen a new namespace or label yet, and skipping would silently leave the pod without
// its address. Disagreed, when set, is called each time the API server disagrees with the cache.
type RereadNamespaces struct {
	Cache, API NamespaceGetter
	Disagreed  func()
}

// Namespace implements NamespaceGetter.
func (r RereadNamespaces) Namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns, err := r.Cache.Namespace(ctx, name)
	if err != nil || injectionEnabled(ns) || r.API == nil {
		return ns, err
	}
	fresh, err := r.API.Namespace(ctx, name)
	if err != nil {
		return nil, err
	}
	if injectionEnabled(fresh) != injectionEnabled(ns) && r.Disagreed != nil {
		r.Disagreed()
	}
	return fresh, nil
}

func injectionEnabled(ns *corev1.Namespace) bool {
	return ns != nil && ns.Labels[LabelInject] == InjectEnabled
}

// StaticNamespaces serves namespaces from a fixed list (an --inventory file).
type StaticNamespaces map[string]*corev1.Namespace

// NewStaticNamespaces indexes a list of namespaces by name.
func NewStaticNamespaces(list []corev1.Namespace) StaticNamespaces {
	m := make(StaticNamespaces, len(list))
	for i := range list {
		m[list[i].Name] = &list[i]
	}
	return m
}

// Namespace implements NamespaceGetter.
func (s StaticNamespaces) Namespace(_ context.Context, name string) (*corev1.Namespace, error) {
	return s[name], nil
}

// Handler answers admission.k8s.io/v1 AdmissionReviews for pod creation.
//
// Answers follow the failure policy's logic: a pod whose annotations are wrong is denied (the
// user must fix it, whatever the policy says), while a request that is not a readable
// AdmissionReview gets HTTP 400 and an internal failure (namespace unreadable) HTTP 500, so
// that the API server applies the webhook's failurePolicy to them.
type Handler struct {
	Injector   *Injector
	Namespaces NamespaceGetter
	Metrics    *Metrics // may be nil
	Log        logr.Logger
	// Ready, when set, must return nil before pods are admitted: until the route table has
	// seen every node, auto mode would decide from a partial table. Not ready answers HTTP 503,
	// so the API server applies the failure policy.
	Ready func() error
	// Timeout bounds reading and answering one request (the connection's read and write
	// deadlines); zero means DefaultRequestTimeout.
	Timeout time.Duration
}

var reviewTypeMeta = metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	mode, out, dryRun := ModeNone, OutcomeError, false
	defer func() { h.Metrics.observe(mode, out, dryRun, time.Since(start).Seconds()) }()

	// Deadlines on the connection itself: a client that trickles its body is cut off when the
	// API server would have given up anyway, instead of holding its buffer and its in-flight
	// slot. Not every ResponseWriter supports them (httptest's does not): then the server's own
	// timeouts are all there is.
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(start.Add(timeout))
	_ = rc.SetWriteDeadline(start.Add(timeout))

	req, status, err := DecodeReview(r)
	if err != nil {
		h.Log.Info("refusing malformed admission request", "status", status, "error", err.Error())
		http.Error(w, err.Error(), status)
		return
	}
	if h.Ready != nil {
		if err := h.Ready(); err != nil {
			h.Log.Info("not ready to admit pods", "error", err.Error())
			http.Error(w, "dubboreach webhook is not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	dryRun = req.DryRun != nil && *req.DryRun
	ctx, cancel := context.WithDeadline(r.Context(), start.Add(timeout))
	defer cancel()
	resp, res, err := h.Admit(ctx, req)
	if err != nil {
		h.Log.Error(err, "admission failed", "namespace", req.Namespace, "uid", req.UID)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	mode, out = res.Mode, res.Outcome
	body, err := fastJSON.Marshal(admissionv1.AdmissionReview{TypeMeta: reviewTypeMeta, Response: resp})
	if err != nil {
		mode, out = ModeNone, OutcomeError
		http.Error(w, "encoding the AdmissionReview answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// DecodeReview reads an admission.k8s.io/v1 AdmissionReview request from r. On failure it
// returns the HTTP status to answer with and an error that says what was wrong and what to do.
func DecodeReview(r *http.Request) (*admissionv1.AdmissionRequest, int, error) {
	if r.Method != http.MethodPost {
		return nil, http.StatusMethodNotAllowed, fmt.Errorf("method %s: the admission webhook takes POST requests with an AdmissionReview", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q: the admission webhook reads application/json", ct)
		}
	}
	body, err := readBody(r)
	if errors.Is(err, errTooLarge) || len(body) > maxBody {
		return nil, http.StatusRequestEntityTooLarge, errTooLarge
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err)
	}
	req, err := ParseReview(body)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	return req, http.StatusOK, nil
}

// readBody reads at most maxBody+1 bytes. The buffer starts at the Content-Length when that is
// small (no growing copies for ordinary reviews) and never above firstRead: memory follows the
// bytes that actually arrived, not what the client announced.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBody {
		return nil, errTooLarge
	}
	size := int64(firstRead)
	if n := r.ContentLength; n > 0 && n < size {
		size = n + 1 // +1: ReadFrom stops at EOF without growing
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxBody+1)); err != nil {
		return nil, err
	}
	if r.ContentLength > 0 && int64(buf.Len()) != r.ContentLength && buf.Len() <= maxBody {
		return nil, fmt.Errorf("body is %d bytes, Content-Length said %d", buf.Len(), r.ContentLength)
	}
	return buf.Bytes(), nil
}

var errTooLarge = fmt.Errorf("request body is over %d bytes: not an AdmissionReview for a pod", maxBody)

// ParseReview decodes an AdmissionReview and returns its request. Errors name what is wrong.
func ParseReview(body []byte) (*admissionv1.AdmissionRequest, error) {
	if len(body) == 0 {
		return nil, errors.New("empty request body: want an admission.k8s.io/v1 AdmissionReview")
	}
	var review admissionv1.AdmissionReview
	if err := fastJSON.Unmarshal(body, &review); err != nil {
		return nil, fmt.Errorf("request body is not an AdmissionReview: %w", err)
	}
	if review.APIVersion != reviewTypeMeta.APIVersion || review.Kind != reviewTypeMeta.Kind {
		return nil, fmt.Errorf("request is apiVersion %q kind %q: want %s %s (set admissionReviewVersions: [v1] in the MutatingWebhookConfiguration)",
			review.APIVersion, review.Kind, reviewTypeMeta.APIVersion, reviewTypeMeta.Kind)
	}
	if review.Request == nil {
		return nil, errors.New("AdmissionReview has no request field")
	}
	if review.Request.UID == "" {
		return nil, errors.New("AdmissionReview request has no uid")
	}
	return review.Request, nil
}

var podKind = metav1.GroupVersionKind{Group: "", Version: "v1", Kind: "Pod"}

// Admit answers one admission request. The error is for internal failures only (HTTP 500);
// refusals are answers with Allowed false.
func (h *Handler) Admit(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, Result, error) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	var pod *corev1.Pod
	refuse := func(code int32, reason metav1.StatusReason, msg string) (*admissionv1.AdmissionResponse, Result, error) {
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}
		// Who asked and for which pod: a generated name (name empty, generateName set) is
		// logged as "prefix*", and the user is often a controller's service account.
		name := req.Name
		if pod != nil {
			name = podName(pod)
		}
		h.Log.Info("denied pod", "namespace", req.Namespace, "name", name, "uid", req.UID,
			"user", req.UserInfo.Username, "dryRun", req.DryRun != nil && *req.DryRun, "reason", msg)
		return resp, Result{Outcome: OutcomeError, Mode: ModeNone}, nil
	}
	if req.Kind != podKind {
		return refuse(http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("dubboreach webhook mutates v1 Pods, got %s/%s %s: fix the rules of the MutatingWebhookConfiguration (resources: [pods])", req.Kind.Group, req.Kind.Version, req.Kind.Kind))
	}
	if req.Operation != admissionv1.Create || req.SubResource != "" {
		// Only creation is injected; never stand in the way of anything else (deletes above all).
		return resp, Result{Outcome: OutcomeSkipped, Mode: ModeNone, Reason: "not a pod creation"}, nil
	}
	if len(req.Object.Raw) == 0 {
		return refuse(http.StatusBadRequest, metav1.StatusReasonBadRequest, "AdmissionReview request.object is empty: want the Pod being created")
	}
	if raw := bytes.TrimSpace(req.Object.Raw); len(raw) == 0 || raw[0] != '{' {
		return refuse(http.StatusBadRequest, metav1.StatusReasonBadRequest, "AdmissionReview request.object is not a JSON object: want the Pod being created")
	}
	pod, err := decodePod(req.Object.Raw)
	if err != nil {
		return refuse(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("AdmissionReview request.object is not a v1 Pod: %v", err))
	}
	// The request's namespace is authoritative: a pod object often leaves it empty on create.
	if req.Namespace != "" {
		pod.Namespace = req.Namespace
	}
	if pod.Namespace == "" {
		return refuse(http.StatusBadRequest, metav1.StatusReasonBadRequest, "AdmissionReview request has no namespace and neither has the pod")
	}
	var ns *corev1.Namespace
	if h.Namespaces != nil {
		var err error
		if ns, err = h.Namespaces.Namespace(ctx, pod.Namespace); err != nil {
			return nil, Result{}, err
		}
	}
	res, err := h.Injector.Mutate(pod, ns)
	if err != nil {
		var d *Denial
		if errors.As(err, &d) {
			return refuse(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, d.Message)
		}
		return nil, res, err
	}
	if len(res.Patch) > 0 {
		p, err := fastJSON.Marshal(res.Patch)
		if err != nil {
			return nil, res, fmt.Errorf("encoding the patch: %w", err)
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = p, &pt
	}
	for _, w := range res.Warnings {
		resp.Warnings = append(resp.Warnings, "dubboreach: "+w)
	}
	if log := h.Log.V(1); log.Enabled() {
		log.Info("admitted pod", "namespace", pod.Namespace, "name", podName(pod), "uid", req.UID,
			"result", res.Outcome, "mode", res.Mode, "reason", res.Reason, "dryRun", req.DryRun != nil && *req.DryRun)
	}
	return resp, res, nil
}

func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}
