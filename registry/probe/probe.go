// Package probe measures, from where it runs, whether registered Dubbo providers answer: a TCP
// connect, then the protocol's own handshake (a Dubbo heartbeat for dubbo://, the HTTP/2
// connection preface for tri://), and nothing more. Verdicts are predictions from declared
// fabric facts; measurements are what a consumer standing at the same place would see. The
// auditor side (Store, Handler) keeps measurements reported by probes elsewhere and flags
// where they contradict the verdicts.
package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Result is the outcome of probing one address:port; the values are a JSON contract (docs/probe.md).
type Result string

// Results.
const (
	// Answered: the protocol's handshake was answered (Dubbo heartbeat response, HTTP/2 SETTINGS).
	Answered Result = "answered"
	// Connected: TCP connected; the protocol has no handshake the probe knows.
	Connected Result = "connected"
	// WrongAnswer: TCP connected, but the handshake got no answer, or not the protocol's:
	// something listens, but not a provider of that protocol.
	WrongAnswer Result = "wrong-answer"
	// Refused: the address answered the connect with a reset (nothing listens, or a firewall rejects).
	Refused Result = "refused"
	// Timeout: no answer to the connect within the timeout (dropped on the way, or no such host).
	Timeout Result = "timeout"
	// Unreachable: the network said so (no route, host or network unreachable).
	Unreachable Result = "unreachable"
	// Failed: any other local error (out of file descriptors, ...).
	Failed Result = "error"
)

// Results lists every Result, for validation and metrics.
var Results = []Result{Answered, Connected, WrongAnswer, Refused, Timeout, Unreachable, Failed}

// Valid says r is one of Results.
func (r Result) Valid() bool {
	for _, x := range Results {
		if r == x {
			return true
		}
	}
	return false
}

// OK says a consumer at the probe's place would reach a provider there.
func (r Result) OK() bool { return r == Answered || r == Connected }

// Reached says the network delivered a TCP connection to the address (whatever listens). This,
// not OK, is what a verdict about routing predicts.
func (r Result) Reached() bool { return r == Answered || r == Connected || r == WrongAnswer }

// Measurement is the probe of one address:port. The JSON tags are a contract (docs/probe.md).
type Measurement struct {
	Address  string `json:"address"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol,omitempty"`
	Result   Result `json:"result"`
	// Detail says what happened, for people (bounded, escaped).
	Detail string `json:"detail,omitempty"`
	// Millis is the time from the start of the connect to the end of the handshake.
	Millis float64 `json:"ms"`
	// Registrations counts the provider registrations naming this address:port; Services
	// holds a few of their services (escaped), for people.
	Registrations int      `json:"registrations,omitempty"`
	Services      []string `json:"services,omitempty"`
}

// Options say how to probe.
type Options struct {
	// Concurrency is the number of addresses probed at once (default 64).
	Concurrency int
	// Timeout bounds the probe of one address, connect and handshake (default 3s).
	Timeout time.Duration
	// Rate bounds new connections per second (0: no bound beyond Concurrency).
	Rate float64
	// Dial replaces net.Dialer.DialContext (tests count what is contacted).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// MaxConcurrency bounds Options.Concurrency: each probe holds a socket.
const MaxConcurrency = 4096

// Probe measures every target and returns one Measurement per target, in the targets' order.
// It returns early (the rest measured as errors) when ctx ends.
func Probe(ctx context.Context, targets []Target, o Options) []Measurement {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	o.Concurrency = min(o.Concurrency, MaxConcurrency, max(len(targets), 1))
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	out := make([]Measurement, len(targets))
	lim := newLimiter(o.Rate)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(targets) {
					return
				}
				t := &targets[i]
				m := Measurement{Address: t.Addr.Addr().String(), Port: int(t.Addr.Port()), Protocol: t.Protocol,
					Registrations: t.Registrations, Services: t.Services}
				if err := lim.wait(ctx); err != nil {
					m.Result, m.Detail = Failed, "not probed: "+err.Error()
				} else {
					m.Result, m.Detail, m.Millis = probeOne(ctx, t, o)
				}
				out[i] = m
			}
		})
	}
	wg.Wait()
	return out
}

var heartbeatID atomic.Uint64

func init() { heartbeatID.Store(uint64(time.Now().UnixNano())) }

func probeOne(ctx context.Context, t *Target, o Options) (Result, string, float64) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	ms := func() float64 { return float64(time.Since(start).Microseconds()) / 1000 }
	conn, err := o.Dial(ctx, "tcp", t.Addr.String())
	if err != nil {
		r, d := classify(err)
		return r, d, ms()
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	switch handshakeOf(t.Protocol) {
	case "dubbo":
		id := heartbeatID.Add(1)
		if _, err := conn.Write(HeartbeatRequest(id)); err != nil {
			return WrongAnswer, "connected, but sending the Dubbo heartbeat failed: " + errText(err), ms()
		}
		if _, err := ReadHeartbeatResponse(conn, id); err != nil {
			return WrongAnswer, "connected, but no Dubbo heartbeat response: " + errText(err), ms()
		}
		return Answered, "Dubbo heartbeat answered", ms()
	case "h2":
		if _, err := conn.Write(H2Preface()); err != nil {
			return WrongAnswer, "connected, but sending the HTTP/2 preface failed: " + errText(err), ms()
		}
		if err := ReadH2Settings(conn); err != nil {
			return WrongAnswer, "connected, but no HTTP/2 SETTINGS frame: " + errText(err), ms()
		}
		return Answered, "HTTP/2 preface answered with SETTINGS", ms()
	}
	return Connected, "TCP connected (no handshake known for protocol " + quoteProto(t.Protocol) + ")", ms()
}

// handshakeOf names the handshake for a registered protocol: Dubbo's exchange protocol, or
// HTTP/2 for triple (and gRPC, which Dubbo 3 also registers).
func handshakeOf(protocol string) string {
	switch protocol {
	case "dubbo":
		return "dubbo"
	case "tri", "grpc":
		return "h2"
	}
	return ""
}

func quoteProto(p string) string {
	if p == "" {
		return "unknown"
	}
	return p
}

// classify maps a connect error to a Result and a detail.
func classify(err error) (Result, string) {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused, "connection refused"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return Timeout, "no answer to the TCP connect within the timeout"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return Unreachable, "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return Unreachable, "network unreachable"
	case errors.Is(err, context.Canceled):
		return Failed, "not probed: cancelled"
	}
	return Failed, errText(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errText is an error for a detail field: timeouts named as such, the rest bounded.
func errText(err error) string {
	if isTimeout(err) || errors.Is(err, os.ErrDeadlineExceeded) {
		return "no answer within the timeout"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the connection was closed"
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// limiter spaces connection starts by 1/rate.
type limiter struct {
	mu    sync.Mutex
	every time.Duration
	next  time.Time
}

func newLimiter(rate float64) *limiter {
	if rate <= 0 {
		return &limiter{}
	}
	return &limiter{every: time.Duration(float64(time.Second) / rate)}
}

func (l *limiter) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.every == 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(l.every)
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Addr is a parsed address:port of a measurement.
func (m *Measurement) Addr() (netip.AddrPort, bool) {
	a, err := netip.ParseAddr(m.Address)
	if err != nil || m.Port <= 0 || m.Port > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(m.Port)), true
}
