package templates_test

import (
	"strings"
	"testing"
	"unicode"

	"contactd/locale"
	"contactd/templates"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
	"github.com/jaytaylor/html2text"
)

// words reduces a body to its words, in order: what a reader reads,
// whatever the layout, wrapping and punctuation.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// The text and the HTML part of every email say the same thing, in every
// language, about one request and about a hand-over: the same words in
// the same order. The HTML part only adds its buttons' labels (the text
// part gives the same link on its own line).
func TestTextAndHTMLSayTheSame(t *testing.T) {
	set := templates.MustEmbedded()
	for _, lang := range workflow.Languages {
		c := locale.For(lang)
		var buttons [][]string
		for _, id := range []string{"email.button_answer", "email.button_report"} {
			buttons = append(buttons, words(c.Must(id)))
		}
		for _, kind := range workflow.EmailKinds {
			for _, d := range []templates.Data{sample(kind, lang), templates.SampleHandover(kind, lang, "https://contacts.example.com")} {
				name := string(lang) + "/" + string(kind)
				if d.Handover != "" {
					name += "/handover"
				}
				e, err := set.Render(d)
				if err != nil {
					t.Fatal(err)
				}
				plain, err := html2text.FromString(e.HTML, html2text.Options{OmitLinks: true})
				if err != nil {
					t.Fatal(err)
				}
				html := words(plain)
				for _, b := range buttons {
					html = without(html, b)
				}
				if diff := cmp.Diff(words(e.Text), html); diff != "" {
					t.Errorf("%s: the parts differ (-text +html):\n%s", name, diff)
				}
			}
		}
	}
}

// without removes the first run of ws from s.
func without(s, ws []string) []string {
	for i := 0; i+len(ws) <= len(s); i++ {
		if cmp.Equal(s[i:i+len(ws)], ws) {
			return append(append([]string{}, s[:i]...), s[i+len(ws):]...)
		}
	}
	return s
}
