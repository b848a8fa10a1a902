package templates_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"contactd/templates"
)

// FuzzOneLine checks that nothing survives OneLine that could start a new
// header or line: no control character, valid UTF-8, at most 200 runes.
func FuzzOneLine(f *testing.F) {
	for _, s := range []string{"Alice Admin", "Eve\r\nBcc: x@example.org", "\u2028OUI", "a\x00b\tc", "\xff\xfe", strings.Repeat("é", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := templates.OneLine(s)
		if strings.ContainsAny(got, "\r\n\t\x00\u2028\u2029\u0085") {
			t.Errorf("OneLine(%q) = %q keeps a line break or control character", s, got)
		}
		if !utf8.ValidString(got) {
			t.Errorf("OneLine(%q) = %q is not valid UTF-8", s, got)
		}
		if n := utf8.RuneCountInString(got); n > 200 {
			t.Errorf("OneLine(%q) has %d runes, want at most 200", s, n)
		}
		if got != strings.TrimSpace(got) {
			t.Errorf("OneLine(%q) = %q has outer spaces", s, got)
		}
	})
}
