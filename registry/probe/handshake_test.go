package probe_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dubboreach/dubboreach/registry/probe"
)

func TestHeartbeatRequestBytes(t *testing.T) {
	got := hex.EncodeToString(probe.HeartbeatRequest(0x0102030405060708))
	if want := "dabbe200" + "0102030405060708" + "00000001" + "4e"; got != want {
		t.Fatalf("heartbeat request %s, want %s", got, want)
	}
}

func TestReadHeartbeatResponse(t *testing.T) {
	const id = 7
	ok := realDubboHeartbeatAnswer(be64(id))
	// A provider's own heartbeat request (flag e2) that happens to arrive first.
	theirs := probe.HeartbeatRequest(99)
	fastjson2 := append([]byte{}, ok...)
	fastjson2[2] = 0x20 | 23 // Dubbo 3.2+ answers in the channel's serialization
	bad := append([]byte{}, ok...)
	bad[3] = 90 // SERVER_ERROR
	huge := probe.HeartbeatRequest(99)
	huge[12], huge[13] = 0x7f, 0xff
	for _, c := range []struct {
		name string
		in   []byte
		want string // "" for success
	}{
		{"real provider's answer", ok, ""},
		{"after the provider's own heartbeat", append(append([]byte{}, theirs...), ok...), ""},
		{"other serialization", fastjson2, ""},
		{"error status", bad, "status 90"},
		{"not dubbo", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), "not a Dubbo frame"},
		{"short", ok[:10], "unexpected EOF"},
		{"wrong id only", realDubboHeartbeatAnswer(be64(8)), "EOF"},
		{"huge other frame", huge, "within 65536 bytes"},
		{"many other frames", bytes.Repeat(theirs, 5), "within 4 Dubbo frames"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := probe.ReadHeartbeatResponse(bytes.NewReader(c.in), id)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestParseH2Settings(t *testing.T) {
	for _, c := range []struct {
		in []byte
		ok bool
	}{
		{[]byte{0, 0, 18, 4, 0, 0, 0, 0, 0}, true},
		{[]byte{0, 0, 0, 4, 1, 0, 0, 0, 0}, false}, // an ACK is not the server's preface
		{[]byte{0, 0, 7, 4, 0, 0, 0, 0, 0}, false}, // not a multiple of 6
		{[]byte{0, 0, 6, 4, 0, 0, 0, 0, 1}, false}, // not stream 0
		{[]byte{0, 0, 8, 7, 0, 0, 0, 0, 0}, false}, // GOAWAY
		{[]byte("HTTP/1.1 "), false},
	} {
		if _, err := probe.ParseH2Settings(c.in); (err == nil) != c.ok {
			t.Errorf("% x: err %v, want ok=%v", c.in, err, c.ok)
		}
	}
	if want := "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"; string(probe.H2Preface()) != want {
		t.Errorf("preface %q", probe.H2Preface())
	}
}

// FuzzReadHeartbeatResponse: any byte stream ends in an answer or an error, never a panic, a
// loop or a read beyond the bounds.
func FuzzReadHeartbeatResponse(f *testing.F) {
	f.Add(realDubboHeartbeatAnswer(be64(1)), uint64(1))
	f.Add(append(probe.HeartbeatRequest(5), realDubboHeartbeatAnswer(be64(1))...), uint64(1))
	f.Add([]byte{0xda, 0xbb, 0x22, 0x14}, uint64(0))
	f.Add([]byte("PRI * HTTP/2.0"), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, id uint64) {
		r := &countingReader{r: bytes.NewReader(data)}
		h, err := probe.ReadHeartbeatResponse(r, id)
		if err == nil && (h.ID != id || h.Request() || h.Status != 20) {
			t.Fatalf("accepted %+v for id %d", h, id)
		}
		if r.n > 4*16+64<<10+16 {
			t.Fatalf("read %d bytes", r.n)
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

func FuzzParseH2Settings(f *testing.F) {
	f.Add([]byte{0, 0, 18, 4, 0, 0, 0, 0, 0})
	f.Add([]byte("HTTP/1.1 400"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := probe.ParseH2Settings(data)
		if err == nil && (n%6 != 0 || n > 16384 || data[3] != 4) {
			t.Fatalf("accepted % x", data)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
