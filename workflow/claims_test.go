package workflow_test

import (
	"context"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

func take(t *testing.T, c *workflow.MessageClaimer, ids ...[]string) []workflow.Claimed {
	t.Helper()
	got, err := c.Take(context.Background(), ids...)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantState(t *testing.T, what string, got workflow.Claimed, state workflow.ClaimState, failures int) {
	t.Helper()
	if got.State != state {
		t.Fatalf("%s: state %v, want %v", what, got.State, state)
	}
	if state == workflow.ClaimMine && got.Claim.Failures() != failures {
		t.Fatalf("%s: %d failed attempts, want %d", what, got.Claim.Failures(), failures)
	}
}

// A claim holds other readers off while its reader's heartbeat renews it,
// and is taken over a lease after the last heartbeat: the attempt of the
// reader that stopped counts as failed. A claim kept after a failed
// attempt is taken at once, its count kept; an outcome is moved only.
func TestMessageClaimLease(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		clk := newClock()
		s := newStore(t, b, clk)
		ctx := context.Background()
		const lease = 10 * time.Second
		a, other := s.MessageClaimer("a", lease), s.MessageClaimer("b", lease)
		msg := []string{"uid:x@h/INBOX:1:7", "mid:m1@example.com"}

		mine := take(t, a, msg)[0]
		wantState(t, "first take", mine, workflow.ClaimMine, 0)
		wantState(t, "while a works", take(t, other, msg)[0], workflow.ClaimBusy, 0)
		for range 3 { // a works for 18 s, beating every 6
			clk.Advance(6 * time.Second)
			if err := a.Renew(ctx); err != nil {
				t.Fatal(err)
			}
			wantState(t, "while a beats", take(t, other, msg)[0], workflow.ClaimBusy, 0)
		}
		clk.Advance(lease) // a stopped beating: it stopped
		took := take(t, other, msg)[0]
		wantState(t, "after a stopped", took, workflow.ClaimMine, 1)
		if err := a.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		wantState(t, "a's late beat does not take it back", take(t, a, msg)[0], workflow.ClaimBusy, 0)

		if err := other.Keep(ctx, took.Claim, true); err != nil { // it panicked
			t.Fatal(err)
		}
		again := take(t, a, msg)[0]
		wantState(t, "kept after a failure", again, workflow.ClaimMine, 2)
		if err := a.Keep(ctx, again.Claim, false); err != nil { // the store failed: not the message's fault
			t.Fatal(err)
		}
		again = take(t, a, msg)[0]
		wantState(t, "kept after a store error", again, workflow.ClaimMine, 2)
		if err := a.Record(ctx, []*workflow.MessageClaim{again.Claim}, []string{"processed"}); err != nil {
			t.Fatal(err)
		}
		wantState(t, "another reader, just after the outcome", take(t, other, msg)[0], workflow.ClaimBusy, 0)
		dup := take(t, other, []string{"uid:x@h/INBOX:1:8", "mid:m1@example.com"})[0]
		if dup.State != workflow.ClaimDone || dup.Outcome != "processed" {
			t.Errorf("another copy of the message: %+v, want done, processed", dup)
		}
		clk.Advance(lease)
		if done := take(t, other, msg)[0]; done.State != workflow.ClaimDone || done.Outcome != "processed" {
			t.Errorf("after the lease: %+v, want done, processed", done)
		}
	})
}

// A batch of messages nobody has seen is claimed in one round trip; two
// copies of one message in a batch are not both the reader's.
func TestMessageClaimBatch(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b, newClock())
		c := s.MessageClaimer("a", time.Minute)
		take(t, c, []string{"uid:warm"}) // a connection made (HELLO), not counted
		trips := &redistest.RoundTrips{}
		b.Client.AddHook(trips)
		var batch [][]string
		for i := range 50 {
			batch = append(batch, []string{"uid:x@h/INBOX:1:" + string(rune('A'+i)), "mid:" + string(rune('A'+i)) + "@example.com"})
		}
		before := trips.N()
		got := take(t, c, batch...)
		if n := trips.N() - before; n != 1 {
			t.Errorf("claiming 50 new messages took %d round trips, want 1", n)
		}
		for _, g := range got {
			wantState(t, "new message", g, workflow.ClaimMine, 0)
		}
		if c.Held() != 51 {
			t.Errorf("holds %d claims, want 51", c.Held())
		}
		var claims []*workflow.MessageClaim
		var outcomes []string
		for _, g := range got {
			claims, outcomes = append(claims, g.Claim), append(outcomes, "processed")
		}
		before = trips.N()
		if err := c.Record(context.Background(), claims, outcomes); err != nil {
			t.Fatal(err)
		}
		if n := trips.N() - before; n != 1 || c.Held() != 1 {
			t.Errorf("recording 50 outcomes took %d round trips and left %d claims held, want 1 and 1", n, c.Held())
		}
		twins := take(t, c, []string{"uid:x@h/INBOX:1:100", "mid:twin@example.com"}, []string{"uid:x@h/INBOX:1:101", "mid:twin@example.com"})
		wantState(t, "first copy", twins[0], workflow.ClaimMine, 0)
		wantState(t, "second copy", twins[1], workflow.ClaimBusy, 0)
		// The second copy left nothing behind: once the first is kept,
		// either may be taken.
		if err := c.Keep(context.Background(), twins[0].Claim, false); err != nil {
			t.Fatal(err)
		}
		wantState(t, "second copy later", take(t, c, []string{"uid:x@h/INBOX:1:101", "mid:twin@example.com"})[0], workflow.ClaimMine, 0)
	})
}

// The store being down claims nothing, and leaves nothing claimed.
func TestMessageClaimStoreDown(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b, newClock())
	c := s.MessageClaimer("a", time.Minute)
	b.Mini.SetError("LOADING Redis is loading the dataset in memory")
	if _, err := c.Take(context.Background(), []string{"uid:1", "mid:1"}); workflow.ErrorCode(err) != workflow.EUnavailable {
		t.Fatalf("Take with the store down: %v, want unavailable", err)
	}
	b.Mini.SetError("")
	wantState(t, "after the outage", take(t, c, []string{"uid:1", "mid:1"})[0], workflow.ClaimMine, 0)
}
