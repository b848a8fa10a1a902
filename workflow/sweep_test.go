package workflow_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/redis/go-redis/v9"
)

// Two daemons sweeping the same due reminders at the same moment send one
// reminder per approver.
func TestOverlappingSweepsRemindOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		c := newClock()
		s1, s2 := newStore(t, b, c), newStore(t, b, c)
		seed(t, s1)
		var ids []string
		for _, svc := range []string{"example.com", "hosting-9", "vps-1.ovh.net"} {
			holder := map[string]string{"example.com": "ad1-ovh", "hosting-9": "ad1-ovh", "vps-1.ovh.net": "at1-ovh"}[svc]
			ids = append(ids, created(t, s1, svc, holder, map[string]string{"tech": "nw1-ovh"}).ID)
		}
		c.Advance(remindAfter + time.Minute)
		for round := 0; round < 5; round++ {
			var wg sync.WaitGroup
			for _, s := range []*workflow.Store{s1, s2, s1, s2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.Sweep(context.Background(), 100); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
		}
		for _, id := range ids {
			var got []string
			for _, m := range mails(t, b, id) {
				if len(m) > 8 && m[:8] == "reminder" {
					got = append(got, m)
				}
			}
			if len(got) != 2 {
				t.Errorf("request %s: reminders queued %v, want one per approver", id, got)
			}
		}
	})
}

// A due entry naming no request is set aside, logged and counted; the
// sweep goes on with the other items and shards.
func TestSweepQuarantinesBadItems(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		k := workflow.Keys{Prefix: b.Prefix}
		// A request id that names nothing, in a shard swept before r's.
		for n := 0; n < workflow.Shards; n++ {
			ghost := fmt.Sprintf("%c%s", "abcdefghijklmnopqrstuvwxyz234567"[n], "aaaaaaaaaaaaaaaa")
			if err := b.Client.ZAdd(ctx, k.DueApply(n), redis.Z{Member: ghost}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Client.ZAdd(ctx, k.DueRemind(0), redis.Z{Member: "garbage"}).Err(); err != nil {
			t.Fatal(err)
		}
		c.Advance(remindAfter + time.Minute)
		res, err := s.Sweep(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if res.Quarantined != workflow.Shards+1 || res.Reminded != 2 {
			t.Errorf("sweep = %+v; want %d quarantined and the 2 reminders of %s", res, workflow.Shards+1, r.ID)
		}
		if n := b.Client.ZCard(ctx, k.Quarantine(0)).Val(); n != 2 {
			t.Errorf("quarantine of shard 0 holds %d items, want 2", n)
		}
		// They do not come back.
		res, err = s.Sweep(ctx, 100)
		if err != nil || res.Quarantined != 0 {
			t.Errorf("second sweep = %+v, %v; want nothing quarantined again", res, err)
		}
	})
}

// Dead outbox entries are forgotten DeadRetention after they died.
func TestDeadEntriesExpire(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	c := newClock()
	s := newStore(t, b, c)
	seed(t, s)
	created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	for n := 0; n < workflow.Shards; n++ {
		es, _, _, err := s.ClaimOutbox(ctx, n, time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if err := s.BuryOutbox(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	dead := func() int {
		es, err := s.ListOutbox(ctx, workflow.OutboxDead, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	if dead() != 2 {
		t.Fatalf("%d dead entries, want 2", dead())
	}
	c.Advance(workflow.DeadRetention - time.Minute)
	if res, _ := s.Sweep(ctx, 100); res.Purged != 0 || dead() != 2 {
		t.Errorf("before DeadRetention: purged %d, %d left; want 0, 2", res.Purged, dead())
	}
	c.Advance(2 * time.Minute)
	if res, _ := s.Sweep(ctx, 100); res.Purged != 2 || dead() != 0 {
		t.Errorf("after DeadRetention: purged %d, %d left; want 2, 0", res.Purged, dead())
	}
}

// A claim not renewed lapses and the next claim takes the entry back; a
// renewed one holds.
func TestClaimLeaseAndHeartbeat(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		shard := strings.IndexByte("abcdefghijklmnopqrstuvwxyz234567", r.ID[0])
		mine, _, _, err := s.ClaimOutbox(ctx, shard, 15*time.Second, 100)
		if err != nil || len(mine) != 2 {
			t.Fatalf("claim = %d entries, %v; want the 2 validation emails", len(mine), err)
		}
		c.Advance(10 * time.Second)
		if lost, err := s.Heartbeat(ctx, mine[:1], 15*time.Second); err != nil || len(lost) != 0 {
			t.Fatalf("heartbeat of a held claim: %d lost, %v", len(lost), err)
		}
		c.Advance(10 * time.Second) // the first claim renewed, the second lapsed
		other, _, back, err := s.ClaimOutbox(ctx, shard, 15*time.Second, 100)
		if err != nil {
			t.Fatal(err)
		}
		if back != 1 || len(other) != 1 || other[0].ID != mine[1].ID {
			t.Fatalf("second claimer: %d taken back, %d claimed; want the one lapsed entry", back, len(other))
		}
		// The first daemon's late outcome for the lapsed entry is refused,
		// and so is its heartbeat: the entry is the other daemon's now.
		if err := s.RetryOutbox(ctx, mine[1], c.Now()); !workflow.IsClaimLost(err) {
			t.Fatalf("late retry by the old owner = %v, want a lost claim", err)
		}
		if lost, err := s.Heartbeat(ctx, mine, 15*time.Second); err != nil || len(lost) != 1 || lost[0] != mine[1] {
			t.Fatalf("old owner's heartbeat: lost %v, %v; want the lapsed entry", lost, err)
		}
		if err := s.RecordSent(ctx, mine[0]); err != nil {
			t.Errorf("record of the renewed claim: %v", err)
		}
		if err := s.RecordSent(ctx, other[0]); err != nil {
			t.Errorf("record by the new owner: %v", err)
		}
	})
}

// The events stream keeps about EventsMaxLen entries.
func TestEventsStreamCapped(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix, EventsMaxLen: 10})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i++ {
			if err := s.PublishEvent(ctx, fmt.Sprintf("%d/%d", i%32, i), "applied", fmt.Sprint(i), []byte("{}")); err != nil {
				t.Fatal(err)
			}
		}
		// Approximate trimming drops whole nodes (100 entries by default).
		if n := b.Client.XLen(ctx, workflow.Keys{Prefix: b.Prefix}.Events()).Val(); n > 200 {
			t.Errorf("events stream holds %d entries, want about 10", n)
		}
	})
}

// An outbox entry's event is appended once, however many times the entry
// is tried (a daemon killed between the append and its record).
func TestEventPublishedOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := s.PublishEvent(ctx, "7/12", "applied", "kabcdefghijklmnop", []byte("{}")); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PublishEvent(ctx, "7/13", "disputed", "kabcdefghijklmnop", []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if n := b.Client.XLen(ctx, workflow.Keys{Prefix: b.Prefix}.Events()).Val(); n != 2 {
			t.Errorf("events stream holds %d entries, want 2 (one per outbox entry)", n)
		}
	})
}

// The tally of requests by status follows every transition.
func TestCountByStatus(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		a := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		created(t, s, "hosting-9", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
		x := created(t, s, "vps-1.ovh.net", "at1-ovh", map[string]string{"tech": "nw2-ovh"})
		if _, err := s.Cancel(ctx, x.ID, "at1-ovh", workflow.API); err != nil {
			t.Fatal(err)
		}
		for _, tok := range deliver(t, s, a.ID) {
			if _, err := s.Decide(ctx, tok, workflow.Accept, workflow.Web); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(ttl + time.Minute)
		if _, err := s.Sweep(ctx, 100); err != nil {
			t.Fatal(err)
		}
		got, err := s.CountByStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[workflow.Status]int64{workflow.Pending: 0, workflow.Approved: 0, workflow.Applied: 1,
			workflow.Declined: 0, workflow.Expired: 1, workflow.Cancelled: 1, workflow.Failed: 0}
		for st, n := range want {
			if got[st] != n {
				t.Errorf("%s: %d, want %d (all: %v)", st, got[st], n, got)
			}
		}
	})
}
