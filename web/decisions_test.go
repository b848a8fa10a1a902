package web_test

import (
	"strconv"
	"strings"
	"testing"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
)

// grouped writes a token the way a person might type it from an email:
// upper case, in groups of four joined by dashes.
func grouped(tok string) string {
	var parts []string
	for len(tok) > 5 {
		parts = append(parts, tok[:4])
		tok = tok[4:]
	}
	return strings.ToUpper(strings.Join(append(parts, tok), "-"))
}

func TestAPIDecideByCode(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		tokN, tokA := e.token(r.ID, "nw1-ovh"), e.token(r.ID, "ad1-ovh")

		// Nora types her code in upper case with dashes; the panel knows her.
		w := e.api("POST", "/api/v1/decisions", `{"token":"`+grouped(tokN)+`","decision":"accept","nic":"NW1-OVH"}`)
		if w.Code != 200 {
			t.Fatalf("accept by code = %d: %s", w.Code, w.Body)
		}
		var got workflow.Request
		decode(t, w, &got)
		if got.ID != r.ID || got.Status != workflow.Pending {
			t.Errorf("answer = request %s %s, want %s pending", got.ID, got.Status, r.ID)
		}
		if a := got.Approvals["nw1-ovh"]; a.Status != "accepted" || a.Channel != workflow.API {
			t.Errorf("nw1-ovh's approval = %+v, want accepted via api", a)
		}
		last := got.History[len(got.History)-1]
		if diff := cmp.Diff([]string{"accepted", "nw1-ovh", "api"}, []string{last.Event, last.NIC, string(last.Channel)}); diff != "" {
			t.Errorf("last history event (-want +got):\n%s", diff)
		}

		// The same code again: used.
		w = e.api("POST", "/api/v1/decisions", `{"token":"`+tokN+`","decision":"accept"}`)
		if code, _, _ := errorOf(t, w); w.Code != 410 || code != "gone" {
			t.Errorf("used code = %d %s, want 410 gone", w.Code, code)
		}

		// Alice, with spaces, without nic: the last accept applies it.
		spaced := " " + strings.ReplaceAll(grouped(tokA), "-", " ") + " "
		w = e.api("POST", "/api/v1/decisions", `{"token":"`+spaced+`","decision":"accept"}`)
		if w.Code != 200 {
			t.Fatalf("second accept = %d: %s", w.Code, w.Body)
		}
		decode(t, w, &got)
		if got.Status != workflow.Applied {
			t.Errorf("status after every accept = %s, want applied", got.Status)
		}

		// Decline by code ends another request.
		r2 := e.create("hosting-9", "ad1-ovh", map[string]string{"billing": "nw2-ovh"})
		w = e.api("POST", "/api/v1/decisions", `{"token":"`+grouped(e.token(r2.ID, "nw2-ovh"))+`","decision":"decline","nic":"nw2-ovh"}`)
		if w.Code != 200 {
			t.Fatalf("decline by code = %d: %s", w.Code, w.Body)
		}
		if got := e.get(r2.ID); got.Status != workflow.Declined || got.Approvals["nw2-ovh"].Channel != workflow.API {
			t.Errorf("after decline: status %s, approval %+v; want declined via api", got.Status, got.Approvals["nw2-ovh"])
		}
	})
}

func TestAPIDecideByCodeRefusals(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tokN := e.token(r.ID, "nw1-ovh")
	closed := e.create("hosting-9", "ad1-ovh", map[string]string{"billing": "nw2-ovh"})
	dead := e.token(closed.ID, "nw2-ovh")
	if w := e.api("POST", "/api/v1/requests/"+closed.ID+"/cancel", `{"nic":"ad1-ovh"}`); w.Code != 200 {
		t.Fatalf("cancel = %d", w.Code)
	}
	unknown := "k" + strings.Repeat("q", workflow.TokenLen-1)
	const path = "/api/v1/decisions"
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"another contact's code", `{"token":"` + tokN + `","decision":"accept","nic":"ad1-ovh"}`, 403, "not_a_contact"},
		{"another contact's code, declining", `{"token":"` + tokN + `","decision":"decline","nic":"te1-ovh"}`, 403, "not_a_contact"},
		{"unknown code", `{"token":"` + unknown + `","decision":"accept"}`, 404, "not_found"},
		{"unknown code with a nic", `{"token":"` + unknown + `","decision":"accept","nic":"nw1-ovh"}`, 404, "not_found"},
		{"not a code at all", `{"token":"hello","decision":"accept"}`, 404, "not_found"},
		{"code of a cancelled request", `{"token":"` + dead + `","decision":"accept","nic":"nw2-ovh"}`, 410, "gone"},
		{"no token", `{"decision":"accept"}`, 400, "invalid_request"},
		{"no decision", `{"token":"` + tokN + `"}`, 400, "invalid_request"},
		{"unknown decision", `{"token":"` + tokN + `","decision":"maybe"}`, 400, "invalid_request"},
		{"bad nic", `{"token":"` + tokN + `","decision":"accept","nic":"nora"}`, 400, "invalid_nic"},
		{"unknown field", `{"token":"` + tokN + `","decision":"accept","x":1}`, 400, "invalid_request"},
		{"not UTF-8", "{\"token\":\"" + tokN + "\xff\",\"decision\":\"accept\"}", 400, "invalid_request"},
	}
	ops := loadOpenAPI(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.api("POST", path, c.body)
			code, msg, _ := errorOf(t, w)
			if w.Code != c.status || code != c.code {
				t.Fatalf("POST %s = %d %s (%s), want %d %s", path, w.Code, code, msg, c.status, c.code)
			}
			if _, ok := ops["POST "+path].Responses[strconv.Itoa(w.Code)]; !ok {
				t.Errorf("answered %d, which docs/openapi.yaml does not list for POST %s", w.Code, path)
			}
		})
	}
	w := e.do("POST", path, `{"token":"`+tokN+`","decision":"accept"}`, "Content-Type", "application/json")
	if code, _, _ := errorOf(t, w); w.Code != 401 || code != "unauthorized" {
		t.Errorf("without an API token = %d %s, want 401 unauthorized", w.Code, code)
	}
	if got := e.get(r.ID).Approvals["nw1-ovh"]; got.Status != "pending" {
		t.Errorf("a refused call recorded %+v for nw1-ovh", got)
	}
	for _, h := range e.get(r.ID).History {
		if h.Event == "accepted" || h.Event == "declined" {
			t.Errorf("a refused call left a history event: %+v", h)
		}
	}
}
