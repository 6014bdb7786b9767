package measure

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/dubboreach/dubboreach/registry"
	"github.com/dubboreach/dubboreach/registry/probe"
)

// DefaultMaxBody bounds a report's body: 20000 measurements (probe's default bound) of a few
// hundred bytes each fit; a probe sends bigger runs in parts (probe.MaxPerReport).
const DefaultMaxBody = 16 << 20

// maxTokenFile bounds the token file read.
const maxTokenFile = 4096

// HandlerOptions configure the measurements API.
type HandlerOptions struct {
	Store *Store
	// TokenFile holds the bearer token probes must send. It is read at every report, so a
	// rotated token (a re-mounted Secret) takes effect without a restart. Empty: reports are
	// refused (403) and only the GET endpoints serve.
	TokenFile string
	// Latest returns the auditor's latest result (registry.Holder.Latest), for the verdicts.
	Latest func() *registry.Result
	// MaxBody bounds a report's body (default DefaultMaxBody).
	MaxBody int64
	// Metrics, when set, counts reports.
	Metrics *Metrics
	Log     logr.Logger
}

// Handler serves the measurements API:
//
//	POST /api/v1/measurements/{vantage}  a probe's report (body: probe.Report JSON), bearer token
//	GET  /api/v1/measurements            vantages and contradictions
//	GET  /api/v1/measurements/{vantage}  one vantage's measurements and contradictions
type Handler struct {
	o   HandlerOptions
	mux *http.ServeMux
}

// NewHandler checks the options (the token file must be readable and not empty) and returns
// the handler.
func NewHandler(o HandlerOptions) (*Handler, error) {
	if o.Store == nil {
		return nil, errors.New("measure: HandlerOptions.Store is required")
	}
	if o.Latest == nil {
		o.Latest = func() *registry.Result { return nil }
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.TokenFile != "" {
		if _, err := readToken(o.TokenFile); err != nil {
			return nil, err
		}
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	for p, hh := range h.Routes() {
		h.mux.Handle(p, hh)
	}
	return h, nil
}

// Routes are the handler's patterns for an http.ServeMux shared with the dashboard (which
// answers the rest of /api/v1/).
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /api/v1/measurements/{vantage}": http.HandlerFunc(h.post),
		"GET /api/v1/measurements":            http.HandlerFunc(h.list),
		"GET /api/v1/measurements/{vantage}":  http.HandlerFunc(h.one),
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// readToken reads a token file: bounded, trimmed, not empty.
func readToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("probe token file: %w (the file holding the bearer token probes send)", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("probe token file %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("probe token file %s is larger than %d bytes: want just the token", path, maxTokenFile)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("probe token file %s is empty: write the token into it (e.g. head -c 32 /dev/urandom | base64)", path)
	}
	return b, nil
}

// apiError is the error body of every endpoint, as the dashboard's API writes it.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) fail(w http.ResponseWriter, code int, outcome, msg string) {
	h.o.Metrics.report(outcome)
	writeJSON(w, code, apiError{Error: msg})
}

// authorized checks the bearer token; it answers the request itself when not.
func (h *Handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if h.o.TokenFile == "" {
		h.fail(w, http.StatusForbidden, "refused", "this auditor takes no reports: start it with --probe-token-file")
		return false
	}
	want, err := readToken(h.o.TokenFile)
	if err != nil {
		h.o.Log.Error(err, "cannot read the probe token file; refusing reports")
		h.fail(w, http.StatusServiceUnavailable, "refused", "the auditor cannot read its probe token file; see its log")
		return false
	}
	auth := r.Header.Get("Authorization")
	scheme, got, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dubboreach"`)
		h.fail(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token: send Authorization: Bearer <the token in the auditor's --probe-token-file>")
		return false
	}
	return true
}

// reportBody is what the auditor reads of a probe.Report; other fields are ignored.
type reportBody struct {
	Vantage      string              `json:"vantage"`
	MeasuredAt   time.Time           `json:"measuredAt"`
	Measurements []probe.Measurement `json:"measurements"`
}

// DecodeReport reads one report from body: a single JSON object with a measurements array.
func DecodeReport(body io.Reader) (vantage string, measuredAt time.Time, ms []probe.Measurement, err error) {
	dec := json.NewDecoder(body)
	var rb reportBody
	if err := dec.Decode(&rb); err != nil {
		return "", time.Time{}, nil, fmt.Errorf("the body is not a probe report (JSON of `dubboreach probe -o json`): %s", jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", time.Time{}, nil, errors.New("the body holds more than one JSON value: send one report")
	}
	if rb.Measurements == nil {
		return "", time.Time{}, nil, errors.New(`the report has no "measurements" array`)
	}
	return rb.Vantage, rb.MeasuredAt, rb.Measurements, nil
}

func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s: want %s, not %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ended early"
	}
	return text(err.Error(), 200)
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) {
		return
	}
	name := r.PathValue("vantage")
	if err := ValidVantage(name); err != nil {
		h.fail(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			h.fail(w, http.StatusUnsupportedMediaType, "invalid", "Content-Type "+text(ct, 80)+": send application/json")
			return
		}
	}
	if r.ContentLength > h.o.MaxBody {
		h.fail(w, http.StatusRequestEntityTooLarge, "invalid", fmt.Sprintf("the report is %d bytes, more than the bound of %d: send it in parts", r.ContentLength, h.o.MaxBody))
		return
	}
	body := http.MaxBytesReader(w, r.Body, h.o.MaxBody)
	v, at, ms, err := DecodeReport(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || strings.Contains(err.Error(), "request body too large") {
			h.fail(w, http.StatusRequestEntityTooLarge, "invalid", fmt.Sprintf("the report is more than the bound of %d bytes: send it in parts", h.o.MaxBody))
			return
		}
		h.fail(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if v != "" && v != name {
		h.fail(w, http.StatusBadRequest, "invalid", fmt.Sprintf("the report names vantage %s but was sent to %s", text(v, 80), r.URL.Path))
		return
	}
	if err := h.o.Store.Put(name, at, ms); err != nil {
		if errors.Is(err, ErrTooManyVantages) || errors.Is(err, ErrFull) {
			h.fail(w, http.StatusServiceUnavailable, "refused", err.Error())
			return
		}
		h.fail(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	h.o.Metrics.report("accepted")
	n := 0
	for _, c := range h.o.Store.Compare(h.o.Latest()) {
		if c.Vantage == name {
			n++
		}
	}
	h.o.Log.V(1).Info("probe report accepted", "vantage", name, "measurements", len(ms), "contradictions", n)
	writeJSON(w, http.StatusOK, probe.Ack{Vantage: name, Accepted: len(ms), Contradictions: n, Judged: h.o.Latest() != nil})
}

// List is the body of GET /api/v1/measurements (docs/probe.md).
type List struct {
	TTLSeconds float64 `json:"ttlSeconds"`
	// Judged: the auditor has verdicts to compare with (a first scan finished).
	Judged         bool            `json:"judged"`
	Vantages       []Vantage       `json:"vantages"`
	Contradictions []Contradiction `json:"contradictions"`
}

// One is the body of GET /api/v1/measurements/{vantage}.
type One struct {
	Vantage        Vantage         `json:"vantage"`
	Judged         bool            `json:"judged"`
	Measurements   []Entry         `json:"measurements"`
	Contradictions []Contradiction `json:"contradictions"`
}

func (h *Handler) list(w http.ResponseWriter, _ *http.Request) {
	res := h.o.Latest()
	writeJSON(w, http.StatusOK, List{TTLSeconds: h.o.Store.TTL().Seconds(), Judged: res != nil,
		Vantages: h.o.Store.Vantages(), Contradictions: h.o.Store.Compare(res)})
}

func (h *Handler) one(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("vantage")
	if err := ValidVantage(name); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	var found *Vantage
	for _, v := range h.o.Store.Vantages() {
		if v.Name == name {
			found = &v
		}
	}
	if found == nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("no live measurements from vantage %s (none reported, or older than %s)", name, h.o.Store.TTL())})
		return
	}
	res := h.o.Latest()
	cs := []Contradiction{}
	for _, c := range h.o.Store.Compare(res) {
		if c.Vantage == name {
			cs = append(cs, c)
		}
	}
	writeJSON(w, http.StatusOK, One{Vantage: *found, Judged: res != nil, Measurements: h.o.Store.Entries(name), Contradictions: cs})
}
