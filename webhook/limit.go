package webhook

import (
	"net/http"
	"strconv"
)

// DefaultMaxInFlight is how many admission requests one replica answers at once. An answer
// takes well under a millisecond, so this is thousands of admissions a second; what it bounds
// is memory: each request in flight holds at most its body (4 MiB), so the worst case stays
// far below the Deployment's memory limit.
const DefaultMaxInFlight = 32

// LimitInFlight answers 429 Too Many Requests, without reading the body, to a request that
// arrives while max others are being answered. The API server then applies the webhook's
// failure policy; a client stuck in the middle of its body leaves at the request deadline
// (Handler.Timeout). max < 1 means DefaultMaxInFlight.
func LimitInFlight(next http.Handler, max int, m *Metrics) http.Handler {
	if max < 1 {
		max = DefaultMaxInFlight
	}
	slots := make(chan struct{}, max)
	retry := strconv.Itoa(1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
		default:
			m.Rejected()
			w.Header().Set("Retry-After", retry)
			http.Error(w, "dubboreach webhook: too many admission requests in flight (--max-in-flight "+strconv.Itoa(max)+"): retry", http.StatusTooManyRequests)
		}
	})
}
