package templates_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"contactd/templates"
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
	panel := map[string]string{"en": "My requests", "fr": "Mes demandes"}
	for kind := range templates.TokenKinds {
		for _, lang := range templates.Languages {
			t.Run(kind+"."+lang, func(t *testing.T) {
				d := sample(kind, lang)
				e, err := set.Render(d)
				if err != nil {
					t.Fatal(err)
				}
				for part, body := range map[string]string{"text": e.Text, "html": e.HTML} {
					flat := strings.NewReplacer("\n", " ", "\u00a0", " ").Replace(body)
					for _, want := range []string{code, panel[lang], token} {
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
	for _, kind := range templates.Kinds {
		for _, lang := range templates.Languages {
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

func TestFrenchAsAFrenchReaderExpects(t *testing.T) {
	set := templates.MustEmbedded()
	render := func(kind string) *templates.Email {
		e, err := set.Render(sample(kind, "fr"))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	informed := render("informed")
	for _, want := range []string{"À la demande d'Alice Admin", "mercredi 1er avril 2026 à 09:00 UTC", "ont changé\u00a0:"} {
		if !strings.Contains(informed.Text, want) {
			t.Errorf("informed text lacks %q:\n%s", want, informed.Text)
		}
	}
	if v := render("validation"); !strings.Contains(v.Text, "(nom de domaine)") || !strings.Contains(v.Subject, "example.com\u00a0: votre accord") {
		t.Errorf("validation: service kind or subject spacing:\n%s\n%s", v.Subject, v.Text)
	}
	d := sample("expired", "fr")
	d.Awaited = []templates.Person{{NIC: "bi1-ovh", Name: "Bob Billing"}}
	if e, _ := set.Render(d); !strings.Contains(e.Text, "la réponse de Bob Billing") {
		t.Errorf("no elision before a consonant expected:\n%s", e.Text)
	}
	for _, kind := range templates.Kinds {
		e := render(kind)
		for part, body := range map[string]string{"subject": e.Subject, "text": e.Text, "html": e.HTML} {
			for _, p := range []string{" :", " ?", " !", " ;"} {
				if strings.Contains(body, p) {
					t.Errorf("fr/%s %s has a breaking space before %q", kind, part, p[1:])
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
	cases := map[string][]string{
		"en": {"Example Hosting, contact management", "https://help.example.com/contacts", "Monday 2 March 2026, 10:00 CET"},
		"fr": {"Example Hosting, gestion des contacts", "https://help.example.com/contacts", "lundi 2 mars 2026 à 10:00 CET"},
	}
	for lang, wants := range cases {
		e, err := set.Render(sample("validation", lang))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wants {
			if !strings.Contains(e.Text, want) || !strings.Contains(e.HTML, want) {
				t.Errorf("%s: a part lacks %q:\n%s", lang, want, e.Text)
			}
		}
	}
	plain, _ := templates.MustEmbedded().Render(sample("validation", "en"))
	if strings.Contains(plain.Text, "Example Hosting") || !strings.Contains(plain.Text, "09:00 UTC") {
		t.Errorf("the embedded set changed with WithOptions:\n%s", plain.Text)
	}
}
