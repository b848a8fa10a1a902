package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"
)

// handoverJSON is the part of the API's hand-over a control panel reads.
type handoverJSON struct {
	ID        string            `json:"id"`
	Requester string            `json:"requester"`
	Changes   map[string]string `json:"changes"`
	Status    string            `json:"status"`
	Requests  []struct {
		Service, ID, Status string
	} `json:"requests"`
	Refused []struct {
		Service, Code, Message string
	} `json:"refused"`
	Approvals map[string]struct {
		Status, Channel string
	} `json:"approvals"`
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at"`
}

func decodeHandover(t *testing.T, b []byte) handoverJSON {
	t.Helper()
	var h handoverJSON
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("hand-over JSON: %v\n%s", err, b)
	}
	return h
}

// handoverToken issues the token of the hand-over's email to nic, as the
// mailer does.
func (e *env) handoverToken(id, nic string) string {
	e.t.Helper()
	return outboxtest.Pending(e.t, e.store, func(en *workflow.OutboxEntry) bool {
		return en.Handover == id && en.NIC == nic && en.Kind().CarriesToken()
	})
}

// TestHandoverAPI creates a hand-over the way the control panel does: the
// services the rules allow go ahead, the others come back with their
// codes, and a retry with the same Idempotency-Key makes nothing twice.
func TestHandoverAPI(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		ask := `{"requester":"ad1-ovh","changes":{"tech":"nw2-ovh"}}`
		w := e.do("POST", "/api/v1/handovers", ask, "Authorization", "Bearer "+apiToken,
			"Content-Type", "application/json", "Idempotency-Key", "panel-42")
		if w.Code != http.StatusCreated {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
		h := decodeHandover(t, w.Body.Bytes())
		if h.ID == "" || h.Requester != "ad1-ovh" || h.Status != "pending" || h.Changes["tech"] != "nw2-ovh" ||
			h.CreatedAt == "" || h.ExpiresAt == "" {
			t.Errorf("hand-over: %+v", h)
		}
		// ad1-ovh administers three services; nw2-ovh is already
		// hosting-9's technical contact, so two requests are made.
		got := map[string]string{}
		for _, r := range h.Requests {
			if r.ID == "" || r.Status != "pending" {
				t.Errorf("request %+v", r)
			}
			got[r.Service] = r.Status
		}
		if diff := cmp.Diff(map[string]string{"example.com": "pending", "overdue.org": "pending"}, got); diff != "" {
			t.Errorf("requests (-want +got):\n%s", diff)
		}
		if len(h.Refused) != 1 || h.Refused[0].Service != "hosting-9" || h.Refused[0].Code != workflow.ENoChange || h.Refused[0].Message == "" {
			t.Errorf("refused: %+v", h.Refused)
		}
		if len(h.Approvals) != 2 || h.Approvals["ad1-ovh"].Status != "pending" || h.Approvals["nw2-ovh"].Status != "pending" {
			t.Errorf("approvals: %+v", h.Approvals)
		}
		for _, r := range h.Requests {
			if req := e.get(r.ID); req.Handover != h.ID {
				t.Errorf("request %s carries hand-over %q, want %s", r.ID, req.Handover, h.ID)
			}
		}

		// The panel's retry, after a lost answer, gets the same hand-over.
		before := e.snapshot()
		again := e.do("POST", "/api/v1/handovers", ask, "Authorization", "Bearer "+apiToken,
			"Content-Type", "application/json", "Idempotency-Key", "panel-42")
		if again.Code != http.StatusCreated || decodeHandover(t, again.Body.Bytes()).ID != h.ID {
			t.Errorf("retry: %d %s", again.Code, again.Body)
		}
		if diff := cmp.Diff(before, e.snapshot()); diff != "" {
			t.Errorf("the retry changed the store (-before +after):\n%s", diff)
		}

		w = e.api("GET", "/api/v1/handovers/"+h.ID, "")
		if w.Code != http.StatusOK || decodeHandover(t, w.Body.Bytes()).ID != h.ID {
			t.Errorf("get: %d %s", w.Code, w.Body)
		}
		for _, c := range []struct {
			method, path, body string
			status             int
			code               string
		}{
			{"GET", "/api/v1/handovers/hnosuchhandover1", "", http.StatusNotFound, workflow.ENotFound},
			{"POST", "/api/v1/handovers", `{"requester":"ad1-ovh"}`, http.StatusBadRequest, workflow.EInvalidRequest},
			{"POST", "/api/v1/handovers", `{"requester":"ad1-ovh","changes":{"tech":"nw1-ovh"},"services":["nowhere.example"]}`, http.StatusNotFound, workflow.EUnknownService},
			{"POST", "/api/v1/handovers", `{"requester":"zz9-ovh","changes":{"tech":"nw1-ovh"}}`, http.StatusNotFound, workflow.EUnknownContact},
			{"POST", "/api/v1/handovers", `{"requester":"ad1-ovh","changes":{"tech":"nw1-ovh"}`, http.StatusBadRequest, workflow.EInvalidRequest},
			{"POST", "/api/v1/handovers/" + h.ID + "/cancel", `{}`, http.StatusBadRequest, workflow.EInvalidRequest},
			{"POST", "/api/v1/handovers/" + h.ID + "/cancel", `{"nic":"nw2-ovh"}`, http.StatusForbidden, workflow.ERoleNotAllowed},
		} {
			w := e.api(c.method, c.path, c.body)
			var er struct {
				Error struct{ Code, Message string }
			}
			_ = json.Unmarshal(w.Body.Bytes(), &er)
			if w.Code != c.status || er.Error.Code != c.code || er.Error.Message == "" {
				t.Errorf("%s %s %s: %d %s, want %d %s", c.method, c.path, c.body, w.Code, w.Body, c.status, c.code)
			}
		}
		if w := e.do("POST", "/api/v1/handovers", ask, "Content-Type", "application/json"); w.Code != http.StatusUnauthorized {
			t.Errorf("create without a token: %d", w.Code)
		}

		// A resend queues one email per awaited approver, whatever the
		// number of services; a cancel ends every request.
		w = e.api("POST", "/api/v1/handovers/"+h.ID+"/resend", `{}`)
		var q struct{ Queued int }
		if err := json.Unmarshal(w.Body.Bytes(), &q); err != nil || w.Code != http.StatusAccepted || q.Queued != 2 {
			t.Errorf("resend: %d %s", w.Code, w.Body)
		}
		w = e.api("POST", "/api/v1/handovers/"+h.ID+"/cancel", `{"nic":"ad1-ovh"}`)
		if w.Code != http.StatusOK || decodeHandover(t, w.Body.Bytes()).Status != "ended" {
			t.Errorf("cancel: %d %s", w.Code, w.Body)
		}
		for _, r := range h.Requests {
			if st := e.get(r.ID).Status; st != workflow.Cancelled {
				t.Errorf("request %s is %s after the cancel", r.ID, st)
			}
		}
	})
}

// TestHandoverPageDecidesAll: the page of a hand-over's token lists every
// service, GET changes nothing, and one click accepts every request; the
// other approver's code, typed in the control panel, does the same.
func TestHandoverPageDecidesAll(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		// Alice hands the technical role of two of her three services.
		h, err := e.store.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ad1-ovh", Changes: map[string]string{"tech": "nw1-ovh"},
			Services: []string{"example.com", "hosting-9"}}, workflow.API, "")
		if err != nil {
			t.Fatal(err)
		}
		tokN, tokA := e.handoverToken(h.ID, "nw1-ovh"), e.handoverToken(h.ID, "ad1-ovh")

		before := e.snapshot()
		w := e.do("GET", "/v/"+tokN, "")
		if w.Code != http.StatusOK {
			t.Fatalf("page: %d %s", w.Code, w.Body)
		}
		page := w.Body.String()
		// Nora reads French: every service, its previous and new contact,
		// one button for all.
		for _, want := range []string{`lang="fr"`, "example.com", "hosting-9", "Tom Tech", "Ned New", "Nora New", `id="accept"`, `id="decline-confirm"`} {
			if !strings.Contains(page, want) {
				t.Errorf("the page lacks %q", want)
			}
		}
		if strings.Count(page, `id="accept"`) != 1 || strings.Contains(page, "overdue.org") {
			t.Errorf("the page should have one Accept and no refused service:\n%s", page)
		}
		if diff := cmp.Diff(before, e.snapshot()); diff != "" {
			t.Errorf("GET changed the store (-before +after):\n%s", diff)
		}

		w = e.form("/v/"+tokN, "decision=accept")
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Alice Admin") {
			t.Errorf("accept: %d, the page should say whom it still awaits:\n%s", w.Code, w.Body)
		}
		if w := e.do("GET", "/v/"+tokN, ""); w.Code != http.StatusGone {
			t.Errorf("the used link answers %d, want 410", w.Code)
		}

		// Alice types her code in the control panel: 200 with the hand-over.
		w = e.api("POST", "/api/v1/decisions", `{"token":"`+tokA+`","decision":"accept","nic":"ad1-ovh"}`)
		if w.Code != http.StatusOK {
			t.Fatalf("decision: %d %s", w.Code, w.Body)
		}
		got := decodeHandover(t, w.Body.Bytes())
		if got.ID != h.ID || got.Approvals["ad1-ovh"].Status != "accepted" || got.Approvals["ad1-ovh"].Channel != "api" ||
			got.Approvals["nw1-ovh"].Channel != "web" {
			t.Errorf("decision answered %s", w.Body)
		}
		outboxtest.RunJobs(t, e.store)
		for _, r := range h.Requests {
			if req := e.get(r.ID); req.Status != workflow.Applied {
				t.Errorf("request %s on %s is %s", r.ID, r.Service, req.Status)
			}
			if svc, _ := e.store.GetService(ctx, r.Service); svc.Tech != "nw1-ovh" {
				t.Errorf("%s tech is %s", r.Service, svc.Tech)
			}
		}
		w = e.api("GET", "/api/v1/handovers/"+h.ID, "")
		if st := decodeHandover(t, w.Body.Bytes()).Status; st != "applied" {
			t.Errorf("hand-over status %s, want applied", st)
		}

		// Tom, tech of example.com until now, is told; his "this wasn't
		// me" page shows his service only.
		rep := outboxtest.Pending(t, e.store, func(en *workflow.OutboxEntry) bool {
			return en.Handover == h.ID && en.NIC == "te1-ovh" && en.Kind() == workflow.KindInformed
		})
		w = e.do("GET", "/r/"+rep, "")
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "example.com") || strings.Contains(w.Body.String(), "hosting-9") {
			t.Errorf("report page: %d\n%s", w.Code, w.Body)
		}
	})
}
