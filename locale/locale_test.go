package locale_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"contactd/locale"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
)

// Every language's file has exactly the keys of the English one: a key
// missing would fall back to English, an extra one is a typo.
func TestEveryKeyInEveryLanguage(t *testing.T) {
	want := locale.Keys(workflow.English)
	if len(want) < 100 {
		t.Fatalf("the English catalogue has only %d keys", len(want))
	}
	for _, l := range workflow.Languages {
		if diff := cmp.Diff(want, locale.Keys(l)); diff != "" {
			t.Errorf("%s.yaml keys differ from en.yaml (-en +%s):\n%s", l, l, diff)
		}
	}
}

// Every message renders in every language, with every plural form the
// language needs.
func TestEveryMessageRenders(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	person := map[string]string{"Greeting": "Alice"}
	data := map[string]any{"Service": "example.com", "ServiceKind": "web hosting", "Arg": "tech", "Date": "x",
		"Roles": "x", "Waiting": "x", "Reason": "role_changed:tech", "Status": "expired", "CreatedAt": at,
		"ExpiresAt": at, "LinkUntil": at, "Role": "tech", "From": "a", "To": "b", "Requester": "r",
		"Recipient": person, "About": person, "Awaited": []string{"a", "b"}, "Decliners": []string{"c"},
		"Token": "tok", "RequestID": "id", "Handover": "h", "Brand": "", "Count": 2}
	data["Data"] = data
	for _, l := range workflow.Languages {
		c := locale.For(l)
		for _, id := range locale.Keys(l) {
			if s, err := c.T(id, data); err != nil || s == "" {
				t.Errorf("%s %s: %q, %v", l, id, s, err)
			}
		}
		for _, n := range []int{1, 2, 3, 5, 8, 12, 21, 22, 25, 101, 10000} {
			s, err := c.N("email.more", n, nil)
			if err != nil || !strings.Contains(s, strconv.Itoa(n)) {
				t.Errorf("%s: more(%d) = %q, %v", l, n, s, err)
			}
		}
	}
}

// Polish counts with three forms: 1 usługa, 2-4 usługi, 5-21 usług, 22
// usługi again.
func TestPolishPlurals(t *testing.T) {
	c := locale.For(workflow.Polish)
	for n, want := range map[int]string{1: "1 usługa", 2: "2 usługi", 4: "4 usługi", 5: "5 usług", 12: "12 usług", 22: "22 usługi", 25: "25 usług"} {
		if got, err := c.N("email.more", n, nil); err != nil || !strings.HasSuffix(got, want) {
			t.Errorf("more(%d) = %q (%v), want … %q", n, got, err, want)
		}
	}
}

func TestDates(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).In(paris)
	for l, want := range map[workflow.Language]string{
		workflow.English:    "Sunday 1 March 2026 at 10:00 CET",
		workflow.French:     "dimanche 1er mars 2026 à 10:00 CET",
		workflow.German:     "Sonntag, 1. März 2026 um 10:00 CET",
		workflow.Spanish:    "domingo, 1 de marzo de 2026, a las 10:00 CET",
		workflow.Italian:    "domenica 1 marzo 2026 alle 10:00 CET",
		workflow.Dutch:      "zondag 1 maart 2026 om 10:00 CET",
		workflow.Polish:     "1 marca 2026 (niedziela), godz. 10:00 CET",
		workflow.Portuguese: "domingo, 1 de março de 2026, às 10:00 CET",
	} {
		if got := locale.For(l).Date(at); got != want {
			t.Errorf("%s: %q, want %q", l, got, want)
		}
	}
}

func TestKindsRolesAndTypography(t *testing.T) {
	fr := locale.For(workflow.French)
	for in, want := range map[string]string{"web hosting": "hébergement web", "Web  Hosting": "hébergement web",
		"domain": "nom de domaine", "SSL certificate": "certificat SSL", "dedicated server": "serveur dédié",
		"storage box": "storage box"} {
		if got := fr.Kind(in); got != want {
			t.Errorf("fr kind %q = %q, want %q", in, got, want)
		}
	}
	if got := fr.Typography("Rappel : « oui » ? 09:00 https://x.example/a:b"); got != "Rappel\u00a0: «\u00a0oui\u00a0»\u00a0? 09:00 https://x.example/a:b" {
		t.Errorf("French typography: %q", got)
	}
	if got := locale.Fold("AKCEPTUJĘ Sì NÃO"); got != "akceptuje si nao" {
		t.Errorf("Fold = %q", got)
	}
}

// Each language's emails suggest the first words of SPEC section 4's
// table.
func TestFirstReplyWords(t *testing.T) {
	for l, want := range map[workflow.Language][2]string{
		workflow.English: {"ACCEPT", "DECLINE"}, workflow.French: {"ACCEPTER", "REFUSER"},
		workflow.German: {"AKZEPTIEREN", "ABLEHNEN"}, workflow.Spanish: {"ACEPTAR", "RECHAZAR"},
		workflow.Italian: {"ACCETTARE", "RIFIUTARE"}, workflow.Dutch: {"ACCEPTEREN", "WEIGEREN"},
		workflow.Polish: {"AKCEPTUJĘ", "ODRZUCAM"}, workflow.Portuguese: {"ACEITAR", "RECUSAR"},
	} {
		c := locale.For(l)
		if got := [2]string{c.AcceptWord(), c.DeclineWord()}; got != want {
			t.Errorf("%s: %v, want %v", l, got, want)
		}
	}
}

// Every refusal of SPEC section 2 has words in every language, not the
// English ones.
func TestRefusals(t *testing.T) {
	for _, code := range []string{workflow.EInvalidRequest, workflow.EInvalidNIC, workflow.EUnknownService, workflow.EUnknownContact,
		workflow.ENotAContact, workflow.ERoleNotAllowed, workflow.ENoChange, workflow.EPaymentOverdue, workflow.EConflict} {
		en := locale.For(workflow.English).Refusal(code)
		for _, l := range workflow.Languages {
			got := locale.For(l).Refusal(code)
			if got == code || (l != workflow.English && got == en) {
				t.Errorf("%s: refusal %s = %q", l, code, got)
			}
		}
	}
}

func TestMissingMessage(t *testing.T) {
	if s, err := locale.For(workflow.German).T("no.such.message", nil); err == nil || s != "" {
		t.Errorf("unknown message: %q, %v", s, err)
	}
	if got := locale.For(workflow.Language("xx")).Must("page.accept"); got != "Accept" {
		t.Errorf("an unknown language is not English: %q", got)
	}
}
