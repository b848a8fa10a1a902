package web_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"contactd/internal/redistest"
	"contactd/locale"
	"contactd/workflow"
)

// polyglots adds one contact per language, and one service each, so a
// validation page can be opened in every language.
func polyglots(t *testing.T, e *env) {
	t.Helper()
	var b strings.Builder
	b.WriteString("contacts:\n")
	for i, l := range workflow.Languages {
		fmt.Fprintf(&b, "  - {nic: pg%d-ovh, email: pg%d@example.net, name: Poly %s, language: %s}\n", i+1, i+1, l, l)
	}
	b.WriteString("services:\n")
	for i := range workflow.Languages {
		fmt.Fprintf(&b, "  - {id: poly-%d.example, kind: web hosting, admin: ad1-ovh, tech: te1-ovh, billing: bi1-ovh}\n", i+1)
	}
	if _, err := e.store.Import(context.Background(), []byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

// Each contact's validation page is in the contact's language, whatever
// the browser prefers: its lang attribute, its title, its buttons, the
// role names, the service kind (web hosting, with its space) and the date
// as the language writes it.
func TestValidationPageInEveryLanguage(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	polyglots(t, e)
	for i, l := range workflow.Languages {
		t.Run(string(l), func(t *testing.T) {
			nic := fmt.Sprintf("pg%d-ovh", i+1)
			r := e.create(fmt.Sprintf("poly-%d.example", i+1), "ad1-ovh", map[string]string{"tech": nic})
			w := e.do("GET", "/v/"+e.token(r.ID, nic), "", "Accept-Language", "sv-SE")
			if w.Code != 200 {
				t.Fatalf("GET = %d", w.Code)
			}
			c := locale.For(l)
			body := w.Body.String()
			contains(t, body, `<html lang="`+string(l)+`">`, esc(c.Must("page.validate_title")), ">"+esc(c.Must("page.accept"))+"<",
				esc(c.Must("page.decline"))+"<", esc(c.Role("tech")), "("+esc(c.Kind("web hosting"))+")",
				esc(c.Date(r.ExpiresAt)), "Poly "+string(l)+" ("+nic+")")
			if l != workflow.English {
				lacks(t, body, ">Accept<", "technical contact", "(web hosting)")
			}
			// The NIC handles are kept on one line.
			if !strings.Contains(body, `<span class="nic">`+nic+`</span>`) || !strings.Contains(body, ".nic{white-space:nowrap}") {
				t.Errorf("the NIC %s is not kept on one line", nic)
			}
		})
	}
}

// esc writes s as html/template does in a text node.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// Every NIC handle a page names sits in a span that does not break, in
// the table, the requester, the approvals and the messages.
func TestNICHandlesNeverBreak(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh", "billing": "nw2-ovh"})
	w := e.form("/v/"+e.token(r.ID, "nw1-ovh"), "decision=accept")
	body := w.Body.String()
	bare := regexp.MustCompile(`[^>\w-]([a-z]{2}[0-9]+-ovh)`)
	if m := bare.FindAllString(body, -1); len(m) > 0 {
		t.Errorf("NIC handles outside a nowrap span: %q", m)
	}
	if n := strings.Count(body, `<span class="nic">ad1-ovh</span>`); n < 2 {
		t.Errorf("ad1-ovh is wrapped %d times, want in the message and in the table", n)
	}
}

// The code page follows the browser's Accept-Language among the eight,
// else workflow.default_language.
func TestCodePageFollowsTheBrowser(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	for header, want := range map[string]workflow.Language{"pl-PL,pl;q=0.9": workflow.Polish, "nl": workflow.Dutch,
		"pt-BR": workflow.Portuguese, "it-CH": workflow.Italian, "es-AR,en;q=0.5": workflow.Spanish, "ja": workflow.English} {
		w := e.do("GET", "/v", "", "Accept-Language", header)
		contains(t, w.Body.String(), `<html lang="`+string(want)+`">`, esc(locale.For(want).Must("page.code_title")))
	}
}
