package workflow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"
)

func created(t *testing.T, s *workflow.Store, service, requester string, changes map[string]string) *workflow.Request {
	t.Helper()
	r, err := s.Create(context.Background(), ask(service, requester, changes), workflow.API)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return r
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := workflow.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func TestTokenShape(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b, newClock())
	seed(t, s)
	r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		tok := token(t, s, r.ID, "ad1-ovh", "reminder")
		if len(tok) != workflow.TokenLen || strings.ToLower(tok) != tok || strings.Trim(tok, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("token %q is not %d lower-case base32 characters", tok, workflow.TokenLen)
		}
		if seen[tok] {
			t.Fatal("a token repeated")
		}
		seen[tok] = true
		// The token itself is stored nowhere.
		for _, k := range b.Mini.Keys() {
			if strings.Contains(k, tok) {
				t.Fatalf("key %q holds the token", k)
			}
			if v, err := b.Mini.Get(k); err == nil && strings.Contains(v, tok) {
				t.Fatalf("key %q holds the token", k)
			}
			if h, err := b.Mini.HKeys(k); err == nil {
				for _, f := range h {
					if strings.Contains(b.Mini.HGet(k, f), tok) {
						t.Fatalf("field %s of %q holds the token", f, k)
					}
				}
			}
		}
	}
}

func TestTokenStates(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		old := deliver(t, s, r.ID)["validation nw1-ovh"]
		if _, err := s.Resend(ctx, r.ID, "nw1-ovh"); err != nil {
			t.Fatal(err)
		}
		live := deliver(t, s, r.ID)["resend nw1-ovh"]

		// Looking changes nothing, and tells live from revoked.
		for i := 0; i < 3; i++ {
			got, nic, err := s.LookupToken(ctx, strings.ToUpper(live))
			if err != nil || got.ID != r.ID || nic != "nw1-ovh" {
				t.Fatalf("lookup live token = %v, %q, %v", got, nic, err)
			}
		}
		_, _, err := s.LookupToken(ctx, old)
		wantCode(t, err, workflow.EGone)
		_, err = s.Decide(ctx, old, workflow.Accept, workflow.Web)
		wantCode(t, err, workflow.EGone)

		never := strings.Repeat("a", workflow.TokenLen)
		_, _, err = s.LookupToken(ctx, never)
		wantCode(t, err, workflow.ENotFound)
		_, err = s.Decide(ctx, never, workflow.Accept, workflow.Web)
		wantCode(t, err, workflow.ENotFound)
		_, err = s.Decide(ctx, "not a token", workflow.Accept, workflow.Web)
		wantCode(t, err, workflow.ENotFound)

		// A token is single-use; case does not matter. An email still
		// queued to an approver who answered gets no token: the mailer
		// drops it.
		if _, err := s.Resend(ctx, r.ID, "nw1-ovh"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Decide(ctx, strings.ToUpper(live), workflow.Accept, workflow.Email); err != nil {
			t.Fatal(err)
		}
		_, err = s.Decide(ctx, live, workflow.Accept, workflow.Email)
		wantCode(t, err, workflow.EGone)
		if issued(t, s, r.ID, "nw1-ovh") {
			t.Error("a token was issued to an approver who already answered")
		}
		if _, err := s.Resend(ctx, r.ID, "ad1-ovh"); err != nil {
			t.Fatal(err)
		}

		// All tokens die when the request leaves pending.
		admin := token(t, s, r.ID, "ad1-ovh", "resend")
		if _, err := s.Cancel(ctx, r.ID, "ad1-ovh", workflow.API); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.LookupToken(ctx, admin)
		wantCode(t, err, workflow.EGone)
		_, err = s.Decide(ctx, admin, workflow.Accept, workflow.Web)
		wantCode(t, err, workflow.EGone)
		if issued(t, s, r.ID, "ad1-ovh") {
			t.Error("a token was issued for an email of a cancelled request")
		}

		// A dead token still reads as gone, not unknown, a request_ttl later.
		c.Advance(ttl + ttl/2)
		if b.Mini != nil {
			b.Mini.FastForward(ttl + ttl/2)
		}
		_, _, err = s.LookupToken(ctx, admin)
		wantCode(t, err, workflow.EGone)
	})
}

func TestExpiry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		tok := token(t, s, r.ID, "nw1-ovh", "validation")
		c.Advance(ttl)

		// Past its expiry it reads as expired before any sweep...
		got, err := s.Get(ctx, r.ID)
		if err != nil || got.Status != workflow.Expired {
			t.Fatalf("get after ttl = %v, %v; want expired", got.Status, err)
		}
		if l, _ := s.List(ctx, "ad1-ovh", "pending"); len(l) != 0 {
			t.Errorf("listed as pending after expiry: %d", len(l))
		}
		// ...and no decision can be made on it.
		_, err = s.Decide(ctx, tok, workflow.Accept, workflow.Web)
		wantCode(t, err, workflow.EGone)
		// The decision attempt itself ended it, with the emails.
		got, _ = s.Get(ctx, r.ID)
		if last := got.History[len(got.History)-1]; last.Event != "expired" {
			t.Errorf("last event = %s, want expired", last.Event)
		}
		res, err := s.Sweep(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if res.Expired != 0 {
			t.Errorf("sweep expired %d already expired requests", res.Expired)
		}
		want := []string{"event expired", "expired ad1-ovh", "expired nw1-ovh", "validation ad1-ovh", "validation nw1-ovh"}
		if diff := strings.Join(mails(t, b, r.ID), ","); diff != strings.Join(want, ",") {
			t.Errorf("emails = %s, want %s", diff, strings.Join(want, ","))
		}
		// A new request may now take the role.
		created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw2-ovh"})
	})
}

func TestSweepExpiresAndReminds(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		tokA := token(t, s, r.ID, "ad1-ovh", "validation")
		token(t, s, r.ID, "nw1-ovh", "validation")
		if _, err := s.Decide(ctx, tokA, workflow.Accept, workflow.Web); err != nil {
			t.Fatal(err)
		}
		count := func(kind string) int {
			n := 0
			for _, m := range mails(t, b, r.ID) {
				if strings.HasPrefix(m, kind+" ") {
					n++
				}
			}
			return n
		}
		res, _ := s.Sweep(ctx, 100)
		if res.Reminded != 0 {
			t.Fatalf("reminded before remind_after: %+v", res)
		}
		for i := 1; i <= 4; i++ {
			c.Advance(remindAfter)
			if _, err := s.Sweep(ctx, 100); err != nil {
				t.Fatal(err)
			}
		}
		// Only the approver who has not answered, at most max_reminders times.
		if got := mails(t, b, r.ID); count("reminder") != 2 || !contains(got, "reminder nw1-ovh") {
			t.Errorf("reminders = %v, want two to nw1-ovh", got)
		}
		c.Advance(ttl)
		res, err := s.Sweep(ctx, 100)
		if err != nil || res.Expired != 1 {
			t.Fatalf("sweep after ttl = %+v, %v; want 1 expired", res, err)
		}
		if got, _ := s.Get(ctx, r.ID); got.Status != workflow.Expired {
			t.Errorf("status = %s, want expired", got.Status)
		}
		if count("expired") != 2 || count("event") != 1 {
			t.Errorf("end emails = %v", mails(t, b, r.ID))
		}
	})
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// A new token revokes the earlier one only once the mail server accepted
// its email: an email refused, given up or never concluded kills nothing,
// and its own token keeps working too (the relay may have taken it
// although its answer was lost), until a later email is recorded.
func TestNewTokenLiveOnlyOnceSent(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		held := deliver(t, s, r.ID)["validation nw1-ovh"]
		live := func(tok string) bool { _, _, err := s.LookupToken(ctx, tok); return err == nil }

		var unsure []string
		for _, fate := range []string{"retry", "bury", "release", "crash"} {
			if _, err := s.Resend(ctx, r.ID, "nw1-ovh"); err != nil {
				t.Fatal(err)
			}
			e := claimOne(t, s, r.ID, "nw1-ovh")
			tok := outboxtest.Issue(t, s, []*workflow.OutboxEntry{e})[0]
			if !live(tok) || !live(held) {
				t.Fatalf("%s: while the email is on its way both tokens must work", fate)
			}
			var err error
			switch fate {
			case "retry":
				err = s.RetryOutbox(ctx, e, s.Now())
			case "bury":
				err = s.BuryOutbox(ctx, e)
			case "release":
				err = s.ReleaseOutbox(ctx, e)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !live(held) || !live(tok) {
				t.Fatalf("%s: held token live %v, the unsure email's token live %v; want both", fate, live(held), live(tok))
			}
			unsure = append(unsure, tok)
			// Clear the outbox for the next round.
			for _, st := range []workflow.OutboxState{workflow.OutboxReady, workflow.OutboxDead} {
				es, _ := s.ListOutbox(ctx, st, 100)
				for _, x := range es {
					_ = s.DropOutboxEntry(ctx, x.Ref())
				}
			}
		}
		// Once a later email is accepted, its token is the one that works.
		if _, err := s.Resend(ctx, r.ID, "nw1-ovh"); err != nil {
			t.Fatal(err)
		}
		newest := deliver(t, s, r.ID)["resend nw1-ovh"]
		if !live(newest) || live(held) {
			t.Errorf("after a sent resend: newest live %v, earlier live %v; want true, false", live(newest), live(held))
		}
		for i, tok := range unsure {
			if live(tok) {
				t.Errorf("the token of unsure email %d still works after a later email was accepted", i)
			}
		}
		got, _ := s.Get(ctx, r.ID)
		if n := countEvents(got, "resent"); n != 1 {
			t.Errorf("history has %d resent events, want 1 (only the email that left)", n)
		}
	})
}

// Every attempt of one email issues a token, and every one of them works
// once the email is recorded as sent: a daemon that died between the
// relay's answer and the record sent a copy whose link the approver may
// use, and the copy the next attempt sends must not revoke it.
func TestEveryCopyOfAnEmailWorks(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		live := func(tok string) bool { _, _, err := s.LookupToken(ctx, tok); return err == nil }
		// First attempt: token issued, email accepted by the relay, then the
		// daemon dies before recording it; its claim lapses.
		first := claimOne(t, s, r.ID, "nw1-ovh")
		copy1 := outboxtest.Issue(t, s, []*workflow.OutboxEntry{first})[0]
		c.Advance(2 * time.Minute)
		// Second attempt, by another daemon, recorded.
		second := claimOne(t, s, r.ID, "nw1-ovh")
		if second.ID != first.ID {
			t.Fatalf("the retried entry is %s, want %s", second.ID, first.ID)
		}
		copy2 := outboxtest.Issue(t, s, []*workflow.OutboxEntry{second})[0]
		if err := s.RecordSent(ctx, second); err != nil {
			t.Fatal(err)
		}
		if !live(copy1) || !live(copy2) {
			t.Fatalf("first copy's token live %v, second's %v; want both", live(copy1), live(copy2))
		}
		// The first daemon, back, cannot record it a second time.
		if err := s.RecordSent(ctx, first); !workflow.IsClaimLost(err) {
			t.Errorf("late record by the first daemon = %v, want a lost claim", err)
		}
		// Deciding with either copy works once; then both are dead.
		if _, err := s.Decide(ctx, copy1, workflow.Accept, workflow.Email); err != nil {
			t.Fatal(err)
		}
		_, err := s.Decide(ctx, copy2, workflow.Accept, workflow.Web)
		wantCode(t, err, workflow.EGone)
	})
}

// claimOne claims the outbox and returns the entry to nic of request id,
// handing the others back.
func claimOne(t *testing.T, s *workflow.Store, id, nic string) *workflow.OutboxEntry {
	t.Helper()
	ctx := context.Background()
	var found *workflow.OutboxEntry
	for n := 0; n < workflow.Shards; n++ {
		es, _, _, err := s.ClaimOutbox(ctx, n, time.Minute, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if found == nil && e.Request == id && e.NIC == nic && e.Kind().CarriesToken() {
				found = e
				continue
			}
			_ = s.ReleaseOutbox(ctx, e)
		}
	}
	if found == nil {
		t.Fatalf("no email to %s queued", nic)
	}
	return found
}

func countEvents(r *workflow.Request, event string) int {
	n := 0
	for _, e := range r.History {
		if e.Event == event {
			n++
		}
	}
	return n
}
