package workflow_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"
)

// agencyYAML is a directory where the agency ag1-ovh is the technical
// contact of n services, each with its own admin, and nw1-ovh the contact
// it hands them to.
func agencyYAML(n int) string {
	var b strings.Builder
	b.WriteString("contacts:\n  - {nic: ag1-ovh, email: agency@example.com, name: Agency}\n")
	b.WriteString("  - {nic: nw1-ovh, email: new1@example.net, name: Nora New}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {nic: ow%d-ovh, email: owner%d@example.com}\n", i, i)
	}
	b.WriteString("services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: site%02d.example, kind: domain, admin: ow%d-ovh, tech: ag1-ovh, billing: ow%d-ovh}\n", i, i, i)
	}
	return b.String()
}

// handoverMails lists "kinds nic" of the outbox entries about hand-over id.
func handoverMails(t testing.TB, b redistest.Backend, id string) []string {
	var out []string
	for _, m := range outbox(t, b) {
		if m.Handover == id {
			var ks []string
			for _, k := range m.Kinds {
				ks = append(ks, string(k))
			}
			out = append(out, strings.Join(ks, "+")+" "+m.NIC+m.Op)
		}
	}
	sort.Strings(out)
	return out
}

// TestHandoverLifecycle runs a hand-over from creation to applied: one
// of 5 services, which the last accept carries out itself, and one of
// 1,001, which the accept leaves to the outbox job a mailer runs.
func TestHandoverLifecycle(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		for _, n := range []int{5, 1001} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				own := b
				own.Prefix = fmt.Sprintf("%s-%d", b.Prefix, n)
				handoverLifecycle(t, own, n)
			})
		}
	})
}

func handoverLifecycle(t *testing.T, b redistest.Backend, n int) {
	ctx := context.Background()
	s := newStore(t, b, newClock())
	if _, err := s.Import(ctx, []byte(agencyYAML(n))); err != nil {
		t.Fatal(err)
	}
	// The agency hands its technical role to nw1-ovh: it is a tech
	// contact, so the rules let it name a replacement tech.
	h, err := s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Requests) != n || len(h.Refused) != 0 || h.Status != "pending" {
		t.Fatalf("hand-over: %d requests, %d refused, status %s", len(h.Requests), len(h.Refused), h.Status)
	}
	if diff := cmp.Diff([]string{"validation ag1-ovh", "validation nw1-ovh"}, handoverMails(t, b, h.ID)); diff != "" {
		t.Fatalf("emails queued (-want +got):\n%s", diff)
	}
	toks := outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "", ""))
	out, err := s.Decide(ctx, toks["validation nw1-ovh"], workflow.Accept, workflow.Web)
	if err != nil || out.Handover == nil || out.Handover.State != "pending" {
		t.Fatalf("first accept: %+v, %v", out, err)
	}
	out, err = s.Decide(ctx, toks["validation ag1-ovh"], workflow.Accept, workflow.Email)
	if err != nil || out.Handover.State != "approved" {
		t.Fatalf("last accept: %+v, %v", out, err)
	}
	// Up to 1,000 services the accept's call carried out the job
	// itself; beyond, a mailer runs it.
	wantJobs := 0
	if n > 1000 {
		wantJobs = 1
	}
	if got, _ := s.GetHandover(ctx, h.ID); (got.Status == "applied") != (wantJobs == 0) {
		t.Errorf("after the last accept the hand-over is %s", got.Status)
	}
	if jobs := outboxtest.RunJobs(t, s); jobs != wantJobs {
		t.Fatalf("%d jobs ran, want %d", jobs, wantJobs)
	}
	got, err := s.GetHandover(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "applied" {
		t.Errorf("hand-over status %s, want applied", got.Status)
	}
	for _, r := range got.Requests {
		if r.Status != workflow.Applied {
			t.Errorf("request %s of %s is %s", r.ID, r.Service, r.Status)
		}
		svc, _ := s.GetService(ctx, r.Service)
		if svc.Tech != "nw1-ovh" {
			t.Errorf("%s tech is %s", r.Service, svc.Tech)
		}
		req, err := s.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if req.Handover != h.ID || req.Approvals["nw1-ovh"].Status != workflow.ApprovalAccepted {
			t.Errorf("request %s: handover %q, approvals %+v", r.ID, req.Handover, req.Approvals)
		}
		if r.ID == got.Requests[0].ID {
			t.Logf("history of %s: %v", r.ID, events(req))
		}
	}
	want := []string{"applied ag1-ovh", "applied nw1-ovh", "recorded ag1-ovh", "recorded nw1-ovh"}
	if diff := cmp.Diff(want, handoverMails(t, b, h.ID)); diff != "" {
		t.Errorf("emails queued (-want +got):\n%s", diff)
	}
}

// mixedYAML adds to the agency's directory services that a hand-over of
// the agency's technical role must refuse, each for its own reason.
const mixedYAML = `contacts:
  - {nic: ag1-ovh, email: agency@example.com, name: Agency}
  - {nic: nw1-ovh, email: new1@example.net, name: Nora New}
  - {nic: ot1-ovh, email: other@example.com}
  - {nic: od1-ovh, email: overdue@example.net, payment_ok: false}
services:
  - {id: a.example, kind: domain, admin: ot1-ovh, tech: ag1-ovh, billing: ot1-ovh}
  - {id: b.example, kind: web hosting, admin: ot1-ovh, tech: ag1-ovh, billing: ot1-ovh}
  - {id: c.example, kind: vps, admin: ot1-ovh, tech: ag1-ovh, billing: ot1-ovh}
  - {id: done.example, kind: domain, admin: ot1-ovh, tech: nw1-ovh, billing: ot1-ovh}
  - {id: theirs.example, kind: domain, admin: ot1-ovh, tech: ot1-ovh, billing: ot1-ovh}
  - {id: billed.example, kind: domain, admin: ot1-ovh, tech: ot1-ovh, billing: ag1-ovh}
`

func createHandover(t *testing.T, s *workflow.Store, requester string, changes map[string]string, services ...string) *workflow.Handover {
	t.Helper()
	h, err := s.CreateHandover(context.Background(), workflow.HandoverAsk{Requester: requester, Changes: changes, Services: services}, workflow.API, "")
	if err != nil {
		t.Fatalf("create hand-over: %v", err)
	}
	return h
}

// Each service of a hand-over is checked by the rules on its own: those
// refused are listed with a request's refusal code, the others go ahead;
// it is refused as a whole only when none is left.
func TestHandoverRulesPerService(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		if _, err := s.Import(ctx, []byte(mixedYAML)); err != nil {
			t.Fatal(err)
		}
		open := created(t, s, "c.example", "ot1-ovh", map[string]string{"tech": "ot1-ovh"})
		tech := map[string]string{"tech": "nw1-ovh"}
		h := createHandover(t, s, "ag1-ovh", tech, "a.example", "b.example", "c.example", "done.example",
			"theirs.example", "nowhere.example", "billed.example")
		var made []string
		for _, r := range h.Requests {
			made = append(made, r.Service)
		}
		if diff := cmp.Diff([]string{"a.example", "b.example"}, made); diff != "" {
			t.Errorf("requests made (-want +got):\n%s", diff)
		}
		got := map[string]string{}
		for _, r := range h.Refused {
			got[r.Service] = r.Code
		}
		want := map[string]string{"c.example": workflow.EConflict, "done.example": workflow.ENotAContact,
			"theirs.example": workflow.ENotAContact, "nowhere.example": workflow.EUnknownService, "billed.example": workflow.ERoleNotAllowed}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("refused (-want +got):\n%s", diff)
		}
		for _, r := range h.Refused {
			if r.Service == "c.example" && !strings.Contains(r.Message, open.ID) {
				t.Errorf("the conflict does not name the open request %s: %q", open.ID, r.Message)
			}
		}
		// Without a list, only the services where the rules let the
		// requester make the change are covered; none of the others is
		// listed. Here both are taken by the first hand-over: a conflict.
		_, err := s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: tech}, workflow.API, "")
		wantCode(t, err, workflow.EConflict)
		// Every service refused: refused as a whole, with the first code.
		_, err = s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: tech,
			Services: []string{"nowhere.example", "theirs.example"}}, workflow.API, "")
		wantCode(t, err, workflow.EUnknownService)
		_, err = s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: map[string]string{"owner": "nw1-ovh"}}, workflow.API, "")
		wantCode(t, err, workflow.EInvalidRequest)
		_, err = s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: tech, Services: []string{"a b"}}, workflow.API, "")
		wantCode(t, err, workflow.EInvalidRequest)
	})
}

// A hand-over over workflow.max_handover_services is refused.
func TestHandoverMaxServices(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	s, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`,
		RequestTTL: ttl, RemindAfter: remindAfter, MaxHandoverServices: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, []byte(agencyYAML(5))); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API, "")
	wantCode(t, err, workflow.EInvalidRequest)
	h := createHandover(t, s, "ag1-ovh", map[string]string{"tech": "nw1-ovh"}, "site00.example", "site01.example")
	if len(h.Requests) != 2 {
		t.Errorf("%d requests, want 2", len(h.Requests))
	}
}

// A decline by any approver declines every request of the hand-over; the
// approvers get one email each, not one per service.
func TestHandoverDecline(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		if _, err := s.Import(ctx, []byte(agencyYAML(4))); err != nil {
			t.Fatal(err)
		}
		h := createHandover(t, s, "ag1-ovh", map[string]string{"tech": "nw1-ovh"})
		toks := outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "", ""))
		if _, err := s.Decide(ctx, toks["validation ag1-ovh"], workflow.Accept, workflow.Web); err != nil {
			t.Fatal(err)
		}
		out, err := s.Decide(ctx, toks["validation nw1-ovh"], workflow.Decline, workflow.Email)
		if err != nil || out.Handover.End != "declined" {
			t.Fatalf("decline: %+v, %v", out, err)
		}
		outboxtest.RunJobs(t, s)
		got, _ := s.GetHandover(ctx, h.ID)
		if got.Status != "ended" {
			t.Errorf("status %s, want ended", got.Status)
		}
		for _, r := range got.Requests {
			req, _ := s.Get(ctx, r.ID)
			if req.Status != workflow.Declined {
				t.Errorf("%s is %s, want declined", r.Service, req.Status)
			}
			last := req.History[len(req.History)-1]
			if last.Event != "declined" || last.NIC != "nw1-ovh" || last.Channel != workflow.Email {
				t.Errorf("%s: last event %+v", r.Service, last)
			}
		}
		want := []string{"declined ag1-ovh", "recorded ag1-ovh", "recorded+declined nw1-ovh"}
		if diff := cmp.Diff(want, handoverMails(t, b, h.ID)); diff != "" {
			t.Errorf("emails (-want +got):\n%s", diff)
		}
		events := 0
		for _, m := range outbox(t, b) {
			if len(m.Kinds) == 1 && m.Kinds[0] == workflow.KindEvent && m.Event == "declined" {
				events++
			}
		}
		if events != 4 {
			t.Errorf("%d declined events published, want one per request (4)", events)
		}
		_, err = s.Decide(ctx, toks["validation ag1-ovh"], workflow.Accept, workflow.Web)
		wantCode(t, err, workflow.EGone)
	})
}

// One request whose service changed meanwhile fails alone; the others
// are applied, and each previous holder is told once of its services.
func TestHandoverOneFailsOthersApply(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		if _, err := s.Import(ctx, []byte(agencyYAML(3))); err != nil {
			t.Fatal(err)
		}
		// The owners of the services hand the agency's technical role over.
		h := createHandover(t, s, "ow0-ovh", map[string]string{"tech": "nw1-ovh"})
		if len(h.Requests) != 1 {
			t.Fatalf("%d requests", len(h.Requests))
		}
		// An admin hands over on three services it administers: one of
		// them changes technical contact meanwhile.
		if _, err := s.Import(ctx, []byte(`services:
  - {id: site01.example, kind: domain, admin: ow0-ovh, tech: ag1-ovh, billing: ow0-ovh}
  - {id: site02.example, kind: domain, admin: ow0-ovh, tech: ag1-ovh, billing: ow0-ovh}
`)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CancelHandover(ctx, h.ID, "ow0-ovh", workflow.API); err != nil {
			t.Fatal(err)
		}
		outboxtest.RunJobs(t, s)
		h = createHandover(t, s, "ow0-ovh", map[string]string{"tech": "nw1-ovh"})
		if len(h.Requests) != 3 {
			t.Fatalf("%d requests, want 3", len(h.Requests))
		}
		toks := outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "", workflow.KindValidation))
		if _, err := s.PutService(ctx, workflow.Service{ID: "site01.example", Kind: "domain", Admin: "ow0-ovh", Tech: "ow1-ovh", Billing: "ow0-ovh"}); err != nil {
			t.Fatal(err)
		}
		for _, nic := range []string{"ow0-ovh", "nw1-ovh"} {
			if _, err := s.Decide(ctx, toks["validation "+nic], workflow.Accept, workflow.Web); err != nil {
				t.Fatal(err)
			}
		}
		outboxtest.RunJobs(t, s)
		got, _ := s.GetHandover(ctx, h.ID)
		st := map[string]workflow.Status{}
		for _, r := range got.Requests {
			st[r.Service] = r.Status
		}
		want := map[string]workflow.Status{"site00.example": workflow.Applied, "site01.example": workflow.Failed, "site02.example": workflow.Applied}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		if got.Status != "ended" {
			t.Errorf("hand-over %s, want ended (one failed)", got.Status)
		}
		for _, r := range got.Requests {
			if r.Service == "site01.example" {
				req, _ := s.Get(ctx, r.ID)
				if req.Why.Code != workflow.ReasonRoleChanged || req.Why.Arg != "tech" {
					t.Errorf("failure reason %+v", req.Why)
				}
			}
		}
		mails := handoverMails(t, b, h.ID)
		for _, want := range []string{"applied+failed ow0-ovh", "applied+failed nw1-ovh", "informed ag1-ovh"} {
			if !contains(mails, want) {
				t.Errorf("emails %v lack %q", mails, want)
			}
		}
	})
}

// A resend's token revokes the earlier one only once its email is
// accepted by the mail server; cancelling is the requester's alone.
func TestHandoverResendAndCancel(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		if _, err := s.Import(ctx, []byte(agencyYAML(2))); err != nil {
			t.Fatal(err)
		}
		h := createHandover(t, s, "ag1-ovh", map[string]string{"tech": "nw1-ovh"})
		held := outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "nw1-ovh", ""))["validation nw1-ovh"]
		live := func(tok string) bool { _, err := s.Lookup(ctx, tok); return err == nil }
		if n, err := s.ResendHandover(ctx, h.ID, "nw1-ovh"); err != nil || n != 1 {
			t.Fatalf("resend = %d, %v", n, err)
		}
		on := outboxtest.Pending(t, s, outboxtest.Of(h.ID, "nw1-ovh", workflow.KindResend))
		if !live(held) || !live(on) {
			t.Fatalf("while the resend is on its way: held %v, new %v; want both", live(held), live(on))
		}
		newest := outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "nw1-ovh", workflow.KindResend))["resend nw1-ovh"]
		if live(held) || !live(newest) || !live(on) {
			t.Errorf("after the resend was sent: held %v, new %v, its first attempt %v; want false, true, true", live(held), live(newest), live(on))
		}
		_, err := s.CancelHandover(ctx, h.ID, "nw1-ovh", workflow.API)
		wantCode(t, err, workflow.ERoleNotAllowed)
		_, err = s.Cancel(ctx, h.Requests[0].ID, "ag1-ovh", workflow.API)
		wantCode(t, err, workflow.EConflict)
		got, err := s.CancelHandover(ctx, h.ID, "ag1-ovh", workflow.CLI)
		if err != nil {
			t.Fatal(err)
		}
		outboxtest.RunJobs(t, s)
		got, _ = s.GetHandover(ctx, h.ID)
		for _, r := range got.Requests {
			if r.Status != workflow.Cancelled {
				t.Errorf("%s is %s, want cancelled", r.Service, r.Status)
			}
		}
		_, err = s.CancelHandover(ctx, h.ID, "ag1-ovh", workflow.API)
		wantCode(t, err, workflow.EConflict)
		if live(newest) {
			t.Error("a token of a cancelled hand-over still works")
		}
	})
}

// Reminders and expiry act on the whole hand-over.
func TestHandoverRemindersAndExpiry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		if _, err := s.Import(ctx, []byte(agencyYAML(3))); err != nil {
			t.Fatal(err)
		}
		h := createHandover(t, s, "ag1-ovh", map[string]string{"tech": "nw1-ovh"})
		toks := outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "", ""))
		if _, err := s.Decide(ctx, toks["validation ag1-ovh"], workflow.Accept, workflow.Web); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			c.Advance(remindAfter)
			if _, err := s.Sweep(ctx, 100); err != nil {
				t.Fatal(err)
			}
		}
		reminders := 0
		for _, m := range handoverMails(t, b, h.ID) {
			if strings.HasPrefix(m, "reminder ") {
				reminders++
				if m != "reminder nw1-ovh" {
					t.Errorf("reminder to %s", m)
				}
			}
		}
		if reminders != 2 {
			t.Errorf("%d reminders, want max_reminders (2), to the approver who has not answered", reminders)
		}
		c.Advance(ttl)
		if res, err := s.Sweep(ctx, 100); err != nil || res.Expired != 1 {
			t.Fatalf("sweep after ttl: %+v, %v", res, err)
		}
		outboxtest.RunJobs(t, s)
		got, _ := s.GetHandover(ctx, h.ID)
		for _, r := range got.Requests {
			req, _ := s.Get(ctx, r.ID)
			if req.Status != workflow.Expired || countEvents(req, "expired") != 1 {
				t.Errorf("%s: %s, history %v", r.Service, req.Status, events(req))
			}
		}
		mails := handoverMails(t, b, h.ID)
		if !contains(mails, "expired ag1-ovh") || !contains(mails, "expired nw1-ovh") {
			t.Errorf("emails %v", mails)
		}
	})
}

// "My requests" lists a hand-over's requests with its id, and each one's
// history has the hand-over's events with their channel.
func TestHandoverListAndHistory(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		if _, err := s.Import(ctx, []byte(agencyYAML(3))); err != nil {
			t.Fatal(err)
		}
		h := createHandover(t, s, "ag1-ovh", map[string]string{"tech": "nw1-ovh"})
		toks := outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "", ""))
		if _, err := s.Decide(ctx, toks["validation nw1-ovh"], workflow.Accept, workflow.Email); err != nil {
			t.Fatal(err)
		}
		for _, nic := range []string{"ag1-ovh", "nw1-ovh"} {
			l, err := s.List(ctx, nic, "pending")
			if err != nil {
				t.Fatal(err)
			}
			if len(l) != 3 {
				t.Errorf("%s lists %d pending requests, want 3", nic, len(l))
			}
			for _, r := range l {
				if r.Handover != h.ID {
					t.Errorf("listed request %s has handover %q", r.ID, r.Handover)
				}
				if !contains(events(r), "accepted nw1-ovh email") || !contains(events(r), "sent nw1-ovh system") {
					t.Errorf("history of %s: %v", r.ID, events(r))
				}
			}
		}
		// A previous holder is listed the requests it is told of.
		if l, _ := s.List(ctx, "ow1-ovh", ""); len(l) != 0 {
			t.Errorf("ow1-ovh lists %d requests before anything applied, want 0 (its role is not changed)", len(l))
		}
	})
}

// A hand-over created again with the same idempotency key is the first.
func TestHandoverIdempotencyKey(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	s := newStore(t, b, newClock())
	if _, err := s.Import(ctx, []byte(agencyYAML(2))); err != nil {
		t.Fatal(err)
	}
	ask := workflow.HandoverAsk{Requester: "ag1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}
	h1, err := s.CreateHandover(ctx, ask, workflow.API, "k-123")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := s.CreateHandover(ctx, ask, workflow.API, "k-123")
	if err != nil || h2.ID != h1.ID {
		t.Fatalf("second call with the key: %v, %v; want hand-over %s", h2, err, h1.ID)
	}
	if n := len(handoverMails(t, b, h1.ID)); n != 2 {
		t.Errorf("%d emails, want 2", n)
	}
}

// A creation left half done by a daemon that stopped is finished by the
// sweep: the requests made are kept, the others refused, the approvers
// emailed.
func TestHandoverCreationFinishedBySweep(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		if _, err := s.Import(ctx, []byte(agencyYAML(4))); err != nil {
			t.Fatal(err)
		}
		id, err := s.StartHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}, 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetHandover(ctx, id); err != nil {
			t.Fatal(err)
		}
		if n := len(handoverMails(t, b, id)); n != 0 {
			t.Fatalf("%d emails before the creation is finished", n)
		}
		c.Advance(2 * time.Minute)
		if _, err := s.Sweep(ctx, 100); err != nil {
			t.Fatal(err)
		}
		h, err := s.GetHandover(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Requests) != 2 || len(h.Refused) != 2 || h.Status != "pending" {
			t.Errorf("after the sweep: %d requests, %d refused, %s", len(h.Requests), len(h.Refused), h.Status)
		}
		if diff := cmp.Diff([]string{"validation ag1-ovh", "validation nw1-ovh"}, handoverMails(t, b, id)); diff != "" {
			t.Errorf("emails (-want +got):\n%s", diff)
		}
	})
}

// A previous holder who reports "this wasn't me" for a hand-over's
// changes gets a disputed event on each of its requests, and the security
// contact one email.
func TestHandoverDisputed(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		if _, err := s.Import(ctx, []byte(agencyYAML(3))); err != nil {
			t.Fatal(err)
		}
		// The owner of site00 hands the technical role over: the agency,
		// not an approver, is told.
		h := createHandover(t, s, "ow0-ovh", map[string]string{"tech": "nw1-ovh"})
		toks := outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "", workflow.KindValidation))
		for _, tok := range toks {
			if _, err := s.Decide(ctx, tok, workflow.Accept, workflow.Web); err != nil {
				t.Fatal(err)
			}
		}
		outboxtest.RunJobs(t, s)
		rep := outboxtest.Pending(t, s, outboxtest.Of(h.ID, "ag1-ovh", workflow.KindInformed))
		l, err := s.LookupAnyReport(ctx, rep)
		if err != nil || l.Handover == nil || len(l.Handover.ItemsOf("ag1-ovh")) != 1 {
			t.Fatalf("lookup report: %+v, %v", l, err)
		}
		if _, err := s.DisputeAny(ctx, rep, workflow.Web); err != nil {
			t.Fatal(err)
		}
		outboxtest.RunJobs(t, s)
		req, _ := s.Get(ctx, h.Requests[0].ID)
		if countEvents(req, "disputed") != 1 {
			t.Errorf("history %v", events(req))
		}
		if !contains(handoverMails(t, b, h.ID), "disputed ag1-ovh") {
			t.Errorf("emails %v", handoverMails(t, b, h.ID))
		}
		_, err = s.DisputeAny(ctx, rep, workflow.Web)
		wantCode(t, err, workflow.EGone)
	})
}

// A bounce of a hand-over's email to an approver stops that approver's
// reminders and tells the requester once; a resend to the approver takes
// the mark away.
func TestHandoverUndeliverable(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		if _, err := s.Import(ctx, []byte(agencyYAML(3))); err != nil {
			t.Fatal(err)
		}
		h := createHandover(t, s, "ag1-ovh", map[string]string{"tech": "nw1-ovh"})
		outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "", ""))
		for range 2 {
			if err := s.MarkUndeliverable(ctx, h.ID, "nw1-ovh"); err != nil {
				t.Fatal(err)
			}
		}
		wantCode(t, s.MarkUndeliverable(ctx, h.ID, "ow1-ovh"), workflow.ENotFound)
		got, _ := s.GetHandover(ctx, h.ID)
		if !got.Approvals["nw1-ovh"].Undeliverable || got.Approvals["ag1-ovh"].Undeliverable {
			t.Errorf("approvals %+v: want nw1-ovh alone undeliverable", got.Approvals)
		}
		if diff := cmp.Diff([]string{"undeliverable ag1-ovh"}, handoverMails(t, b, h.ID)); diff != "" {
			t.Errorf("emails queued (-want +got):\n%s", diff)
		}
		outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "", ""))
		c.Advance(remindAfter)
		if _, err := s.Sweep(ctx, 100); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"reminder ag1-ovh"}, handoverMails(t, b, h.ID)); diff != "" {
			t.Errorf("reminders (-want +got):\n%s", diff)
		}
		if n, err := s.ResendHandover(ctx, h.ID, "nw1-ovh"); err != nil || n != 1 {
			t.Fatalf("resend = %d, %v", n, err)
		}
		if got, _ := s.GetHandover(ctx, h.ID); got.Approvals["nw1-ovh"].Undeliverable {
			t.Error("nw1-ovh is still undeliverable after a resend to it")
		}
	})
}
