package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Ack is the auditor's answer to a report (POST /api/v1/measurements/{vantage}).
type Ack struct {
	Vantage  string `json:"vantage"`
	Accepted int    `json:"accepted"`
	// Contradictions counts this vantage's measurements that contradict the auditor's verdicts.
	Contradictions int `json:"contradictions"`
	// Judged: the auditor had verdicts to compare with.
	Judged bool `json:"judged"`
}

// MaxPerReport bounds the measurements sent in one request; a bigger run is sent in parts
// (the auditor merges them), so that no body passes the auditor's bound.
const MaxPerReport = 5000

// Reporter sends reports to an auditor.
type Reporter struct {
	// URL is the auditor's base URL (http[s]://host:port); the report goes to
	// URL/api/v1/measurements/{Vantage}.
	URL     *url.URL
	Vantage string
	// Token is the bearer token (from --token-file).
	Token  string
	Client *http.Client
}

// ParseReportURL checks --report-to: an absolute http or https URL, without query or fragment.
func ParseReportURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("--report-to %q is not the auditor's base URL: want http(s)://host:port (e.g. http://dubboreach-audit.dubboreach:8080)", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// ReadTokenFile reads a bearer token: the file's content without surrounding white space.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" || len(t) > 4096 || strings.ContainsAny(t, "\r\n") {
		return "", fmt.Errorf("--token-file %s: want one line holding the auditor's probe token (not empty, at most 4096 bytes)", path)
	}
	return t, nil
}

// Send posts r to the auditor, in parts of at most MaxPerReport measurements, and returns the
// auditor's answer to the last part (its contradictions count covers the whole run).
func (p *Reporter) Send(ctx context.Context, r *Report) (*Ack, error) {
	c := p.Client
	if c == nil {
		c = http.DefaultClient
	}
	target := p.URL.JoinPath("api", "v1", "measurements", p.Vantage)
	ms := r.Measurements
	var ack *Ack
	for first := true; first || len(ms) > 0; first = false {
		part := *r
		part.Vantage = p.Vantage
		part.Measurements = ms[:min(len(ms), MaxPerReport)]
		ms = ms[len(part.Measurements):]
		a, err := p.post(ctx, c, target.String(), &part)
		if err != nil {
			return nil, err
		}
		ack = a
	}
	ack.Accepted = len(r.Measurements)
	return ack, nil
}

func (p *Reporter) post(ctx context.Context, c *http.Client, target string, r *Report) (*Ack, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.Token)
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reporting to %s: %w", target, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &ReportError{Status: res.StatusCode, Msg: fmt.Sprintf("reporting to %s: %s: %s", target, res.Status, errText(errors.New(msg)))}
	}
	var a Ack
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("reporting to %s: the answer is not the auditor's: %s", target, errText(err))
	}
	return &a, nil
}

// ReportError is an auditor's refusal of a report.
type ReportError struct {
	Status int
	Msg    string
}

func (e *ReportError) Error() string { return e.Msg }
