package workflow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
)

func TestCancel(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		_, err := s.Cancel(ctx, r.ID, "nw1-ovh", workflow.API)
		wantCode(t, err, workflow.ERoleNotAllowed)
		got, err := s.Cancel(ctx, r.ID, "AD1-OVH", workflow.CLI)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != workflow.Cancelled {
			t.Fatalf("status = %s", got.Status)
		}
		if last := got.History[len(got.History)-1]; last.Event != "cancelled" || last.NIC != "ad1-ovh" || last.Channel != workflow.CLI {
			t.Errorf("last event = %+v", last)
		}
		_, err = s.Cancel(ctx, r.ID, "ad1-ovh", workflow.API)
		wantCode(t, err, workflow.EConflict)
		_, err = s.Cancel(ctx, "bnotarequestidxx", "ad1-ovh", workflow.API)
		wantCode(t, err, workflow.ENotFound)
		_, err = s.Cancel(ctx, "../../etc", "ad1-ovh", workflow.API)
		wantCode(t, err, workflow.ENotFound)
	})
}

func TestConflict(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		seed(t, s)
		first := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		_, err := s.Create(ctx, ask("example.com", "te1-ovh", map[string]string{"tech": "nw2-ovh"}), workflow.API)
		wantCode(t, err, workflow.EConflict)
		var e *workflow.Error
		if !asError(err, &e) || e.RequestID != first.ID {
			t.Fatalf("conflict names %q, want %q", e.RequestID, first.ID)
		}
		_, err = s.Create(ctx, ask("example.com", "ad1-ovh", map[string]string{"billing": "nw1-ovh", "tech": "nw2-ovh"}), workflow.API)
		wantCode(t, err, workflow.EConflict)
		// Another role of the same service is free.
		created(t, s, "example.com", "ad1-ovh", map[string]string{"billing": "nw2-ovh"})
		// Once the first ends, its role is free again.
		if _, err := s.Cancel(ctx, first.ID, "ad1-ovh", workflow.API); err != nil {
			t.Fatal(err)
		}
		created(t, s, "example.com", "te1-ovh", map[string]string{"tech": "nw2-ovh"})
		// Refused requests leave no trace in "My requests".
		l, err := s.List(ctx, "nw1-ovh", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != 1 || l[0].ID != first.ID {
			t.Errorf("requests of nw1-ovh = %d, want only %s", len(l), first.ID)
		}
	})
}

func TestApplyFails(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		seed(t, s)

		// The role holder changed meanwhile.
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		if _, err := s.PutService(ctx, workflow.Service{ID: "example.com", Kind: "domain", Admin: "ad1-ovh", Tech: "nw2-ovh", Billing: "bi1-ovh"}); err != nil {
			t.Fatal(err)
		}
		acceptAll(t, s, r)
		got, _ := s.Get(ctx, r.ID)
		if got.Status != workflow.Failed || !strings.Contains(got.Reason, "tech contact of example.com changed") {
			t.Fatalf("status %s reason %q, want failed because the tech changed", got.Status, got.Reason)
		}
		if svc, _ := s.GetService(ctx, "example.com"); svc.Tech != "nw2-ovh" {
			t.Errorf("failed request changed the service: %+v", svc)
		}

		// A billing contact fell behind with payments.
		r = created(t, s, "example.com", "ad1-ovh", map[string]string{"billing": "nw1-ovh"})
		if _, err := s.PutContact(ctx, workflow.Contact{NIC: "nw1-ovh", Email: "new1@example.net", Language: "fr", PaymentOK: false}); err != nil {
			t.Fatal(err)
		}
		acceptAll(t, s, r)
		got, _ = s.Get(ctx, r.ID)
		if got.Status != workflow.Failed || !strings.Contains(got.Reason, "nw1-ovh is not up to date with payments") {
			t.Fatalf("status %s reason %q, want failed for payments", got.Status, got.Reason)
		}
		if diff := cmp.Diff([]string{"event failed", "failed ad1-ovh", "failed nw1-ovh", "recorded ad1-ovh", "recorded nw1-ovh",
			"validation ad1-ovh", "validation nw1-ovh"}, mails(t, b, r.ID)); diff != "" {
			t.Errorf("emails (-want +got):\n%s", diff)
		}
	})
}

func acceptAll(t *testing.T, s *workflow.Store, r *workflow.Request) *workflow.Outcome {
	t.Helper()
	var out *workflow.Outcome
	for _, nic := range r.Approvers() {
		var err error
		if out, err = s.Decide(context.Background(), token(t, s, r.ID, nic, "validation"), workflow.Accept, workflow.Web); err != nil {
			t.Fatalf("accept by %s: %v", nic, err)
		}
	}
	return out
}

func TestDecline(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		seed(t, s)
		r := created(t, s, "example.com", "te1-ovh", map[string]string{"tech": "nw1-ovh"})
		out, err := s.Decide(ctx, token(t, s, r.ID, "nw1-ovh", "validation"), workflow.Decline, workflow.Email)
		if err != nil {
			t.Fatal(err)
		}
		if out.Request.Status != workflow.Declined || out.Request.Approvals["nw1-ovh"].Status != "declined" {
			t.Fatalf("after decline: %+v", out.Request)
		}
		if svc, _ := s.GetService(ctx, "example.com"); svc.Tech != "te1-ovh" {
			t.Errorf("declined request changed the service")
		}
		if issued(t, s, r.ID, "te1-ovh") {
			t.Error("the other approver's queued email got a token after the decline")
		}
	})
}

func TestResendAndUndeliverable(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		if err := s.MarkUndeliverable(ctx, r.ID, "nw1-ovh"); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, r.ID)
		if !got.Approvals["nw1-ovh"].Undeliverable {
			t.Errorf("approval not marked undeliverable: %+v", got.Approvals["nw1-ovh"])
		}
		if !contains(mails(t, b, r.ID), "undeliverable ad1-ovh") {
			t.Errorf("requester not told of the bounce: %v", mails(t, b, r.ID))
		}
		n, err := s.Resend(ctx, r.ID, "")
		if err != nil || n != 2 {
			t.Fatalf("resend to all = %d, %v; want 2", n, err)
		}
		if got, _ := s.Get(ctx, r.ID); got.Approvals["nw1-ovh"].Undeliverable {
			t.Error("resend did not clear undeliverable")
		}
		_, err = s.Resend(ctx, r.ID, "te1-ovh")
		wantCode(t, err, workflow.EInvalidRequest)
		if _, err := s.Decide(ctx, token(t, s, r.ID, "nw1-ovh", "resend"), workflow.Accept, workflow.Web); err != nil {
			t.Fatal(err)
		}
		_, err = s.Resend(ctx, r.ID, "nw1-ovh")
		wantCode(t, err, workflow.EConflict)
		if _, err := s.Cancel(ctx, r.ID, "ad1-ovh", workflow.API); err != nil {
			t.Fatal(err)
		}
		_, err = s.Resend(ctx, r.ID, "")
		wantCode(t, err, workflow.EConflict)
	})
}

func TestDispute(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		acceptAll(t, s, r)
		// The "informed" email to the previous holder carries the token.
		tok := token(t, s, r.ID, "te1-ovh", workflow.KindInformed)
		if _, _, err := s.LookupToken(ctx, tok); workflow.ErrorCode(err) != workflow.ENotFound {
			t.Errorf("a report token works as a validation token: %v", err)
		}
		got, nic, err := s.LookupReport(ctx, tok)
		if err != nil || got.ID != r.ID || nic != "te1-ovh" {
			t.Fatalf("lookup report = %v %q %v", got, nic, err)
		}
		got, _, err = s.Dispute(ctx, tok, workflow.Web)
		if err != nil {
			t.Fatal(err)
		}
		if last := got.History[len(got.History)-1]; last.Event != "disputed" || last.NIC != "te1-ovh" {
			t.Errorf("last event = %+v", last)
		}
		if m := mails(t, b, r.ID); !contains(m, "disputed te1-ovh") || !contains(m, "event disputed") {
			t.Errorf("emails = %v", m)
		}
		_, _, err = s.Dispute(ctx, tok, workflow.Web)
		wantCode(t, err, workflow.EGone)
		// The window closes.
		tok2 := token(t, s, r.ID, "te1-ovh", workflow.KindInformed)
		c.Advance(720*time.Hour + time.Millisecond)
		_, _, err = s.LookupReport(ctx, tok2)
		wantCode(t, err, workflow.EGone)
	})
}

func TestList(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		r1 := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		c.Advance(time.Second) // "My requests" orders by creation time in ms
		r2 := created(t, s, "hosting-9", "tb1-ovh", map[string]string{"billing": "nw1-ovh"})
		if _, err := s.Cancel(ctx, r2.ID, "tb1-ovh", workflow.API); err != nil {
			t.Fatal(err)
		}
		ids := func(nic, status string) []string {
			l, err := s.List(ctx, nic, status)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range l {
				out = append(out, r.ID)
			}
			return out
		}
		if diff := cmp.Diff([]string{r2.ID, r1.ID}, ids("nw1-ovh", "")); diff != "" {
			t.Errorf("newest first (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{r1.ID}, ids("te1-ovh", "")); diff != "" {
			t.Errorf("informed contact (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{r2.ID}, ids("nw1-ovh", "cancelled")); diff != "" {
			t.Errorf("by status (-want +got):\n%s", diff)
		}
		if got := ids("bi1-ovh", ""); len(got) != 0 {
			t.Errorf("uninvolved contact sees %v", got)
		}
		_, err := s.List(ctx, "nw1-ovh", "bogus")
		wantCode(t, err, workflow.EInvalidRequest)
		_, err = s.List(ctx, "nobody", "")
		wantCode(t, err, workflow.EInvalidNIC)
	})
}

func TestRedisAway(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b, newClock())
	seed(t, s)
	ctx := context.Background()
	r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	b.Mini.Close()
	_, err := s.Create(ctx, ask("example.com", "ad1-ovh", map[string]string{"billing": "nw1-ovh"}), workflow.API)
	wantCode(t, err, workflow.EUnavailable)
	_, err = s.Get(ctx, r.ID)
	wantCode(t, err, workflow.EUnavailable)
	_, err = s.Decide(ctx, strings.Repeat("a", workflow.TokenLen), workflow.Accept, workflow.Web)
	wantCode(t, err, workflow.EUnavailable)
	// It comes back by itself with the server, data intact.
	if err := b.Mini.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, r.ID); err != nil || got.Status != workflow.Pending {
		t.Fatalf("after restart: %v, %v", got, err)
	}
}
