package dubbo

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDisplay bounds a string shown to people (tables, JSON, Events, logs).
const MaxDisplay = 512

// Display escapes s for display (control characters, invalid UTF-8, quotes and backslashes as
// Go escapes) and truncates it to about MaxDisplay bytes, marking the cut with "...(N bytes)".
// Registry content is written by anyone who can reach ZooKeeper; a znode name must not be able
// to forge table rows, terminal escapes or log lines.
func Display(s string) string {
	if len(s) <= MaxDisplay && plain(s) {
		return s // the common case, without an allocation
	}
	q := strconv.QuoteToGraphic(s)
	// Quotes need no escape for display (JSON escapes them again); backslashes and the rest do.
	q = strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
	if len(q) <= MaxDisplay {
		return q
	}
	cut := MaxDisplay
	// Do not cut an escape sequence or a rune in half.
	if i := strings.LastIndexByte(q[:cut], '\\'); i >= 0 && i > cut-12 {
		cut = i
	}
	for cut > 0 && !utf8.RuneStart(q[cut]) {
		cut--
	}
	return q[:cut] + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// plain is true for printable ASCII without backslashes: shown as it is.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
