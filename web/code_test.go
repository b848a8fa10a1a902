package web_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"contactd/internal/redistest"
	"contactd/web"
	"contactd/workflow"
)

func TestCodePage(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tok := e.token(r.ID, "nw1-ovh")

	t.Run("in the browser's language", func(t *testing.T) {
		for lang, want := range map[string][]string{
			"fr-FR,fr;q=0.9": {`<html lang="fr">`, "Code de validation", ">Continuer<"},
			"en-GB":          {`<html lang="en">`, "Validation code", ">Continue<"},
			"":               {`<html lang="en">`, "Validation code"},
		} {
			w := e.do("GET", "/v", "", "Accept-Language", lang)
			if w.Code != 200 {
				t.Fatalf("GET /v (%s) = %d", lang, w.Code)
			}
			checkPageHeaders(t, w)
			contains(t, w.Body.String(), append(want, `<form method="get" action="/v"`, `name="code"`)...)
			lacks(t, w.Body.String(), "example.com", "ad1-ovh", "<script")
		}
	})

	t.Run("a typed code leads to its page", func(t *testing.T) {
		typed := strings.ReplaceAll(grouped(tok), "-", " ")
		for _, in := range []string{typed, grouped(tok), tok, "  " + strings.ToUpper(tok) + " "} {
			w := e.do("GET", "/v?code="+queryEscape(in), "")
			if w.Code != 303 || w.Header().Get("Location") != "/v/"+tok {
				t.Errorf("GET /v?code=%q = %d Location %q, want 303 to /v/%s", in, w.Code, w.Header().Get("Location"), tok)
			}
		}
		if got := e.get(r.ID).Approvals["nw1-ovh"].Status; got != "pending" {
			t.Errorf("following a code changed the approval to %s", got)
		}
	})

	t.Run("a wrong code reveals nothing", func(t *testing.T) {
		for _, in := range []string{"hello", tok[:20], tok + "a", "../../api/v1/requests"} {
			w := e.do("GET", "/v?code="+queryEscape(in), "", "Accept-Language", "fr")
			if w.Code != 400 {
				t.Errorf("GET /v?code=%q = %d, want 400", in, w.Code)
			}
			contains(t, w.Body.String(), "Ce code n’est pas valide", `name="code"`)
			lacks(t, w.Body.String(), "example.com", "Alice", in)
		}
		w := e.do("GET", "/v?code=", "")
		if w.Code != 400 || !strings.Contains(w.Body.String(), "Please type the validation code") {
			t.Errorf("empty code = %d:\n%s", w.Code, pageText(w.Body.String()))
		}
		// A well-formed code that is no one's leads to the same page as a
		// dead link.
		unknown := "k" + strings.Repeat("q", workflow.TokenLen-1)
		w = e.do("GET", "/v?code="+unknown, "")
		if w.Code != 303 {
			t.Fatalf("GET /v?code=unknown = %d, want 303", w.Code)
		}
		w = e.do("GET", w.Header().Get("Location"), "")
		if w.Code != 404 || !strings.Contains(w.Body.String(), "This link or code is not valid") || !strings.Contains(w.Body.String(), `<a href="/v" id="code-page">`) {
			t.Errorf("unknown code's page = %d, want 404 leading back to /v:\n%s", w.Code, pageText(w.Body.String()))
		}
	})

	if w := e.do("POST", "/v", "code="+tok, "Content-Type", "application/x-www-form-urlencoded"); w.Code != 405 {
		t.Errorf("POST /v = %d, want 405", w.Code)
	}
}

// queryEscape writes s for a query string.
func queryEscape(s string) string { return url.QueryEscape(s) }

func TestDeclineAsksForConfirmation(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	w := e.do("GET", "/v/"+e.token(r.ID, "ad1-ovh"), "")
	body := w.Body.String()
	// The only button that posts decision=decline is inside the
	// confirmation, which opens with the Decline summary.
	details := regexp.MustCompile(`(?s)<details class="confirm">.*?</details>`).FindString(body)
	if details == "" {
		t.Fatalf("no confirmation block:\n%s", pageText(body))
	}
	contains(t, details, `<summary id="decline"`, ">Decline<", "Do you want to decline it?",
		`name="decision" value="decline" id="decline-confirm"`, ">Yes, decline<")
	if n := strings.Count(body, `value="decline"`); n != 1 {
		t.Errorf("%d buttons post decline, want only the confirmation's", n)
	}
}

func TestPagesShowBrandingAndLocalTime(t *testing.T) {
	e := newEnv(t, redistest.Mini(t), func(p *web.Params) {
		p.Config.Branding.Name = "Example Hosting"
		p.Config.Branding.SupportURL = "https://help.example.com/contacts"
		p.Config.Workflow.Timezone = "Europe/Paris"
	})
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	w := e.do("GET", "/v/"+e.token(r.ID, "nw1-ovh"), "")
	contains(t, w.Body.String(), `<header class="brand" id="brand">Example Hosting</header>`,
		`href="https://help.example.com/contacts"`, "16 mars 2026 à 10:00 CET", "Acceptez-vous ce changement\u00a0?")
	lacks(t, w.Body.String(), " ?", " :")
	w = e.do("GET", "/v", "", "Accept-Language", "en")
	contains(t, w.Body.String(), "Example Hosting", "Help, and to check this page is genuine:")
}
