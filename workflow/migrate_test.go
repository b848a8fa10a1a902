package workflow_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// A request the previous version stored (its token hashed the old way,
// its open role in a key of its own, its emails in the old outbox) goes on
// after the migration: its approver's link works, the role stays taken,
// and its queued email is sent.
func TestMigrateRequestsFromThePreviousLayout(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		seed(t, s)
		k := workflow.Keys{Prefix: b.Prefix}
		svc := "example.com"
		shard := workflow.ShardOf(svc)
		id := string("abcdefghijklmnopqrstuvwxyz234567"[shard]) + "aaaaaaaaaaaaaaaa"
		token := string("abcdefghijklmnopqrstuvwxyz234567"[shard]) + "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		sum := sha256.Sum256([]byte(token))
		oldHash := hex.EncodeToString(sum[:])
		x := c.Now().Add(ttl).UnixMilli()
		p := k.Shard(shard)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		// What the previous version wrote for a pending request whose
		// validation email to nw1-ovh was sent and to ad1-ovh is queued.
		must(b.Client.HSet(ctx, k.Request(shard, id), "svc", svc, "req", "ad1-ovh", "st", "pending", "c", c.Now().UnixMilli(),
			"x", x, "chg", `{"tech":{"from":"te1-ovh","to":"nw1-ovh"}}`, "apv", "ad1-ovh nw1-ovh", "inf", "te1-ovh", "pay", "",
			"n", 2, "s:ad1-ovh", "pending", "r:ad1-ovh", 0, "s:nw1-ovh", "pending", "r:nw1-ovh", 0, "t:nw1-ovh", oldHash).Err())
		must(b.Client.Set(ctx, k.History(shard, id), fmt.Sprintf("%d created ad1-ovh api\n", c.Now().UnixMilli()), 0).Err())
		must(b.Client.HSet(ctx, p+"tok:"+oldHash, "r", id, "n", "nw1-ovh", "k", "v").Err())
		must(b.Client.HSet(ctx, p+"open:"+svc, "tech", id).Err())
		must(b.Client.HSet(ctx, p+"msg:0123", "r", id, "n", "nw1-ovh", "k", "validation").Err())
		must(b.Client.HSet(ctx, p+"outbox", "7", `{"kind":"validation","request":"`+id+`","nic":"ad1-ovh","at":1}`).Err())
		must(b.Client.ZAdd(ctx, p+"outbox:claimed", redis.Z{Score: 1, Member: "7"}).Err())
		must(b.Client.Set(ctx, p+"outbox:seq", 7, 0).Err())

		res, err := s.MigrateRequests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Entries != 1 || res.Tokens != 1 || res.Requests != 1 || res.OpenRoles != 1 || res.DroppedRecord != 1 {
			t.Errorf("migrated %+v", res)
		}
		again, err := s.MigrateRequests(ctx)
		if err != nil || again != (workflow.MigrateResult{}) {
			t.Errorf("a second run: %+v, %v; want nothing", again, err)
		}
		// The link nw1-ovh holds works.
		r, nic, err := s.LookupToken(ctx, token)
		if err != nil || r.ID != id || nic != "nw1-ovh" {
			t.Fatalf("lookup of the old token: %v, %q, %v", r, nic, err)
		}
		// The role stays taken by the request.
		_, err = s.Create(ctx, workflow.Ask{Service: svc, Requester: "ad1-ovh", Changes: map[string]string{"tech": "nw2-ovh"}}, workflow.API)
		wantCode(t, err, workflow.EConflict)
		// Its queued email goes out with a token, which works too.
		toks := deliver(t, s, id)
		if toks["validation ad1-ovh"] == "" {
			t.Fatalf("the queued email was not sent: %v", toks)
		}
		for _, tok := range []string{token, toks["validation ad1-ovh"]} {
			if _, err := s.Decide(ctx, tok, workflow.Accept, workflow.Web); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := s.Get(ctx, id)
		if got.Status != workflow.Applied {
			t.Errorf("status %s, want applied", got.Status)
		}
		if left, _ := b.Keys(ctx); contains(left, p+"outbox") || contains(left, p+"tok:"+oldHash) || contains(left, p+"open:"+svc) {
			t.Errorf("old keys left: %v", left)
		}
	})
}
