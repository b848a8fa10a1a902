package web_test

import (
	"strings"
	"testing"

	"contactd/internal/redistest"
)

// The API's JSON is not HTML: its messages keep < and > as written.
func TestJSONIsNotEscapedForHTML(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	w := e.do("GET", "/api/v1/contacts/ad1-ovh", "")
	if w.Code != 401 || !strings.Contains(w.Body.String(), "Authorization: Bearer <token>") || strings.Contains(w.Body.String(), `\u003c`) {
		t.Errorf("401 body = %s", w.Body)
	}
}

// A code typed in the control panel and used twice is refused as a code:
// the message speaks of no link, since none was used.
func TestRepeatedDecisionByCodeSpeaksOfACode(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tok := e.token(r.ID, "nw1-ovh")
	body := `{"token":"` + strings.ToUpper(tok) + `","decision":"accept","nic":"nw1-ovh"}`
	if w := e.api("POST", "/api/v1/decisions", body); w.Code != 200 {
		t.Fatalf("first decision = %d %s", w.Code, w.Body)
	}
	for _, b := range []string{body, `{"token":"` + tok + `","decision":"decline"}`} {
		w := e.api("POST", "/api/v1/decisions", b)
		code, msg, _ := errorOf(t, w)
		if w.Code != 410 || code != "gone" || !strings.Contains(msg, "validation code is no longer valid") || strings.Contains(msg, "link") {
			t.Errorf("repeated decision = %d %s %q", w.Code, code, msg)
		}
	}
	w := e.api("POST", "/api/v1/decisions", `{"token":"`+strings.Repeat("b", len(tok))+`","decision":"accept"}`)
	if code, msg, _ := errorOf(t, w); w.Code != 404 || code != "not_found" || strings.Contains(msg, "link") {
		t.Errorf("unknown code = %d %s %q", w.Code, code, msg)
	}
}
