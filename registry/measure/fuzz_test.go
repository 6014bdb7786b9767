package measure

import (
	"strings"
	"testing"
)

// FuzzDecodeReport: any body is refused with an error or stored; nothing panics, and what is
// stored is valid and printable.
func FuzzDecodeReport(f *testing.F) {
	f.Add(`{"measurements":[{"address":"10.0.0.1","port":20880,"result":"answered","services":["a\u001bb"]}]}`)
	f.Add(`{"vantage":"a","measuredAt":"2026-12-05T17:00:00Z","measurements":[]}`)
	f.Add(`{"measurements":[{"address":"::ffff:1.2.3.4","port":1,"result":"timeout","ms":1e308,"detail":"\xff"}]}`)
	f.Add(`{"measurements":null}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		s := NewStore(Options{MaxEntries: 1000})
		_, at, ms, err := DecodeReport(strings.NewReader(body))
		if err != nil {
			return
		}
		if err := s.Put("fuzz", at, ms); err != nil {
			return
		}
		for _, e := range s.Entries("") {
			if !e.Result.Valid() || e.Port < 1 || e.Port > 65535 {
				t.Fatalf("stored an invalid measurement %+v", e)
			}
			for _, x := range append([]string{e.Detail, e.Protocol}, e.Services...) {
				if text(x, 1<<20) != x {
					t.Fatalf("stored text %q is not printable", x)
				}
			}
		}
		_ = s.Compare(nil)
	})
}
