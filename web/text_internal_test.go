package web

import (
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
