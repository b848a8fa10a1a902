package web

import (
	"html/template"
	"regexp"
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
	// Longest first, so a NIC that contains another is wrapped whole.
	sort.Slice(words, func(i, j int) bool { return len(words[i]) > len(words[j]) })
	var parts []string
	for _, w := range words {
		if w != "" {
			parts = append(parts, regexp.QuoteMeta(template.HTMLEscapeString(w)))
		}
	}
	parts = append(parts, codeShape)
	re := regexp.MustCompile(strings.Join(parts, "|"))
	var b strings.Builder
	last := 0
	for _, m := range re.FindAllStringIndex(esc, -1) {
		if wordByte(esc, m[0]-1) || wordByte(esc, m[1]) {
			continue // part of a longer word
		}
		b.WriteString(esc[last:m[0]])
		b.WriteString(`<span class="nic">` + esc[m[0]:m[1]] + `</span>`)
		last = m[1]
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
