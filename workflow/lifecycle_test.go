package workflow_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
)

func ask(service, requester string, changes map[string]string) workflow.Ask {
	return workflow.Ask{Service: service, Requester: requester, Changes: changes}
}

func TestLifecycleApplied(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)

		r, err := s.Create(ctx, ask("example.com", "AD1-OVH", map[string]string{"tech": "nw1-ovh"}), workflow.API)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.Status, workflow.Pending; got != want {
			t.Fatalf("status = %s, want %s", got, want)
		}
		if diff := cmp.Diff([]string{"ad1-ovh", "nw1-ovh"}, r.Approvers()); diff != "" {
			t.Errorf("approvers (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"te1-ovh"}, r.Informed); diff != "" {
			t.Errorf("informed (-want +got):\n%s", diff)
		}
		if got, want := r.ExpiresAt, c.Now().Add(ttl); !got.Equal(want) {
			t.Errorf("expires_at = %v, want %v", got, want)
		}
		if diff := cmp.Diff([]string{"validation ad1-ovh", "validation nw1-ovh"}, mails(t, b, r.ID)); diff != "" {
			t.Errorf("queued emails (-want +got):\n%s", diff)
		}

		toks := deliver(t, s, r.ID)
		tokA, tokN := toks["validation ad1-ovh"], toks["validation nw1-ovh"]
		if tokA == "" || tokN == "" || tokA == tokN {
			t.Fatalf("tokens sent = %v, want one for each approver, each different", toks)
		}
		c.Advance(time.Minute)
		out, err := s.Decide(ctx, tokN, workflow.Accept, workflow.Email)
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Request.Status; got != workflow.Pending {
			t.Fatalf("after one accept: status = %s, want pending", got)
		}
		out, err = s.Decide(ctx, tokA, workflow.Accept, workflow.Web)
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Request.Status; got != workflow.Applied {
			t.Fatalf("after both accepts: status = %s, want applied", got)
		}
		svc, err := s.GetService(ctx, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := svc.Tech, "nw1-ovh"; got != want {
			t.Errorf("service tech = %s, want %s", got, want)
		}
		if svc.Admin != "ad1-ovh" || svc.Billing != "bi1-ovh" {
			t.Errorf("other roles changed: %+v", svc)
		}
		wantHistory := []string{"created ad1-ovh api", "sent ad1-ovh system", "sent nw1-ovh system",
			"accepted nw1-ovh email", "accepted ad1-ovh web", "approved  system", "applied  system"}
		if out.Request.History != nil {
			t.Errorf("a decision's outcome carries a history: %v", events(out.Request))
		}
		full, err := s.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantHistory, events(full)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		a := out.Request.Approvals["nw1-ovh"]
		if a.Status != "accepted" || a.Channel != workflow.Email || a.At == nil {
			t.Errorf("approval of nw1-ovh = %+v", a)
		}
		wantMails := []string{"applied ad1-ovh", "applied nw1-ovh", "event applied", "informed te1-ovh",
			"recorded ad1-ovh", "recorded nw1-ovh"} // the validation emails left when they were sent
		if diff := cmp.Diff(wantMails, mails(t, b, r.ID)); diff != "" {
			t.Errorf("queued emails (-want +got):\n%s", diff)
		}
		// Applying again changes nothing.
		if st, err := s.Apply(ctx, r.ID); err != nil || st != workflow.Applied {
			t.Errorf("second apply = %s, %v; want applied, nil", st, err)
		}
		if got := len(mails(t, b, r.ID)); got != len(wantMails) {
			t.Errorf("second apply queued more emails: %d", got)
		}
		// My contacts follows the change.
		svcs, err := s.ServicesOf(ctx, "nw1-ovh")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]workflow.ContactService{{Service: "example.com", Kind: "domain", Roles: []workflow.Role{workflow.Tech}}}, svcs); diff != "" {
			t.Errorf("services of nw1-ovh (-want +got):\n%s", diff)
		}
		svcs, _ = s.ServicesOf(ctx, "te1-ovh")
		for _, cs := range svcs {
			if cs.Service == "example.com" {
				t.Errorf("te1-ovh still listed on example.com: %+v", cs)
			}
		}
	})
}

func TestRequestJSON(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b, newClock())
	seed(t, s)
	r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	deliver(t, s, r.ID)
	r, _ = s.Get(context.Background(), r.ID)
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "service", "requester", "changes", "status", "approvals", "informed", "created_at", "expires_at", "history"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("request JSON lacks %q: %s", k, raw)
		}
	}
	a := doc["approvals"].(map[string]any)["nw1-ovh"].(map[string]any)
	for _, k := range []string{"status", "channel", "at"} {
		if _, ok := a[k]; !ok {
			t.Errorf("approval JSON lacks %q: %v", k, a)
		}
	}
	if a["status"] != "pending" || a["channel"] != nil || a["at"] != nil {
		t.Errorf("pending approval = %v", a)
	}
	for _, e := range doc["history"].([]any) {
		if _, ok := e.(map[string]any)["nic"]; !ok {
			t.Errorf("history event lacks nic: %v", e)
		}
	}
	var back workflow.Request
	if err := json.Unmarshal(raw, &back); err != nil || back.Approvals["nw1-ovh"].Status != "pending" ||
		len(back.History) != 3 || back.History[2].Event != "sent" || back.History[2].NIC != "nw1-ovh" {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}
