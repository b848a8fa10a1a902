package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/web"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
)

// visible is a page without the spans that keep NIC handles and codes
// on one line, for tests that look for "Name (nic)".
func visible(body string) string {
	return strings.NewReplacer(`<span class="nic">`, "", "</span>", "").Replace(body)
}

func contains(t *testing.T, body string, wants ...string) {
	t.Helper()
	body = visible(body)
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q:\n%s", w, pageText(body))
		}
	}
}

// pageText is a page without its stylesheet, for failure messages.
func pageText(body string) string {
	return regexp.MustCompile(`(?s)<style>.*?</style>`).ReplaceAllString(body, "<style>…</style>")
}

func lacks(t *testing.T, body string, unwanted ...string) {
	t.Helper()
	body = visible(body)
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Errorf("page shows %q, which it must not:\n%s", w, pageText(body))
		}
	}
}

func TestValidationPageInApproversLanguage(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})

	// Nora's contact says French, whatever her browser prefers.
	w := e.do("GET", "/v/"+e.token(r.ID, "nw1-ovh"), "", "Accept-Language", "en-GB,en;q=0.9")
	if w.Code != 200 {
		t.Fatalf("GET = %d, want 200:\n%s", w.Code, w.Body)
	}
	checkPageHeaders(t, w)
	contains(t, w.Body.String(), `<html lang="fr">`, "Changement de contact", "example.com", "(nom de domaine)",
		"Alice Admin (ad1-ovh)", "contact technique", "Tom Tech (te1-ovh)", "Nora New (nw1-ovh)",
		"Vous deviendriez le contact technique.", "16 mars 2026 à 09:00 UTC", ">Accepter<", ">Refuser<",
		`name="decision" value="accept"`, `method="post"`)
	lacks(t, w.Body.String(), "http://", "https://", "<script", "<img")

	// Alice's contact says English.
	w = e.do("GET", "/v/"+e.token(r.ID, "ad1-ovh"), "", "Accept-Language", "fr")
	contains(t, w.Body.String(), `<html lang="en">`, "Change of contact", "technical contact",
		"You asked for this change", "Monday 16 March 2026 at 09:00 UTC", ">Accept<", ">Decline<",
		"Nora New (nw1-ovh)", "waiting")
}

func TestStyleIsAllowedByItsHash(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	w := e.do("GET", "/v/"+strings.Repeat("a", workflow.TokenLen), "")
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no inline style in:\n%s", w.Body)
	}
	sum := sha256.Sum256([]byte(m[1]))
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, want) {
		t.Errorf("Content-Security-Policy %q does not allow the page's style (%s)", csp, want)
	}
}

func TestGETNeverChangesState(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		tok := e.token(r.ID, "nw1-ovh")
		// A report link on another, applied request.
		r2 := e.create("hosting-9", "ad1-ovh", map[string]string{"tech": "te1-ovh"})
		for _, nic := range []string{"ad1-ovh", "te1-ovh"} {
			if _, err := e.store.Decide(context.Background(), e.token(r2.ID, nic), workflow.Accept, workflow.Email); err != nil {
				t.Fatal(err)
			}
		}
		rep := e.reportToken(r2.ID, "nw2-ovh")
		beforeKeys := e.snapshot()
		before := []*workflow.Request{e.get(r.ID), e.get(r2.ID)}
		for i := 0; i < 20; i++ {
			for _, path := range []string{"/v/" + tok, "/r/" + rep} {
				if w := e.do("GET", path, ""); w.Code != 200 {
					t.Fatalf("GET %d = %d", i, w.Code)
				}
				if w := e.do("HEAD", path, ""); w.Code != 200 {
					t.Fatalf("HEAD %d = %d", i, w.Code)
				}
			}
		}
		if diff := cmp.Diff(before, []*workflow.Request{e.get(r.ID), e.get(r2.ID)}); diff != "" {
			t.Errorf("requests changed by GET (-before +after):\n%s", diff)
		}
		if diff := cmp.Diff(beforeKeys, e.snapshot()); diff != "" {
			t.Errorf("Redis changed by GET (-before +after):\n%s", diff)
		}
		// The token still works.
		if w := e.form("/v/"+tok, "decision=accept"); w.Code != 200 {
			t.Errorf("POST after 20 GETs = %d, want 200", w.Code)
		}
	})
}

func TestTokenStates(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		r2 := e.create("overdue.org", "ad1-ovh", map[string]string{"tech": "nw2-ovh"})
		expired := e.token(r2.ID, "nw2-ovh")
		r3 := e.create("hosting-9", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		e.clock.Advance(ttl - time.Minute)
		almost := e.token(r3.ID, "nw1-ovh")

		r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		live := e.token(r.ID, "nw1-ovh")
		used := e.token(r.ID, "ad1-ovh")
		if _, err := e.store.Decide(ctx, used, workflow.Accept, workflow.Email); err != nil {
			t.Fatal(err)
		}
		revoked := live
		live = e.deliver(r.ID, "nw1-ovh") // a newer email, accepted by the mail server, revokes the first token
		e.clock.Advance(time.Minute)      // r2 and r3 are now past their expiry; no sweep ran

		cases := []struct {
			name, token string
			status      int
		}{
			{"live", live, 200},
			{"used", used, 410},
			{"revoked", revoked, 410},
			{"expired by the clock", expired, 410},
			{"expired at issue+ttl", almost, 410},
			{"never existed", "b" + strings.Repeat("q", workflow.TokenLen-1), 404},
			{"malformed", "not-a-token", 404},
			{"too long", strings.Repeat("a", 200), 404},
			{"upper case of a live one", strings.ToUpper(live), 200},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				path := "/v/" + url.PathEscape(c.token)
				w := e.do("GET", path, "", "Accept-Language", "fr-FR,fr;q=0.9")
				if w.Code != c.status {
					t.Fatalf("GET = %d, want %d", w.Code, c.status)
				}
				checkPageHeaders(t, w)
				if c.status == 200 {
					return
				}
				body := w.Body.String()
				contains(t, body, "Ce lien ou ce code n’est pas valide")
				lacks(t, body, "example.com", "overdue.org", "hosting-9", "-ovh", r.ID, r2.ID, "decision")
				w = e.form(path, "decision=accept")
				if w.Code != c.status {
					t.Errorf("POST = %d, want %d", w.Code, c.status)
				}
				lacks(t, w.Body.String(), "example.com", "-ovh")
			})
		}
		if got := e.get(r.ID).Approvals["nw1-ovh"].Status; got != "pending" {
			t.Errorf("nw1-ovh's approval = %s after posts with dead tokens, want pending", got)
		}
	})
}

func TestAcceptThenApplied(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		tokA, tokN := e.token(r.ID, "ad1-ovh"), e.token(r.ID, "nw1-ovh")

		w := e.form("/v/"+tokN, "decision=accept")
		if w.Code != 200 {
			t.Fatalf("first accept = %d:\n%s", w.Code, w.Body)
		}
		checkPageHeaders(t, w)
		contains(t, w.Body.String(), "Votre accord est enregistré", "Alice Admin (ad1-ovh)")
		if w := e.form("/v/"+tokN, "decision=accept"); w.Code != 410 {
			t.Errorf("second post with the same token = %d, want 410", w.Code)
		}
		w = e.form("/v/"+tokA, "decision=accept")
		contains(t, w.Body.String(), "the change is applied")
		got := e.get(r.ID)
		if got.Status != workflow.Applied {
			t.Fatalf("status = %s, want applied", got.Status)
		}
		if a := got.Approvals["ad1-ovh"]; a.Channel != workflow.Web || a.Status != "accepted" {
			t.Errorf("ad1-ovh's approval = %+v, want accepted via web", a)
		}
	})
}

func TestDecline(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	other := e.token(r.ID, "ad1-ovh")
	w := e.form("/v/"+e.token(r.ID, "nw1-ovh"), "decision=decline")
	if w.Code != 200 {
		t.Fatalf("decline = %d", w.Code)
	}
	contains(t, w.Body.String(), "Vous avez refusé")
	if got := e.get(r.ID).Status; got != workflow.Declined {
		t.Errorf("status = %s, want declined", got)
	}
	// The other approver's unused token died with the request.
	if w := e.do("GET", "/v/"+other, ""); w.Code != 410 {
		t.Errorf("GET with the other approver's token after the decline = %d, want 410", w.Code)
	}
	if w := e.form("/v/"+other, "decision=accept"); w.Code != 410 {
		t.Errorf("POST with the other approver's token after the decline = %d, want 410", w.Code)
	}
}

func TestFormPostProtection(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tok := e.token(r.ID, "nw1-ovh")
	path := "/v/" + tok
	form := "application/x-www-form-urlencoded"
	refused := []struct {
		name    string
		status  int
		body    string
		headers []string
	}{
		{"Sec-Fetch-Site cross-site alone", 403, "decision=accept", []string{"Content-Type", form, "Sec-Fetch-Site", "cross-site"}},
		{"Origin of another site alone", 403, "decision=accept", []string{"Content-Type", form, "Origin", "https://evil.example"}},
		{"both cross-site", 403, "decision=accept", []string{"Content-Type", form, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
		{"same-site is not same-origin", 403, "decision=accept", []string{"Content-Type", form, "Sec-Fetch-Site", "same-site"}},
		{"null origin", 403, "decision=accept", []string{"Content-Type", form, "Origin", "null"}},
		{"declining cross-site", 403, "decision=decline", []string{"Content-Type", form, "Sec-Fetch-Site", "cross-site"}},
		{"not a form", 415, `{"decision":"accept"}`, []string{"Content-Type", "application/json", "Origin", baseURL}},
		{"too large", 413, "decision=accept&x=" + strings.Repeat("a", 5000), []string{"Content-Type", form, "Origin", baseURL}},
		{"no decision", 400, "x=1", []string{"Content-Type", form, "Origin", baseURL}},
		{"unknown decision", 400, "decision=maybe", []string{"Content-Type", form, "Origin", baseURL}},
	}
	before := e.snapshot()
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			w := e.do("POST", path, c.body, c.headers...)
			if w.Code != c.status {
				t.Fatalf("POST = %d, want %d:\n%s", w.Code, c.status, w.Body)
			}
			checkPageHeaders(t, w)
			if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type = %q, want a page", w.Header().Get("Content-Type"))
			}
		})
	}
	if diff := cmp.Diff(before, e.snapshot()); diff != "" {
		t.Fatalf("a refused post changed the store (-before +after):\n%s", diff)
	}

	served := []struct {
		name    string
		service string
		changes map[string]string
		headers []string
	}{
		{"a client that is not a browser (neither header)", "overdue.org", map[string]string{"tech": "nw1-ovh"},
			[]string{"Content-Type", form}},
		{"the page itself (Sec-Fetch-Site: same-origin)", "hosting-9", map[string]string{"billing": "nw1-ovh"},
			[]string{"Content-Type", form + "; charset=utf-8", "Sec-Fetch-Site", "same-origin", "Origin", baseURL}},
		{"an older browser sending the Origin of http.base_url", "example.com", map[string]string{"billing": "nw2-ovh"},
			[]string{"Content-Type", form, "Origin", baseURL}},
	}
	for _, c := range served {
		t.Run(c.name, func(t *testing.T) {
			req := e.create(c.service, "ad1-ovh", c.changes)
			approver := req.Approvers()[len(req.Approvers())-1]
			if w := e.do("POST", "/v/"+e.token(req.ID, approver), "decision=accept", c.headers...); w.Code != 200 {
				t.Fatalf("POST = %d, want 200:\n%s", w.Code, w.Body)
			}
			if got := e.get(req.ID).Approvals[approver]; got.Status != "accepted" {
				t.Errorf("approval of %s = %+v, want accepted", approver, got)
			}
		})
	}

	// An older browser behind a proxy that passes on its own Host: Origin
	// equals the Host the request was sent to.
	r4 := e.create("hosting-9", "ad1-ovh", map[string]string{"admin": "nw2-ovh"})
	req := httptest.NewRequest("POST", "/v/"+e.token(r4.ID, "nw2-ovh"), strings.NewReader("decision=accept"))
	req.Host = "internal.example:8080"
	req.Header.Set("Content-Type", form)
	req.Header.Set("Origin", "http://internal.example:8080")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("POST with Origin equal to Host = %d, want 200", w.Code)
	}

	// A base URL that spells out the default port: browsers leave it out of Origin.
	withPort := newEnv(t, redistest.Mini(t), func(p *web.Params) { p.Config.HTTP.BaseURL = baseURL + ":443/" })
	r3 := withPort.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	w = withPort.do("POST", "/v/"+withPort.token(r3.ID, "nw1-ovh"), "decision=accept", "Content-Type", form, "Origin", baseURL)
	if w.Code != 200 {
		t.Errorf("POST with Origin %s to a base URL with :443 = %d, want 200", baseURL, w.Code)
	}
}

func TestPageMethodsAndUnknownPaths(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	w := e.do("PUT", "/v/"+strings.Repeat("a", workflow.TokenLen), "")
	if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT /v/x = %d Allow %q, want 405 Allow GET, HEAD, POST", w.Code, w.Header().Get("Allow"))
	}
	checkPageHeaders(t, w)
	for _, p := range []string{"/", "/v/", "/v/a/b", "/nothing", "/r/"} {
		w := e.do("GET", p, "", "Accept-Language", "fr")
		if w.Code != 404 {
			t.Errorf("GET %s = %d, want 404", p, w.Code)
		}
		checkPageHeaders(t, w)
	}
}

func TestReportLink(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		for _, nic := range []string{"ad1-ovh", "nw1-ovh"} {
			if _, err := e.store.Decide(ctx, e.token(r.ID, nic), workflow.Accept, workflow.Email); err != nil {
				t.Fatal(err)
			}
		}
		rep := e.reportToken(r.ID, "te1-ovh")
		w := e.do("GET", "/r/"+rep, "")
		if w.Code != 200 {
			t.Fatalf("GET /r/ = %d:\n%s", w.Code, w.Body)
		}
		checkPageHeaders(t, w)
		contains(t, w.Body.String(), `lang="fr"`, "Un changement a été fait", "2 mars 2026 à 09:00 UTC",
			"Tom Tech (te1-ovh)", "Nora New (nw1-ovh)", "Ce n’était pas moi")
		if w := e.do("POST", "/r/"+rep, "report=1", "Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example"); w.Code != 403 {
			t.Errorf("cross-site report = %d, want 403", w.Code)
		}
		w = e.form("/r/"+rep, "report=1")
		if w.Code != 200 {
			t.Fatalf("POST /r/ = %d:\n%s", w.Code, w.Body)
		}
		contains(t, w.Body.String(), "Votre signalement est enregistré")
		h := e.get(r.ID).History
		if last := h[len(h)-1]; last.Event != "disputed" || last.NIC != "te1-ovh" || last.Channel != workflow.Web {
			t.Errorf("last event = %+v, want disputed by te1-ovh via web", last)
		}
		if w := e.form("/r/"+rep, "report=1"); w.Code != 410 {
			t.Errorf("second report = %d, want 410", w.Code)
		}
		if w := e.do("GET", "/r/"+rep, ""); w.Code != 410 {
			t.Errorf("GET after report = %d, want 410", w.Code)
		}
		// A validation token is no report token, and the other way round.
		if w := e.do("GET", "/v/"+rep, ""); w.Code != 404 {
			t.Errorf("report token on /v/ = %d, want 404", w.Code)
		}
		rep2 := e.reportToken(r.ID, "te1-ovh")
		e.clock.Advance(721 * time.Hour)
		if w := e.do("GET", "/r/"+rep2, ""); w.Code != 410 {
			t.Errorf("report link after the window = %d, want 410", w.Code)
		}
	})
}

func TestInvalidLinkLanguage(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	for _, c := range []struct{ header, want string }{
		{"fr-CA,fr;q=0.9,en;q=0.8", "Ce lien ou ce code n’est pas valide"},
		{"de-DE,en;q=0.5,fr;q=0.4", "Dieser Link oder Code ist nicht gültig"},
		{"es-MX", "Este enlace o código no es válido"},
		{"it-IT,it;q=0.9", "Questo link o codice non è valido"},
		{"nl-BE", "Deze link of code is niet geldig"},
		{"pl", "Ten link lub kod jest nieważny"},
		{"pt-BR,pt;q=0.9", "Esta ligação ou código não é válido"},
		{"sv-SE", "This link or code is not valid"},
		{"", "This link or code is not valid"},
	} {
		w := e.do("GET", "/v/nope", "", "Accept-Language", c.header)
		contains(t, w.Body.String(), c.want)
	}
}

// TestDecisionOutlivesItsClient posts the last acceptance from a client
// that has already gone away: the decision is still recorded and the
// change applied at once, not left to a sweep nor answered with a 500.
func TestDecisionOutlivesItsClient(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	if _, err := e.store.Decide(context.Background(), e.token(r.ID, "ad1-ovh"), workflow.Accept, workflow.Email); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/v/"+e.token(r.ID, "nw1-ovh"), strings.NewReader("decision=accept"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	ctx, cancel := context.WithCancel(req.Context())
	cancel()
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req.WithContext(ctx))
	if w.Code != 200 {
		t.Errorf("POST from a client gone away = %d, want 200", w.Code)
	}
	if got := e.get(r.ID).Status; got != workflow.Applied {
		t.Errorf("status = %s, want applied", got)
	}
}
