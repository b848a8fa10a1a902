package web

import (
	"html/template"
	"regexp"
	"slices"
	"sort"
	"strings"

	"contactd/locale"
	"contactd/workflow"
)

// The words of the pages are the page.* messages of each language's
// catalogue (package locale).

// pageTexts holds, by language, the page messages that take no data, by
// their key without the "page." prefix: the page templates' .T. The
// example of a code some of them show is kept on one line.
var pageTexts = func() map[workflow.Language]map[string]template.HTML {
	out := map[workflow.Language]map[string]template.HTML{}
	for _, l := range workflow.Languages {
		c := locale.For(l)
		m := map[string]template.HTML{}
		for _, id := range locale.Keys(l) {
			if key, ok := strings.CutPrefix(id, "page."); ok {
				if s, err := c.T(id, nil); err == nil && !strings.Contains(s, "<no value>") {
					m[key] = unbroken(s, nil)
				}
			}
		}
		out[l] = m
	}
	return out
}()

// tr writes the page message key in lang with data (nil for none).
func tr(lang workflow.Language, key string, data map[string]any) string {
	s, err := locale.For(lang).T("page."+key, data)
	if s == "" && err != nil {
		return key
	}
	return s
}

// roleName names a role in lang.
func roleName(lang workflow.Language, r workflow.Role) string {
	return locale.For(lang).Role(string(r))
}

// unbroken wraps, in text already escaped for HTML, each of words (NIC
// handles) and each validation code in a span that CSS keeps on one line:
// "ab1234-ovh" must never break at its dash.
func unbroken(s string, words []string) template.HTML {
	esc := template.HTMLEscapeString(s)
	// Where each word and each code occurs; at one place the longest word
	// is taken, and a word before a code (as an alternation tried in
	// that order would).
	type match struct{ at, end, rank int }
	var ms []match
	ws := slices.Clone(words)
	sort.SliceStable(ws, func(i, j int) bool { return len(ws[i]) > len(ws[j]) })
	for rank, w := range ws {
		if w = template.HTMLEscapeString(w); w == "" {
			continue
		}
		for from := 0; ; {
			k := strings.Index(esc[from:], w)
			if k < 0 {
				break
			}
			ms = append(ms, match{from + k, from + k + len(w), rank})
			from += k + 1
		}
	}
	for _, m := range codeRe.FindAllStringIndex(esc, -1) {
		ms = append(ms, match{m[0], m[1], len(ws)})
	}
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].at != ms[j].at {
			return ms[i].at < ms[j].at
		}
		return ms[i].rank < ms[j].rank
	})
	var b strings.Builder
	last, pos := 0, 0
	for _, m := range ms {
		if m.at < pos {
			continue // inside what was taken
		}
		pos = m.end
		if wordByte(esc, m.at-1) || wordByte(esc, m.end) {
			continue // part of a longer word
		}
		b.WriteString(esc[last:m.at])
		b.WriteString(`<span class="nic">` + esc[m.at:m.end] + `</span>`)
		last = m.end
	}
	b.WriteString(esc[last:])
	return template.HTML(b.String())
}

// wordByte reports whether s[i] is a letter, digit, underscore or dash.
func wordByte(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	c := s[i]
	return c == '-' || c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// codeShape is a validation code as pages show or quote it
// ("abcd-efgh-ijkl-…").
const codeShape = `[a-z0-9]{4}(?:-[a-z0-9]{4,5})+(?:-…)?`

var codeRe = regexp.MustCompile(codeShape)
