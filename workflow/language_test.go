package workflow_test

import (
	"testing"

	"contactd/workflow"
)

func TestParseLanguage(t *testing.T) {
	for in, want := range map[string]workflow.Language{"en": workflow.English, "FR": workflow.French, " de ": workflow.German,
		"pt-BR": workflow.Portuguese, "pl_PL": workflow.Polish, "nl": workflow.Dutch, "it": workflow.Italian, "es-419": workflow.Spanish} {
		if got, ok := workflow.ParseLanguage(in); !ok || got != want {
			t.Errorf("ParseLanguage(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "xx", "english", "e", "-fr", "sv"} {
		if got, ok := workflow.ParseLanguage(in); ok {
			t.Errorf("ParseLanguage(%q) = %q, want refused", in, got)
		}
	}
	if got := workflow.Language("zz").Or(workflow.German); got != workflow.German {
		t.Errorf("Or fell back to %q", got)
	}
}

// The browser's preferences pick among the eight languages, quality
// values and regions included; a header naming none of them picks none.
func TestMatchAcceptLanguage(t *testing.T) {
	for header, want := range map[string]workflow.Language{
		"de-DE,de;q=0.9,en;q=0.5":       workflow.German,
		"fr-CA,fr;q=0.9,en;q=0.8":       workflow.French,
		"da,en-GB;q=0.8":                workflow.English,
		"pt-BR":                         workflow.Portuguese,
		"es-419,es;q=0.9":               workflow.Spanish,
		"en;q=0.1,pl;q=0.9":             workflow.Polish,
		"nl-BE":                         workflow.Dutch,
		"it-CH, *;q=0.1":                workflow.Italian,
		"sv-SE,fi;q=0.5":                "",
		"":                              "",
		"ja, zh;q=0.8, x-klingon;q=0.5": "",
	} {
		got, ok := workflow.MatchAcceptLanguage(header)
		if got != want || ok != (want != "") {
			t.Errorf("MatchAcceptLanguage(%q) = %q, %v; want %q", header, got, ok, want)
		}
	}
}

func TestEmailKinds(t *testing.T) {
	for _, k := range workflow.EmailKinds {
		if got, ok := workflow.ParseEmailKind(string(k)); !ok || got != k {
			t.Errorf("ParseEmailKind(%q) = %q, %v", k, got, ok)
		}
	}
	if _, ok := workflow.ParseEmailKind(string(workflow.KindEvent)); ok {
		t.Errorf("event is not an email kind")
	}
	for _, p := range workflow.ReplyProblems {
		if got, ok := workflow.ParseReplyProblem(string(p)); !ok || got != p {
			t.Errorf("ParseReplyProblem(%q) = %q, %v", p, got, ok)
		}
		found := false
		for _, m := range workflow.MailedProblems {
			found = found || m == p.Mailed()
		}
		if !found {
			t.Errorf("%s is mailed as %s, which no email explains", p, p.Mailed())
		}
	}
}
