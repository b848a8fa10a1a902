package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/web"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
)

// decode reads a JSON answer into v, failing on anything else.
func decode(t *testing.T, w interface{ Result() *http.Response }, v any) {
	t.Helper()
	res := w.Result()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	dec := json.NewDecoder(res.Body)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode: %v", err)
	}
}

func TestAPICreateAndRead(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		w := e.api("POST", "/api/v1/requests", `{"service":"example.com","requester":"AD1-OVH","changes":{"tech":"nw1-ovh"}}`)
		if w.Code != 201 {
			t.Fatalf("create = %d: %s", w.Code, w.Body)
		}
		var created map[string]any
		decode(t, w, &created)
		for _, f := range []string{"id", "service", "requester", "changes", "status", "approvals", "informed", "created_at", "expires_at", "history"} {
			if _, ok := created[f]; !ok {
				t.Errorf("created request lacks field %q: %v", f, created)
			}
		}
		id, _ := created["id"].(string)
		if got, want := w.Header().Get("Location"), "/api/v1/requests/"+id; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if diff := cmp.Diff(map[string]any{"tech": map[string]any{"from": "te1-ovh", "to": "nw1-ovh"}}, created["changes"]); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		h := created["history"].([]any)[0].(map[string]any)
		if h["event"] != "created" || h["nic"] != "ad1-ovh" || h["channel"] != "api" {
			t.Errorf("first event = %v, want created by ad1-ovh via api", h)
		}
		a := created["approvals"].(map[string]any)["nw1-ovh"].(map[string]any)
		if a["status"] != "pending" {
			t.Errorf("approval of nw1-ovh = %v, want pending", a)
		}

		w = e.api("GET", "/api/v1/requests/"+id, "")
		var got workflow.Request
		decode(t, w, &got)
		if got.ID != id || got.Status != workflow.Pending || got.Service != "example.com" {
			t.Errorf("GET = %+v", got)
		}

		for _, nic := range []string{"ad1-ovh", "NW1-OVH", "te1-ovh"} {
			w = e.api("GET", "/api/v1/requests?nic="+nic, "")
			var list []workflow.Request
			decode(t, w, &list)
			if len(list) != 1 || list[0].ID != id {
				t.Errorf("list for %s = %v, want [%s]", nic, list, id)
			}
		}
		w = e.api("GET", "/api/v1/requests?nic=bi1-ovh", "")
		if strings.TrimSpace(w.Body.String()) != "[]" {
			t.Errorf("list for an uninvolved contact = %s, want []", w.Body)
		}
		w = e.api("GET", "/api/v1/requests?nic=ad1-ovh&status=applied", "")
		if strings.TrimSpace(w.Body.String()) != "[]" {
			t.Errorf("list by another status = %s, want []", w.Body)
		}
		w = e.api("GET", "/api/v1/requests?nic=ad1-ovh&status=pending", "")
		var list []workflow.Request
		decode(t, w, &list)
		if len(list) != 1 {
			t.Errorf("list of pending = %d requests, want 1", len(list))
		}
	})
}

func TestAPIResendAndCancel(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		base := "/api/v1/requests/" + r.ID

		w := e.api("POST", base+"/resend", "")
		if w.Code != 202 || strings.TrimSpace(w.Body.String()) != `{"queued":2}` {
			t.Errorf("resend to all = %d %s, want 202 {\"queued\":2}", w.Code, w.Body)
		}
		w = e.api("POST", base+"/resend", `{"nic":"nw1-ovh"}`)
		if w.Code != 202 || strings.TrimSpace(w.Body.String()) != `{"queued":1}` {
			t.Errorf("resend to one = %d %s", w.Code, w.Body)
		}
		w = e.api("POST", base+"/resend", `{"nic":"bi1-ovh"}`)
		if code, _, _ := errorOf(t, w); w.Code != 400 || code != "invalid_request" {
			t.Errorf("resend to a non-approver = %d %s", w.Code, code)
		}

		w = e.api("POST", base+"/cancel", `{"nic":"nw1-ovh"}`)
		if code, _, _ := errorOf(t, w); w.Code != 403 || code != "role_not_allowed" {
			t.Errorf("cancel by a non-requester = %d %s, want 403 role_not_allowed", w.Code, code)
		}
		w = e.api("POST", base+"/cancel", `{"nic":"ad1-ovh"}`)
		var got workflow.Request
		decode(t, w, &got)
		if w.Code != 200 || got.Status != workflow.Cancelled {
			t.Errorf("cancel = %d status %s, want 200 cancelled", w.Code, got.Status)
		}
		if last := got.History[len(got.History)-1]; last.Event != "cancelled" || last.Channel != workflow.API {
			t.Errorf("last event = %+v, want cancelled via api", last)
		}
		for _, p := range []string{"/cancel", "/resend"} {
			w = e.api("POST", base+p, `{"nic":"ad1-ovh"}`)
			code, _, rid := errorOf(t, w)
			if w.Code != 409 || code != "conflict" || rid != r.ID {
				t.Errorf("%s when cancelled = %d %s request_id %q, want 409 conflict %s", p, w.Code, code, rid, r.ID)
			}
		}
	})
}

func TestAPIDirectory(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		w := e.api("GET", "/api/v1/contacts/TE1-ovh", "")
		if got := strings.TrimSpace(w.Body.String()); w.Code != 200 || got != `{"nic":"te1-ovh","email":"tech@example.com","name":"Tom Tech","language":"fr","payment_ok":true}` {
			t.Errorf("GET contact = %d %s", w.Code, got)
		}
		w = e.api("PUT", "/api/v1/contacts/zz9-ovh", `{"email":"zed@example.org","name":"Zed","language":"fr"}`)
		if got := strings.TrimSpace(w.Body.String()); w.Code != 200 || got != `{"nic":"zz9-ovh","email":"zed@example.org","name":"Zed","language":"fr","payment_ok":true}` {
			t.Errorf("PUT contact = %d %s", w.Code, got)
		}
		w = e.api("PUT", "/api/v1/contacts/zz9-ovh", `{"nic":"ZZ9-OVH","email":"zed@example.org","name":"Zed","language":"en","payment_ok":false}`)
		if w.Code != 200 {
			t.Errorf("PUT contact with its nic = %d %s", w.Code, w.Body)
		}
		c, err := e.store.GetContact(context.Background(), "zz9-ovh")
		if err != nil || c.Language != "en" || c.PaymentOK {
			t.Errorf("stored contact = %+v, %v", c, err)
		}
		// A new address without payment_ok keeps the arrears on file.
		w = e.api("PUT", "/api/v1/contacts/zz9-ovh", `{"email":"zed@example.net","name":"Zed","language":"en"}`)
		if c, _ := e.store.GetContact(context.Background(), "zz9-ovh"); w.Code != 200 || c.PaymentOK || c.Email != "zed@example.net" {
			t.Errorf("PUT without payment_ok = %d, stored %+v; want the address changed and payment_ok still false", w.Code, c)
		}

		w = e.api("GET", "/api/v1/services/example.com", "")
		if got := strings.TrimSpace(w.Body.String()); got != `{"id":"example.com","kind":"domain","admin":"ad1-ovh","tech":"te1-ovh","billing":"bi1-ovh"}` {
			t.Errorf("GET service = %s", got)
		}
		w = e.api("PUT", "/api/v1/services/new.example", `{"kind":"domain","admin":"zz9-ovh","tech":"ZZ9-ovh","billing":"bi1-ovh"}`)
		if got := strings.TrimSpace(w.Body.String()); w.Code != 200 || got != `{"id":"new.example","kind":"domain","admin":"zz9-ovh","tech":"zz9-ovh","billing":"bi1-ovh"}` {
			t.Errorf("PUT service = %d %s", w.Code, got)
		}
		w = e.api("GET", "/api/v1/contacts/zz9-ovh/services", "")
		if got := strings.TrimSpace(w.Body.String()); got != `[{"service":"new.example","kind":"domain","roles":["admin","tech"]}]` {
			t.Errorf("My contacts = %s", got)
		}
		w = e.api("GET", "/api/v1/contacts/nw1-ovh/services", "")
		if got := strings.TrimSpace(w.Body.String()); got != `[]` {
			t.Errorf("My contacts of a contact without services = %s, want []", got)
		}
	})
}

// TestAPIErrors walks every refusal the API can give.
func TestAPIErrors(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	open := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	if _, err := e.store.Decide(context.Background(), e.token(open.ID, "nw1-ovh"), workflow.Accept, workflow.Email); err != nil {
		t.Fatal(err)
	}
	const create = "/api/v1/requests"
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", create, `{"service":`, 400, "invalid_request"},
		{"not JSON at all", "POST", create, `service=example.com`, 400, "invalid_request"},
		{"unknown field", "POST", create, `{"service":"example.com","requester":"ad1-ovh","changes":{"tech":"nw2-ovh"},"x":1}`, 400, "invalid_request"},
		{"wrong type", "POST", create, `{"service":"example.com","requester":7,"changes":{"tech":"nw2-ovh"}}`, 400, "invalid_request"},
		{"wrong type in changes", "POST", create, `{"service":"example.com","requester":"ad1-ovh","changes":{"tech":5}}`, 400, "invalid_request"},
		{"array body", "POST", create, `[1,2]`, 400, "invalid_request"},
		{"trailing data", "POST", create, `{"service":"example.com","requester":"ad1-ovh","changes":{"tech":"nw2-ovh"}} {}`, 400, "invalid_request"},
		{"empty body", "POST", create, ``, 400, "invalid_request"},
		{"body not UTF-8", "POST", create, "{\"service\":\"example.com\xff\",\"requester\":\"ad1-ovh\",\"changes\":{\"tech\":\"nw2-ovh\"}}", 400, "invalid_request"},
		{"contact body not UTF-8", "PUT", "/api/v1/contacts/zz1-ovh", "{\"email\":\"a@b.example\",\"name\":\"\xc3\x28\"}", 400, "invalid_request"},
		{"null body", "POST", create, `null`, 400, "invalid_request"},
		{"missing service", "POST", create, `{"requester":"ad1-ovh","changes":{"tech":"nw2-ovh"}}`, 400, "invalid_request"},
		{"empty changes", "POST", create, `{"service":"example.com","requester":"ad1-ovh","changes":{}}`, 400, "invalid_request"},
		{"unknown role", "POST", create, `{"service":"example.com","requester":"ad1-ovh","changes":{"owner":"nw2-ovh"}}`, 400, "invalid_request"},
		{"bad nic", "POST", create, `{"service":"example.com","requester":"alice","changes":{"tech":"nw2-ovh"}}`, 400, "invalid_nic"},
		{"unknown service", "POST", create, `{"service":"nope.example","requester":"ad1-ovh","changes":{"tech":"nw2-ovh"}}`, 404, "unknown_service"},
		{"unknown contact", "POST", create, `{"service":"hosting-9","requester":"ad1-ovh","changes":{"tech":"zz1-ovh"}}`, 404, "unknown_contact"},
		{"not a contact", "POST", create, `{"service":"hosting-9","requester":"te1-ovh","changes":{"tech":"nw1-ovh"}}`, 403, "not_a_contact"},
		{"role not allowed", "POST", create, `{"service":"hosting-9","requester":"nw2-ovh","changes":{"admin":"nw1-ovh"}}`, 403, "role_not_allowed"},
		{"no change", "POST", create, `{"service":"hosting-9","requester":"ad1-ovh","changes":{"tech":"nw2-ovh"}}`, 422, "no_change"},
		{"payment overdue", "POST", create, `{"service":"overdue.org","requester":"ad1-ovh","changes":{"billing":"bi1-ovh"}}`, 422, "payment_overdue"},
		{"conflict", "POST", create, `{"service":"example.com","requester":"ad1-ovh","changes":{"tech":"nw2-ovh"}}`, 409, "conflict"},
		{"too large", "POST", create, `{"service":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "too_large"},
		{"list without nic", "GET", create, "", 400, "invalid_request"},
		{"list with a bad nic", "GET", create + "?nic=alice", "", 400, "invalid_nic"},
		{"list with a bad status", "GET", create + "?nic=ad1-ovh&status=done", "", 400, "invalid_request"},
		{"unknown request", "GET", create + "/bqqqqqqqqqqqqqqqq", "", 404, "not_found"},
		{"malformed request id", "GET", create + "/x", "", 404, "not_found"},
		{"resend unknown", "POST", create + "/bqqqqqqqqqqqqqqqq/resend", "", 404, "not_found"},
		{"resend to a non-approver", "POST", create + "/" + open.ID + "/resend", `{"nic":"bi1-ovh"}`, 400, "invalid_request"},
		{"resend to an approver who answered", "POST", create + "/" + open.ID + "/resend", `{"nic":"nw1-ovh"}`, 409, "conflict"},
		{"resend bad nic", "POST", create + "/" + open.ID + "/resend", `{"nic":"??"}`, 400, "invalid_nic"},
		{"cancel without body", "POST", create + "/" + open.ID + "/cancel", "", 400, "invalid_request"},
		{"cancel without nic", "POST", create + "/" + open.ID + "/cancel", `{}`, 400, "invalid_request"},
		{"cancel unknown", "POST", create + "/bqqqqqqqqqqqqqqqq/cancel", `{"nic":"ad1-ovh"}`, 404, "not_found"},
		{"unknown contact read", "GET", "/api/v1/contacts/zz1-ovh", "", 404, "unknown_contact"},
		{"bad nic read", "GET", "/api/v1/contacts/alice", "", 400, "invalid_nic"},
		{"bad nic services", "GET", "/api/v1/contacts/alice/services", "", 400, "invalid_nic"},
		{"contact nic mismatch", "PUT", "/api/v1/contacts/zz1-ovh", `{"nic":"zz2-ovh","email":"a@b.example","name":"A"}`, 400, "invalid_request"},
		{"contact bad email", "PUT", "/api/v1/contacts/zz1-ovh", `{"email":"nope","name":"A"}`, 400, "invalid_request"},
		{"contact bad language", "PUT", "/api/v1/contacts/zz1-ovh", `{"email":"a@b.example","name":"A","language":"xx"}`, 400, "invalid_request"},
		{"contact payment_ok not bool", "PUT", "/api/v1/contacts/zz1-ovh", `{"email":"a@b.example","payment_ok":"yes"}`, 400, "invalid_request"},
		{"unknown service read", "GET", "/api/v1/services/nope.example", "", 404, "unknown_service"},
		{"service id mismatch", "PUT", "/api/v1/services/a.example", `{"id":"b.example","kind":"x","admin":"ad1-ovh","tech":"ad1-ovh","billing":"ad1-ovh"}`, 400, "invalid_request"},
		{"service unknown holder", "PUT", "/api/v1/services/a.example", `{"kind":"x","admin":"zz1-ovh","tech":"ad1-ovh","billing":"ad1-ovh"}`, 404, "unknown_contact"},
		{"service id not UTF-8", "PUT", "/api/v1/services/a%FF", `{"kind":"x","admin":"ad1-ovh","tech":"ad1-ovh","billing":"ad1-ovh"}`, 400, "invalid_request"},
		{"service bad holder", "PUT", "/api/v1/services/a.example", `{"kind":"x","admin":"","tech":"ad1-ovh","billing":"ad1-ovh"}`, 400, "invalid_nic"},
		{"wrong method", "DELETE", create, "", 405, "method_not_allowed"},
		{"wrong method on a request", "PUT", create + "/" + open.ID, `{}`, 405, "method_not_allowed"},
		{"GET on an action", "GET", create + "/" + open.ID + "/cancel", "", 405, "method_not_allowed"},
		{"unknown route", "GET", "/api/v1/nothing", "", 404, "not_found"},
		{"unknown version", "GET", "/api/v2/requests", "", 404, "not_found"},
	}
	ops := loadOpenAPI(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.api(c.method, c.path, c.body)
			code, msg, rid := errorOf(t, w)
			if w.Code != c.status || code != c.code {
				t.Fatalf("%s %s = %d %s (%s), want %d %s", c.method, c.path, w.Code, code, msg, c.status, c.code)
			}
			if op, ok := operationOf(ops, c.method, c.path); ok {
				if _, ok := op.Responses[strconv.Itoa(w.Code)]; !ok {
					t.Errorf("%s (%s %s) answered %d, which docs/openapi.yaml does not list", op.OperationID, c.method, c.path, w.Code)
				}
			} else if c.status != 404 && c.status != 405 {
				t.Errorf("docs/openapi.yaml has no operation for %s %s", c.method, c.path)
			}
			if msg == "" || strings.Contains(msg, "Go struct") || strings.Contains(msg, "workflow.") {
				t.Errorf("message %q does not explain the fault in the API's terms", msg)
			}
			if c.code == "conflict" && rid != open.ID {
				t.Errorf("conflict request_id = %q, want %s", rid, open.ID)
			}
			if c.status == 405 && w.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func TestAPIContentTypeAndAuth(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	const body = `{"service":"example.com","requester":"ad1-ovh","changes":{"tech":"nw1-ovh"}}`
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/jsonx"} {
		w := e.do("POST", "/api/v1/requests", body, "Authorization", "Bearer "+apiToken, "Content-Type", ct)
		if code, _, _ := errorOf(t, w); w.Code != 415 || code != "unsupported_media_type" {
			t.Errorf("Content-Type %q = %d %s, want 415", ct, w.Code, code)
		}
	}
	w := e.do("POST", "/api/v1/requests", body, "Authorization", "Bearer "+apiToken, "Content-Type", "application/json; charset=utf-8")
	if w.Code != 201 {
		t.Errorf("Content-Type with charset = %d, want 201", w.Code)
	}

	for _, auth := range []string{"", "Bearer", "Bearer wrong-token-0123456789", "Basic " + apiToken, "Bearer " + apiToken + "x", "Bearer " + apiToken[:10]} {
		for _, p := range []string{"/api/v1/requests?nic=ad1-ovh", "/api/v1/nothing", "/api/v1/contacts/ad1-ovh"} {
			w := e.do("GET", p, "", "Authorization", auth)
			if code, _, _ := errorOf(t, w); w.Code != 401 || code != "unauthorized" {
				t.Errorf("GET %s with Authorization %q = %d %s, want 401 unauthorized", p, auth, w.Code, code)
			}
			if w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		}
	}
	w = e.do("GET", "/api/v1/contacts/ad1-ovh", "", "Authorization", "bearer another-token-abcdefghij")
	if w.Code != 200 {
		t.Errorf("second configured token = %d, want 200", w.Code)
	}

	noTokens := newEnv(t, redistest.Mini(t), func(p *web.Params) { p.Config.HTTP.APITokens = nil })
	w = noTokens.do("GET", "/api/v1/contacts/ad1-ovh", "", "Authorization", "Bearer ")
	if w.Code != 401 {
		t.Errorf("API without configured tokens = %d, want 401", w.Code)
	}
}

func TestAPIStoreDown(t *testing.T) {
	b := redistest.Mini(t)
	e := newEnv(t, b)
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	b.Mini.Close()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/requests?nic=ad1-ovh", ""},
		{"POST", "/api/v1/requests", `{"service":"hosting-9","requester":"ad1-ovh","changes":{"billing":"nw1-ovh"}}`},
		{"GET", "/api/v1/requests/" + r.ID, ""},
		{"POST", "/api/v1/requests/" + r.ID + "/resend", ""},
		{"POST", "/api/v1/requests/" + r.ID + "/cancel", `{"nic":"ad1-ovh"}`},
		{"GET", "/api/v1/contacts/ad1-ovh/services", ""},
		{"GET", "/api/v1/contacts/ad1-ovh", ""},
		{"PUT", "/api/v1/contacts/ad1-ovh", `{"email":"a@b.example"}`},
		{"GET", "/api/v1/services/example.com", ""},
		{"PUT", "/api/v1/services/example.com", `{"kind":"domain","admin":"ad1-ovh","tech":"te1-ovh","billing":"bi1-ovh"}`},
	} {
		w := e.api(c.method, c.path, c.body)
		code, msg, _ := errorOf(t, w)
		if w.Code != 503 || code != "unavailable" {
			t.Errorf("%s %s with Redis down = %d %s, want 503 unavailable", c.method, c.path, w.Code, code)
		}
		if strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "dial") {
			t.Errorf("message %q shows the store's address", msg)
		}
	}
	for _, p := range []string{"/v/", "/r/"} {
		path := p + strings.Repeat("b", workflow.TokenLen)
		for _, w := range []*httptest.ResponseRecorder{e.do("GET", path, ""), e.form(path, "decision=accept&report=1")} {
			if w.Code != 503 {
				t.Errorf("page %s with Redis down = %d, want 503", path, w.Code)
			}
			checkPageHeaders(t, w)
		}
	}
}

// TestAPIMyRequestsOrderAndFilter checks "My requests": newest first, and a
// status filter that sees requests expired by the clock before any sweep.
func TestAPIMyRequestsOrderAndFilter(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		var want []string
		for _, c := range []struct{ svc, role string }{{"example.com", "tech"}, {"hosting-9", "billing"}, {"overdue.org", "tech"}} {
			r := e.create(c.svc, "ad1-ovh", map[string]string{c.role: "nw1-ovh"})
			want = append([]string{r.ID}, want...)
			e.clock.Advance(time.Hour)
		}
		ids := func(query string) []string {
			t.Helper()
			w := e.api("GET", "/api/v1/requests?"+query, "")
			var list []workflow.Request
			decode(t, w, &list)
			out := []string{}
			for _, r := range list {
				out = append(out, r.ID)
			}
			return out
		}
		if diff := cmp.Diff(want, ids("nic=ad1-ovh")); diff != "" {
			t.Errorf("My requests of the requester, newest first (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, ids("nic=NW1-OVH&status=pending")); diff != "" {
			t.Errorf("My requests of a new contact (-want +got):\n%s", diff)
		}
		e.clock.Advance(ttl - 150*time.Minute) // only the oldest is past its expiry; no sweep ran
		if diff := cmp.Diff(want[2:], ids("nic=ad1-ovh&status=expired")); diff != "" {
			t.Errorf("expired requests (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want[:2], ids("nic=ad1-ovh&status=pending")); diff != "" {
			t.Errorf("pending requests (-want +got):\n%s", diff)
		}
	})
}

// TestAPIGETChangesNothing reads through every GET of the API and the
// health endpoints, including a request past its expiry that no sweep has
// marked yet: Redis is the same afterwards.
func TestAPIGETChangesNothing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		old := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		e.clock.Advance(ttl + time.Minute)
		open := e.create("hosting-9", "ad1-ovh", map[string]string{"billing": "nw1-ovh"})
		before := e.snapshot()
		for _, p := range []string{
			"/api/v1/requests?nic=ad1-ovh", "/api/v1/requests?nic=nw1-ovh&status=expired",
			"/api/v1/requests/" + old.ID, "/api/v1/requests/" + open.ID,
			"/api/v1/contacts/ad1-ovh", "/api/v1/contacts/ad1-ovh/services", "/api/v1/services/example.com",
			"/readyz", "/healthz",
		} {
			for _, m := range []string{"GET", "HEAD"} {
				if w := e.api(m, p, ""); w.Code != 200 {
					t.Errorf("%s %s = %d: %s", m, p, w.Code, w.Body)
				}
			}
		}
		if got := e.get(old.ID).Status; got != workflow.Expired {
			t.Errorf("old request reads as %s, want expired", got)
		}
		if diff := cmp.Diff(before, e.snapshot()); diff != "" {
			t.Errorf("Redis changed by GET (-before +after):\n%s", diff)
		}
	})
}

// TestAPIBodyMessages checks a body of the wrong shape is explained by
// field and expected type, in JSON's words.
func TestAPIBodyMessages(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	for _, c := range []struct{ method, path, body, want string }{
		{"PUT", "/api/v1/contacts/zz1-ovh", `{"email":"a@b.example","payment_ok":"yes"}`, "field payment_ok must be true or false, not string"},
		{"PUT", "/api/v1/contacts/zz1-ovh", `{"nic":5,"email":"a@b.example"}`, "field nic must be a string, not number"},
		{"PUT", "/api/v1/services/a.example", `{"id":[],"admin":"ad1-ovh"}`, "field id must be a string, not array"},
		{"POST", "/api/v1/requests", `{"changes":["tech"]}`, "field changes must be an object, not array"},
		{"POST", "/api/v1/requests", `"x"`, "the body must be an object, not string"},
	} {
		w := e.api(c.method, c.path, c.body)
		if code, msg, _ := errorOf(t, w); w.Code != 400 || code != "invalid_request" || msg != c.want {
			t.Errorf("%s %s %s = %d %s %q, want 400 invalid_request %q", c.method, c.path, c.body, w.Code, code, msg, c.want)
		}
	}
}
