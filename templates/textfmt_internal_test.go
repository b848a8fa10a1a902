package templates

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWrap(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"short lines stay", "one two\nthree", []string{"one two", "three"}},
		{"greedy at spaces", "aaa bbb ccc ddd eee", []string{"aaa bbb", "ccc ddd", "eee"}},
		{"a link is never cut", "see https://example.com/v/kabcdefghijk now", []string{"see", "https://example.com/v/kabcdefghijk", "now"}},
		{"indentation kept", "  - aaa bbb ccc ddd", []string{"  - aaa", "    bbb", "    ccc", "    ddd"}},
		{"no line starts with a reply word", "asked by Yes Oui Man", []string{"asked", "by Yes Oui", "Man"}},
		{"a reply word is carried down with the word before", "aaaaaa bb ACCEPT, cc", []string{"aaaaaa", "bb ACCEPT,", "cc"}},
		{"the signature delimiter keeps its space", "-- ", []string{"-- "}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Split(wrap(c.in, 10), "\n")
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("wrap(%q, 10) (-want +got):\n%s", c.in, diff)
			}
		})
	}
}

func TestReplyWordsOfEveryLanguage(t *testing.T) {
	for _, w := range []string{"ACCEPT", "oui,", "Ja", "sí", "SI", "Sì.", "TAK", "nie", "NÃO", "nao", "akceptuję", "AKCEPTUJE", "Nee", "¡Sí!"} {
		if !replyWord(w) {
			t.Errorf("replyWord(%q) = false, want true", w)
		}
	}
	for _, w := range []string{"Alice", "accepted", "nobody", "Takeover", ""} {
		if replyWord(w) {
			t.Errorf("replyWord(%q) = true, want false", w)
		}
	}
}
