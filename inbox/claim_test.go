package inbox

import (
	"context"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

func TestClaim(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	newClaimer := func(owner string) *claimer {
		return &claimer{rdb: b.Client, keys: workflow.Keys{Prefix: b.Prefix}, owner: owner, now: clock,
			lease: time.Minute, ttl: time.Hour}
	}
	a, other := newClaimer("a"), newClaimer("b")
	ids := []string{"uid:1", "mid:m1"}

	cl, state, _, retry, err := a.take(ctx, ids)
	if err != nil || state != claimMine || retry {
		t.Fatalf("first take = %v, %v, %v; want mine", state, retry, err)
	}
	if _, state, _, _, _ = other.take(ctx, ids); state != claimBusy {
		t.Fatalf("take of a claimed message = %v, want busy", state)
	}
	// Another copy of the same message (same Message-ID, other UID): busy,
	// and its UID must not stay claimed.
	if _, state, _, _, _ = other.take(ctx, []string{"uid:2", "mid:m1"}); state != claimBusy {
		t.Fatalf("take of a copy = %v, want busy", state)
	}
	if n := b.Client.Exists(ctx, a.keys.InboxClaim("uid:2")).Val(); n != 0 {
		t.Error("a busy take left its other key claimed")
	}
	if err := a.record(ctx, cl, Processed); err != nil {
		t.Fatal(err)
	}
	// The same message seen by another reader right after: left to a.
	if _, state, _, _, _ = other.take(ctx, ids); state != claimBusy {
		t.Errorf("take just after a recorded outcome by another = %v, want busy", state)
	}
	// By a itself (its move failed): move it now.
	if _, state, o, _, _ := a.take(ctx, ids); state != claimDone || o != Processed {
		t.Errorf("take by the recorder = %v %q, want done processed", state, o)
	}
	// The copy: done at once, whoever reads it.
	if _, state, o, _, _ := other.take(ctx, []string{"uid:2", "mid:m1"}); state != claimDone || o != Processed {
		t.Errorf("take of a copy after the outcome = %v %q, want done processed", state, o)
	}
	// After the lease, anyone moves it.
	now = now.Add(2 * time.Minute)
	if _, state, _, _, _ = other.take(ctx, ids); state != claimDone {
		t.Errorf("take after the lease = %v, want done", state)
	}

	// A claim whose worker stopped is taken over after the lease, as a retry.
	if _, state, _, _, _ = a.take(ctx, []string{"uid:3"}); state != claimMine {
		t.Fatal("claim uid:3")
	}
	if _, state, _, _, _ = other.take(ctx, []string{"uid:3"}); state != claimBusy {
		t.Error("a fresh claim must hold others off")
	}
	now = now.Add(2 * time.Minute)
	if _, state, _, retry, _ := other.take(ctx, []string{"uid:3"}); state != claimMine || !retry {
		t.Errorf("take of a stale claim = %v retry %v, want mine as a retry", state, retry)
	}
}
