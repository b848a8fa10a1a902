package web

import (
	"html/template"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"contactd/workflow"
)

func TestUnbroken(t *testing.T) {
	for _, c := range []struct {
		in   string
		nics []string
		want string
	}{
		{"Alice (ad1-ovh) and Bob (ad1-ovh2)", []string{"ad1-ovh"}, `Alice (<span class="nic">ad1-ovh</span>) and Bob (ad1-ovh2)`},
		{"ad1-ovh, nw1-ovh", []string{"nw1-ovh", "ad1-ovh"}, `<span class="nic">ad1-ovh</span>, <span class="nic">nw1-ovh</span>`},
		{"Eve <b>ad1-ovh</b> & co", []string{"ad1-ovh"}, `Eve &lt;b&gt;<span class="nic">ad1-ovh</span>&lt;/b&gt; &amp; co`},
		{"a code (abcd-efgh-ijkl-…) here", nil, `a code (<span class="nic">abcd-efgh-ijkl-…</span>) here`},
		{"no handle", []string{""}, "no handle"},
		{"ad1-ovh2 and ad1-ovh", []string{"ad1-ovh", "ad1-ovh2"}, `<span class="nic">ad1-ovh2</span> and <span class="nic">ad1-ovh</span>`},
		{"xad1-ovh, ad1-ovh-x, ad1-ovh.", []string{"ad1-ovh"}, `xad1-ovh, ad1-ovh-x, <span class="nic">ad1-ovh</span>.`},
	} {
		if got := string(unbroken(c.in, c.nics)); got != c.want {
			t.Errorf("unbroken(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// The outcome page of a failed request gives its reason in the reader's
// language, from the reason's code.
func TestFailedOutcomeInTheReadersLanguage(t *testing.T) {
	req := &workflow.Request{Service: "example.com", Status: workflow.Failed,
		Why: workflow.Reason{Code: workflow.ReasonPaymentOverdue, Arg: "gh3456-ovh"}}
	req.Reason = req.Why.English(req.Service)
	out := &workflow.Outcome{Request: req, Decision: workflow.Accept}
	for lang, want := range map[workflow.Language]string{
		workflow.English: "billing contact gh3456-ovh is not up to date with payments",
		workflow.French:  "le contact de facturation gh3456-ovh n’est pas à jour de ses paiements",
		workflow.German:  "Der Rechnungskontakt gh3456-ovh ist mit seinen Zahlungen im Rückstand",
		workflow.Polish:  "kontakt rozliczeniowy gh3456-ovh zalega z płatnościami",
	} {
		if got := outcomeText(lang, out, parties{}); !strings.Contains(got, want) {
			t.Errorf("%s: %q lacks %q", lang, got, want)
		}
	}
	req.Why = workflow.Reason{Code: workflow.ReasonRoleChanged, Arg: "tech"}
	if got := outcomeText(workflow.Italian, out, parties{}); !strings.Contains(got, "il contatto tecnico di example.com è cambiato") {
		t.Errorf("it: %q", got)
	}
}

// unbroken finds what one alternation of the words (longest first) and
// the code's shape would: compared on made-up texts with that regexp.
func TestUnbrokenAsTheRegexp(t *testing.T) {
	pieces := []string{"ab1-ovh", "ab1-ovh2", "cd22-ovh", "abcd-efgh-ijkl", "abcd-efgh-ijkl-…", "-", " ", "x", "<", "&", "é", "(", ")"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		words := []string{"ab1-ovh", "cd22-ovh", "ab1-ovh2"}[:rng.IntN(4)]
		if got, want := string(unbroken(b.String(), words)), string(unbrokenRegexp(b.String(), words)); got != want {
			t.Fatalf("unbroken(%q, %q) = %q, the regexp gives %q", b.String(), words, got, want)
		}
	}
}

func unbrokenRegexp(s string, words []string) string {
	esc := template.HTMLEscapeString(s)
	ws := slices.Clone(words)
	sort.SliceStable(ws, func(i, j int) bool { return len(ws[i]) > len(ws[j]) })
	var parts []string
	for _, w := range ws {
		if w != "" {
			parts = append(parts, regexp.QuoteMeta(template.HTMLEscapeString(w)))
		}
	}
	re := regexp.MustCompile(strings.Join(append(parts, codeShape), "|"))
	var b strings.Builder
	last := 0
	for _, m := range re.FindAllStringIndex(esc, -1) {
		if wordByte(esc, m[0]-1) || wordByte(esc, m[1]) {
			continue
		}
		b.WriteString(esc[last:m[0]] + `<span class="nic">` + esc[m[0]:m[1]] + `</span>`)
		last = m[1]
	}
	return b.String() + esc[last:]
}
