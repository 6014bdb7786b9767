package dashboard

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dubboreach/dubboreach/registry"
)

// openStream opens /api/v1/events and waits for the stream's first line, so the server holds
// the stream before the next one is opened; it returns the response (caller closes).
func openStream(t *testing.T, url string) *http.Response {
	t.Helper()
	res, err := http.Get(url + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusOK {
		if _, err := bufio.NewReader(res.Body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// One client cannot hold more event streams than MaxStreamsPerClient: the next one gets 429
// with Retry-After and a message saying what to do, and a stream closed frees its slot.
func TestEventStreamsCappedPerClient(t *testing.T) {
	h := registry.NewHolder()
	mux := http.NewServeMux()
	Register(mux, Options{Holder: h, Context: t.Context(), EventInterval: 10 * time.Millisecond, MaxStreamsPerClient: 2})
	s := httptest.NewServer(mux)
	defer s.Close()

	a, b := openStream(t, s.URL), openStream(t, s.URL)
	defer b.Body.Close()
	if a.StatusCode != http.StatusOK || b.StatusCode != http.StatusOK {
		t.Fatalf("the first two streams: %d, %d", a.StatusCode, b.StatusCode)
	}
	c := openStream(t, s.URL)
	body := make([]byte, 512)
	n, _ := c.Body.Read(body)
	c.Body.Close()
	if c.StatusCode != http.StatusTooManyRequests || c.Header.Get("Retry-After") == "" || !strings.Contains(string(body[:n]), "at most 2 per client") {
		t.Fatalf("a third stream from the same client: %d %q (Retry-After %q), want 429 naming the cap", c.StatusCode, body[:n], c.Header.Get("Retry-After"))
	}
	a.Body.Close()
	// The server notices the closed stream when its request context ends.
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := openStream(t, s.URL)
		d.Body.Close()
		if d.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream never freed its slot: %d", d.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStreamCountTotal(t *testing.T) {
	c := streamCount{per: map[string]int{}}
	if !c.acquire("10.0.0.1", 5, 2) || !c.acquire("10.0.0.2", 5, 2) {
		t.Fatal("two streams under a total of 2 refused")
	}
	if c.acquire("10.0.0.3", 5, 2) {
		t.Fatal("a third stream accepted over the total cap")
	}
	c.release("10.0.0.1")
	if !c.acquire("10.0.0.3", 5, 2) {
		t.Fatal("a released slot was not reusable")
	}
	if len(c.per) != 2 || c.per["10.0.0.1"] != 0 {
		t.Errorf("per-client counts %v: released clients must be forgotten", c.per)
	}
}
