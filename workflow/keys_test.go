package workflow_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"
)

// Every script touches only the keys its call declares in KEYS: each one
// runs here as a Redis user allowed those keys alone, through every
// transition, the outbox's moves, the sweeps and the events stream. (A
// Redis Cluster requires it of scripts; ACL key patterns and replicas rely
// on it too.)
func TestScriptsTouchOnlyDeclaredKeys(t *testing.T) {
	b := redistest.Real(t)
	check := redistest.DeclaredKeysOnly(t, b)
	ctx := context.Background()

	// The check itself fails a script that reaches an undeclared key.
	bad := redis.NewScript(`return redis.call('GET', KEYS[1] .. ':other')`)
	if err := bad.Run(ctx, b.Client, []string{b.Prefix + ":a"}).Err(); err == nil {
		t.Fatal("a script reading an undeclared key ran: the check checks nothing")
	}

	c := newClock()
	s := newStore(t, b, c)
	seed(t, s)
	// Applied, then disputed by the previous holder.
	r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	for _, tok := range deliver(t, s, r.ID) {
		if _, err := s.Decide(ctx, tok, workflow.Accept, workflow.Web); err != nil {
			t.Fatal(err)
		}
	}
	rep := token(t, s, r.ID, "te1-ovh", workflow.KindInformed)
	if _, _, err := s.Dispute(ctx, rep, workflow.Web); err != nil {
		t.Fatal(err)
	}
	// Declined.
	r2 := created(t, s, "hosting-9", "ad1-ovh", map[string]string{"tech": "nw2-ovh"})
	if _, err := s.Decide(ctx, token(t, s, r2.ID, "nw2-ovh", workflow.KindValidation), workflow.Decline, workflow.Email); err != nil {
		t.Fatal(err)
	}
	// Resent, bounced, cancelled.
	r3 := created(t, s, "vps-1.ovh.net", "at1-ovh", map[string]string{"tech": "nw2-ovh"})
	if _, err := s.Resend(ctx, r3.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkUndeliverable(ctx, r3.ID, "nw2-ovh"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(ctx, r3.ID, "at1-ovh", workflow.API); err != nil {
		t.Fatal(err)
	}
	// A billing change: approved, then applied once payments are checked.
	r4 := created(t, s, "hosting-9", "ad1-ovh", map[string]string{"billing": "nw1-ovh"})
	for _, tok := range deliver(t, s, r4.ID) {
		if _, err := s.Decide(ctx, tok, workflow.Accept, workflow.Web); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Get(ctx, r4.ID); got.Status != workflow.Applied {
		t.Errorf("billing change is %s, want applied", got.Status)
	}
	// Reminded, then expired by sweeps; a due entry naming no request set aside.
	created(t, s, "overdue.org", "ad1-ovh", map[string]string{"tech": "nw2-ovh"})
	if err := b.Client.ZAdd(ctx, workflow.Keys{Prefix: b.Prefix}.DueApply(0), redis.Z{Member: "aaaaaaaaaaaaaaaaa"}).Err(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{remindAfter, ttl} {
		c.Advance(d)
		if _, err := s.Sweep(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	// The outbox's own moves: a reply not understood queued, claims,
	// heartbeats, a retry, a burial, a revival, a drop, the purge.
	if err := s.Enqueue(ctx, workflow.Message{Kinds: []workflow.Kind{workflow.KindNotUnderstood}, To: "x@example.net", Reason: "no_token"}); err != nil {
		t.Fatal(err)
	}
	es := outboxtest.Claim(t, s, func(*workflow.OutboxEntry) bool { return true })
	if len(es) < 3 {
		t.Fatalf("%d entries claimed, want several", len(es))
	}
	if _, err := s.Heartbeat(ctx, es, time.Minute); err != nil {
		t.Fatal(err)
	}
	outboxtest.Issue(t, s, es)
	if err := s.RetryOutbox(ctx, es[0], c.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.BuryOutbox(ctx, es[1]); err != nil {
		t.Fatal(err)
	}
	outboxtest.Settle(t, s, es[2:], workflow.ActSent)
	if err := s.RetryDead(ctx, es[1].Ref()); err != nil {
		t.Fatal(err)
	}
	if err := s.DropOutboxEntry(ctx, es[0].Ref()); err != nil {
		t.Fatal(err)
	}
	dead := outboxtest.Claim(t, s, func(*workflow.OutboxEntry) bool { return true })
	outboxtest.Settle(t, s, dead, workflow.ActBury)
	c.Advance(workflow.DeadRetention + time.Hour)
	if res, err := s.Sweep(ctx, 100); err != nil || res.Purged == 0 {
		t.Errorf("purge: %+v, %v", res, err)
	}
	if _, err := s.ScanOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.PublishEvent(ctx, "1/1", "applied", r.ID, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if n := check.Scripts.Load(); n < 40 {
		t.Errorf("only %d script calls checked", n)
	}
	t.Logf("%d script calls ran with their declared keys only", check.Scripts.Load())
}
