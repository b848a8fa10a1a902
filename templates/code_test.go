package templates_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"contactd/locale"
	"contactd/templates"
	"contactd/workflow"
)

func TestGroupCode(t *testing.T) {
	for in, want := range map[string]string{
		token:       "kabc-defg-hijk-lmno-pqrs-tuvw-xyz2-34567",
		"abcdefgh":  "abcd-efgh",
		"abcdefghi": "abcd-efghi",
		"short":     "short",
	} {
		if got := templates.GroupCode(in); got != want {
			t.Errorf("GroupCode(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTokenEmailsShowTheCode checks that every email carrying an
// approver's token shows it as a code to type, says where, and keeps the
// link as the first way.
func TestTokenEmailsShowTheCode(t *testing.T) {
	set := templates.MustEmbedded()
	const codePage = "https://contacts.example.com/v"
	code := templates.GroupCode(token)
	for _, kind := range workflow.EmailKinds {
		if !kind.CarriesToken() {
			continue
		}
		for _, lang := range workflow.Languages {
			t.Run(string(kind)+"."+string(lang), func(t *testing.T) {
				panel := panelTab(t, lang)
				d := sample(kind, lang)
				e, err := set.Render(d)
				if err != nil {
					t.Fatal(err)
				}
				for part, body := range map[string]string{"text": e.Text, "html": e.HTML} {
					flat := strings.NewReplacer("\n", " ", "\u00a0", " ").Replace(body)
					for _, want := range []string{code, panel, token} {
						if !strings.Contains(flat, want) {
							t.Errorf("%s part lacks %q", part, want)
						}
					}
					link, shown := strings.Index(body, d.Link), strings.Index(body, code)
					if link < 0 || shown < 0 || link > shown {
						t.Errorf("%s part: the link (at %d) does not come before the code (at %d)", part, link, shown)
					}
				}
				if !strings.Contains(e.Text, codePage+" ") && !strings.Contains(e.Text, codePage+"\n") {
					t.Errorf("text part does not name the code page %s on its own", codePage)
				}
				if !strings.Contains(e.HTML, `href="`+codePage+`"`) {
					t.Errorf("HTML part does not link to the code page %s", codePage)
				}
				if !strings.Contains(e.Subject, token) || strings.Contains(e.Subject, code) {
					t.Errorf("subject %q must keep the exact token, not the grouped code", e.Subject)
				}
				if !strings.Contains(e.HTML, "<table role=\"presentation\"") {
					t.Errorf("HTML part has no button")
				}
			})
		}
	}
}

func TestTextBodiesWrapAt78ExceptLinks(t *testing.T) {
	set := templates.MustEmbedded()
	long := templates.Person{NIC: "nw1-ovh", Name: "Nora Marguerite Élisabeth de la Tour d'Auvergne-Lauragais"}
	for _, kind := range workflow.EmailKinds {
		for _, lang := range workflow.Languages {
			d := sample(kind, lang)
			d.Recipient, d.Requester = long, long
			e, err := set.Render(d)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(e.Text, "\n") {
				if utf8.RuneCountInString(line) > 78 && strings.Contains(strings.TrimSpace(line), " ") {
					t.Errorf("%s/%s line %d is %d characters: %q", lang, kind, i+1, utf8.RuneCountInString(line), line)
				}
			}
		}
	}
}

// panelTab is the name of the control panel's "My requests" tab as the
// language's emails quote it.
func panelTab(t *testing.T, lang workflow.Language) string {
	t.Helper()
	s, err := locale.For(lang).T("email.code_where", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range [][2]string{{"“", "”"}, {"«\u00a0", "\u00a0»"}, {"„", "“"}, {"„", "”"}, {"«", "»"}, {"‘", "’"}} {
		if _, rest, ok := strings.Cut(s, q[0]); ok {
			if name, _, ok := strings.Cut(rest, q[1]); ok {
				return name
			}
		}
	}
	t.Fatalf("%s: no quoted tab name in %q", lang, s)
	return ""
}

func TestFrenchAsAFrenchReaderExpects(t *testing.T) {
	set := templates.MustEmbedded()
	render := func(d templates.Data) *templates.Email {
		e, err := set.Render(d)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	informed := render(sample(workflow.KindInformed, workflow.French))
	for _, want := range []string{"mercredi 1er avril 2026 à 09:00 UTC", "ont changé\u00a0:"} {
		if !strings.Contains(informed.Text, want) {
			t.Errorf("informed text lacks %q:\n%s", want, informed.Text)
		}
	}
	if v := render(sample(workflow.KindValidation, workflow.French)); !strings.Contains(v.Text, "(nom de domaine)") || !strings.Contains(v.Subject, "example.com\u00a0: votre accord") {
		t.Errorf("validation: service kind or subject spacing:\n%s\n%s", v.Subject, v.Text)
	}
	// No hand-written elision: names that start with a vowel, an h or a y
	// never follow "de" or "d'".
	for _, name := range []string{"Yann Le Goff", "Hélène Roux", "Alice Admin", "Bob Billing"} {
		for _, kind := range workflow.EmailKinds {
			d := sample(kind, workflow.French)
			p := templates.Person{NIC: "yl1-ovh", Name: name}
			d.Requester, d.About, d.Awaited, d.Decliners = p, p, []templates.Person{p}, []templates.Person{p}
			e := render(d)
			for _, bad := range []string{"d'" + name, "d’" + name, "de " + name} {
				if strings.Contains(strings.ReplaceAll(e.Text, "\n", " "), bad) {
					t.Errorf("fr/%s writes %q", kind, bad)
				}
			}
		}
	}
	// A service kind with a space is translated too.
	d := sample(workflow.KindValidation, workflow.French)
	d.ServiceKind = "web hosting"
	if e := render(d); !strings.Contains(e.Text, "(hébergement web)") || strings.Contains(e.Text, "(web hosting)") {
		t.Errorf("the kind web hosting is not translated:\n%s", e.Text)
	}
	// The reason of a failed request is in French.
	if e := render(sample(workflow.KindFailed, workflow.French)); !strings.Contains(strings.ReplaceAll(e.Text, "\n", " "), "bi1-ovh n’est pas à jour de ses paiements") {
		t.Errorf("failed: the reason is not in French:\n%s", e.Text)
	}
	for _, kind := range workflow.EmailKinds {
		for _, d := range []templates.Data{sample(kind, workflow.French), templates.SampleHandover(kind, workflow.French, "https://x.example")} {
			e := render(d)
			for part, body := range map[string]string{"subject": e.Subject, "text": e.Text, "html": e.HTML} {
				for _, p := range []string{" :", " ?", " !", " ;", "« ", " »"} {
					if strings.Contains(body, p) {
						t.Errorf("fr/%s %s has a breaking space at %q", kind, part, p)
					}
				}
			}
		}
	}
}

func TestBrandingAndTimeZone(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skipf("no time zone database: %v", err)
	}
	set := templates.MustEmbedded().WithOptions(templates.Options{
		Brand: "Example Hosting", SupportURL: "https://help.example.com/contacts", Location: paris})
	cases := map[workflow.Language][]string{
		workflow.English:    {"Example Hosting, contact management", "https://help.example.com/contacts", "Monday 2 March 2026 at 10:00 CET"},
		workflow.French:     {"Example Hosting, gestion des contacts", "https://help.example.com/contacts", "lundi 2 mars 2026 à 10:00 CET"},
		workflow.German:     {"Montag, 2. März 2026 um 10:00 CET"},
		workflow.Spanish:    {"lunes, 2 de marzo de 2026, a las 10:00 CET"},
		workflow.Italian:    {"lunedì 2 marzo 2026 alle 10:00 CET"},
		workflow.Dutch:      {"maandag 2 maart 2026 om 10:00 CET"},
		workflow.Polish:     {"2 marca 2026 (poniedziałek), godz. 10:00 CET"},
		workflow.Portuguese: {"segunda-feira, 2 de março de 2026, às 10:00 CET"},
	}
	for lang, wants := range cases {
		e, err := set.Render(sample(workflow.KindValidation, lang))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wants {
			if !strings.Contains(e.Text, want) || !strings.Contains(e.HTML, want) {
				t.Errorf("%s: a part lacks %q:\n%s", lang, want, e.Text)
			}
		}
	}
	plain, _ := templates.MustEmbedded().Render(sample(workflow.KindValidation, workflow.English))
	if strings.Contains(plain.Text, "Example Hosting") || !strings.Contains(plain.Text, "09:00 UTC") {
		t.Errorf("the embedded set changed with WithOptions:\n%s", plain.Text)
	}
}

// Each email that asks for an answer tells its reader the first accept
// and decline words of their language (SPEC section 4's table), and that
// ACCEPT and DECLINE work whatever the language, in both parts.
func TestEmailsNameTheirReplyWords(t *testing.T) {
	set := templates.MustEmbedded()
	for _, lang := range workflow.Languages {
		c := locale.For(lang)
		for _, kind := range []workflow.Kind{workflow.KindValidation, workflow.KindReminder, workflow.KindResend, workflow.KindNotUnderstood} {
			for _, d := range []templates.Data{sample(kind, lang), templates.SampleHandover(kind, lang, "https://x.example")} {
				e, err := set.Render(d)
				if err != nil {
					t.Fatal(err)
				}
				for part, body := range map[string]string{"text": e.Text, "html": e.HTML} {
					for _, w := range []string{c.AcceptWord(), c.DeclineWord(), "ACCEPT", "DECLINE"} {
						if !strings.Contains(body, w) {
							t.Errorf("%s/%s %s part does not name the reply word %s", lang, kind, part, w)
						}
					}
				}
			}
		}
	}
}
