package templates

import "testing"

func TestOneLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Alice\r\nBcc: x@example.org", "Alice Bcc: x@example.org"},
		{"  a \t\v b\u2028c\u200bd ", "a b c d"},
		{"pour example.com\u00a0: votre accord", "pour example.com\u00a0: votre accord"},
		{"prix\u202f?", "prix\u202f?"},
	} {
		if got := OneLine(c.in); got != c.want {
			t.Errorf("OneLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
