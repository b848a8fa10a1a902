package workflow_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"
)

// handoverBenchYAML is a directory where ag1-ovh administers n services
// whose technical contacts are three previous holders (te1..te3-ovh, in
// turn), and nw1-ovh the one ag1-ovh hands them to: two approvers, three
// people told.
func handoverBenchYAML(n int) string {
	var b strings.Builder
	b.WriteString("contacts:\n  - {nic: ag1-ovh, email: agency@example.com, name: Agency}\n")
	b.WriteString("  - {nic: nw1-ovh, email: new1@example.net, name: Nora New}\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "  - {nic: te%d-ovh, email: tech%d@example.com}\n", i, i)
	}
	b.WriteString("services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: site%05d.example, kind: domain, admin: ag1-ovh, tech: te%d-ovh, billing: ag1-ovh}\n", i, i%3+1)
	}
	return b.String()
}

// BenchmarkHandover measures a hand-over of 100, 1,000 and 10,000
// services between two approvers, with three previous holders, against
// the real Redis of CONTACTD_TEST_REDIS (a server of its own: INFO
// commandstats and used_memory count every client). One op is one whole
// hand-over on a fresh directory:
//
//   - create-ms: CreateHandover; apply-ms: from the second accept to every
//     request applied (the accept, which carries out a hand-over of up to
//     1,000 services itself; beyond, the outbox job a mailer runs);
//   - raw-create-ms, raw-apply-ms: the same writes, replayed as plain
//     pipelined commands (HSET, SET, ZADD...) to other keys, measured in
//     the same run; create-ratio and apply-ratio are raw ÷ contactd;
//   - cmds/service: Redis commands from creation to applied (inner
//     commands of scripts included), validation emails' tokens included;
//   - B/pending-service: used_memory growth from before the creation to
//     the hand-over pending with its validation emails sent, per service;
//   - emails: the emails it sends in all (9: 2 validation, 2 recorded,
//     2 applied, 3 informed).
//
// Run: go test ./workflow -run '^$' -bench BenchmarkHandover -benchtime 3x
func BenchmarkHandover(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			var sum handoverFigures
			for i := 0; i < b.N; i++ {
				f := oneHandover(b, n)
				sum.add(f)
			}
			per := float64(b.N)
			b.ReportMetric(sum.create.Seconds()*1000/per, "create-ms")
			b.ReportMetric(sum.rawCreate.Seconds()*1000/per, "raw-create-ms")
			b.ReportMetric(sum.rawCreate.Seconds()/sum.create.Seconds(), "create-ratio")
			b.ReportMetric(sum.apply.Seconds()*1000/per, "apply-ms")
			b.ReportMetric(sum.rawApply.Seconds()*1000/per, "raw-apply-ms")
			b.ReportMetric(sum.rawApply.Seconds()/sum.apply.Seconds(), "apply-ratio")
			b.ReportMetric(float64(sum.cmds)/per/float64(n), "cmds/service")
			b.ReportMetric(float64(sum.bytes)/per/float64(n), "B/pending-service")
			b.ReportMetric(float64(sum.emails)/per, "emails")
			b.ReportMetric(0, "ns/op")
		})
	}
}

type handoverFigures struct {
	create, rawCreate, apply, rawApply time.Duration
	cmds, bytes                        int64
	emails                             int
}

func (f *handoverFigures) add(g handoverFigures) {
	f.create += g.create
	f.rawCreate += g.rawCreate
	f.apply += g.apply
	f.rawApply += g.rawApply
	f.cmds += g.cmds
	f.bytes += g.bytes
	f.emails += g.emails
}

// oneHandover runs one hand-over of n services on a fresh prefix and
// measures it; the timer runs only around contactd's own calls.
func oneHandover(b *testing.B, n int) handoverFigures {
	b.StopTimer()
	ctx := context.Background()
	be := redistest.Real(b)
	s, err := workflow.NewStore(be.Client, workflow.Options{KeyPrefix: be.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`,
		RequestTTL: ttl, RemindAfter: remindAfter, MaxReminders: 2, ReportWindow: ttl})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Import(ctx, []byte(handoverBenchYAML(n))); err != nil {
		b.Fatal(err)
	}
	var f handoverFigures
	// counted runs a step of contactd's and adds its commands to f.cmds.
	counted := func(step func()) {
		before := redistest.CommandStats(b, be.Client)
		step()
		f.cmds += commandsSince(b, be.Client, before)
	}
	before := snapshotKeys(b, be)
	mem0 := usedMemory(b, be.Client)

	var h *workflow.Handover
	counted(func() {
		b.StartTimer()
		t0 := time.Now()
		h, err = s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API, "")
		f.create = time.Since(t0)
		b.StopTimer()
	})
	if err != nil || len(h.Requests) != n {
		b.Fatalf("create: %v", err)
	}
	f.rawCreate = replayDelta(b, be, before, snapshotKeys(b, be))

	var toks map[string]string
	counted(func() {
		toks = outboxtest.Deliver(b, s, outboxtest.Of(h.ID, "", workflow.KindValidation))
		if _, err := s.Decide(ctx, toks["validation ag1-ovh"], workflow.Accept, workflow.Web); err != nil {
			b.Fatal(err)
		}
	})
	f.emails = len(toks)
	f.bytes = usedMemory(b, be.Client) - mem0
	decided := snapshotKeys(b, be)

	counted(func() {
		b.StartTimer()
		t0 := time.Now()
		if _, err := s.Decide(ctx, toks["validation nw1-ovh"], workflow.Accept, workflow.Web); err != nil {
			b.Fatal(err)
		}
		f.apply = time.Since(t0)
		b.StopTimer()
		// A hand-over the accept did not carry out itself leaves its job
		// to a mailer: claimed as a mailer claims it (not timed), then run.
		if job := claimJob(b, s, h.ID); job != nil {
			b.StartTimer()
			t0 = time.Now()
			if err := s.RunJob(ctx, job); !workflow.IsJobSettled(err) {
				b.Fatalf("job: %v", err)
			}
			f.apply += time.Since(t0)
			b.StopTimer()
		}
	})
	f.rawApply = replayDelta(b, be, decided, snapshotKeys(b, be))

	got, err := s.GetHandover(ctx, h.ID)
	if err != nil || got.Status != "applied" {
		b.Fatalf("hand-over %+v, %v", got, err)
	}
	// The emails that follow, each entry's kinds one email each.
	for _, st := range []workflow.OutboxState{workflow.OutboxReady, workflow.OutboxClaimed} {
		es, err := s.ListOutbox(ctx, st, 100000)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range es {
			if e.Handover == h.ID && e.Kind() != workflow.KindJob {
				f.emails += len(e.Kinds)
			}
		}
	}
	dropKeys(b, be)
	return f
}

// claimJob claims the outbox entries of every shard, keeps the job of
// hand-over id (nil if none is left) and hands the others back.
func claimJob(b *testing.B, s *workflow.Store, id string) *workflow.OutboxEntry {
	ctx := context.Background()
	var job *workflow.OutboxEntry
	for sh := 0; sh < workflow.Shards; sh++ {
		es, _, _, err := s.ClaimOutbox(ctx, sh, time.Minute, 100000)
		if err != nil {
			b.Fatal(err)
		}
		var back []workflow.Settlement
		for _, e := range es {
			if e.Kind() == workflow.KindJob && e.Handover == id {
				job = e
				continue
			}
			back = append(back, workflow.Settlement{Entry: e, Action: workflow.ActRelease})
		}
		if len(back) > 0 {
			if _, err := s.Settle(ctx, back); err != nil {
				b.Fatal(err)
			}
		}
	}
	return job
}

// keyState is one key's type, value and expiry.
type keyState struct {
	typ  string
	str  string
	hash map[string]string
	set  map[string]bool
	zset map[string]float64
	list []string
	xs   []redis.XMessage
	ttl  time.Duration
}

// snapshotKeys reads every key under the backend's prefix.
func snapshotKeys(b *testing.B, be redistest.Backend) map[string]keyState {
	ctx := context.Background()
	keys, err := be.Keys(ctx)
	if err != nil {
		b.Fatal(err)
	}
	out := make(map[string]keyState, len(keys))
	for from := 0; from < len(keys); from += 1000 {
		chunk := keys[from:min(from+1000, len(keys))]
		pipe := be.Client.Pipeline()
		types := make([]*redis.StatusCmd, len(chunk))
		for i, k := range chunk {
			types[i] = pipe.Type(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		pipe = be.Client.Pipeline()
		vals := make([]redis.Cmder, len(chunk))
		ttls := make([]*redis.DurationCmd, len(chunk))
		for i, k := range chunk {
			switch types[i].Val() {
			case "string":
				vals[i] = pipe.Get(ctx, k)
			case "hash":
				vals[i] = pipe.HGetAll(ctx, k)
			case "set":
				vals[i] = pipe.SMembers(ctx, k)
			case "zset":
				vals[i] = pipe.ZRangeWithScores(ctx, k, 0, -1)
			case "list":
				vals[i] = pipe.LRange(ctx, k, 0, -1)
			case "stream":
				vals[i] = pipe.XRange(ctx, k, "-", "+")
			default:
				b.Fatalf("key %s has type %s", k, types[i].Val())
			}
			ttls[i] = pipe.PTTL(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			b.Fatal(err)
		}
		for i, k := range chunk {
			st := keyState{typ: types[i].Val(), ttl: ttls[i].Val()}
			switch c := vals[i].(type) {
			case *redis.StringCmd:
				st.str = c.Val()
			case *redis.MapStringStringCmd:
				st.hash = c.Val()
			case *redis.StringSliceCmd:
				if st.typ == "set" {
					st.set = map[string]bool{}
					for _, m := range c.Val() {
						st.set[m] = true
					}
				} else {
					st.list = c.Val()
				}
			case *redis.ZSliceCmd:
				st.zset = map[string]float64{}
				for _, z := range c.Val() {
					st.zset[z.Member.(string)] = z.Score
				}
			case *redis.XMessageSliceCmd:
				st.xs = c.Val()
			}
			out[k] = st
		}
	}
	return out
}

// replayDelta writes what changed from before to after, with plain
// commands pipelined a thousand at a time, to the same keys under another
// prefix, and returns how long that took: the raw Redis work of the
// change, for comparison. The copies are deleted afterwards.
func replayDelta(b *testing.B, be redistest.Backend, before, after map[string]keyState) time.Duration {
	ctx := context.Background()
	raw := be.Prefix + "raw"
	rename := func(k string) string { return strings.Replace(k, be.Prefix, raw, 1) }
	var cmds [][]any
	for k, a := range after {
		old, had := before[k]
		rk := rename(k)
		switch a.typ {
		case "string":
			if !had || old.str != a.str {
				cmds = append(cmds, []any{"SET", rk, a.str})
			}
		case "hash":
			args := []any{"HSET", rk}
			for f, v := range a.hash {
				if ov, ok := old.hash[f]; !ok || ov != v {
					args = append(args, f, v)
				}
			}
			if len(args) > 2 {
				cmds = append(cmds, args)
			}
		case "set":
			args := []any{"SADD", rk}
			for m := range a.set {
				if !old.set[m] {
					args = append(args, m)
				}
			}
			if len(args) > 2 {
				cmds = append(cmds, args)
			}
		case "zset":
			args := []any{"ZADD", rk}
			for m, sc := range a.zset {
				if os, ok := old.zset[m]; !ok || os != sc {
					args = append(args, sc, m)
				}
			}
			if len(args) > 2 {
				cmds = append(cmds, args)
			}
		case "list":
			if len(a.list) > len(old.list) {
				args := []any{"RPUSH", rk}
				for _, v := range a.list[len(old.list):] {
					args = append(args, v)
				}
				cmds = append(cmds, args)
			}
		case "stream":
			for _, x := range a.xs[min(len(old.xs), len(a.xs)):] {
				args := []any{"XADD", rk, "*"}
				for f, v := range x.Values {
					args = append(args, f, v)
				}
				cmds = append(cmds, args)
			}
		}
		if !had && a.ttl > 0 {
			cmds = append(cmds, []any{"PEXPIRE", rk, a.ttl.Milliseconds()})
		}
	}
	// What was removed: members and fields of the keys still there, then
	// the keys gone.
	for k, o := range before {
		a, still := after[k]
		rk := rename(k)
		switch {
		case !still:
			cmds = append(cmds, []any{"DEL", rk})
		case o.typ == "hash":
			args := []any{"HDEL", rk}
			for f := range o.hash {
				if _, ok := a.hash[f]; !ok {
					args = append(args, f)
				}
			}
			if len(args) > 2 {
				cmds = append(cmds, args)
			}
		case o.typ == "zset":
			args := []any{"ZREM", rk}
			for m := range o.zset {
				if _, ok := a.zset[m]; !ok {
					args = append(args, m)
				}
			}
			if len(args) > 2 {
				cmds = append(cmds, args)
			}
		case o.typ == "set":
			args := []any{"SREM", rk}
			for m := range o.set {
				if !a.set[m] {
					args = append(args, m)
				}
			}
			if len(args) > 2 {
				cmds = append(cmds, args)
			}
		}
	}
	t0 := time.Now()
	for from := 0; from < len(cmds); from += 1000 {
		pipe := be.Client.Pipeline()
		for _, c := range cmds[from:min(from+1000, len(cmds))] {
			pipe.Do(ctx, c...)
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			b.Fatalf("replay: %v", err)
		}
	}
	took := time.Since(t0)
	// The copies' removal is not part of the figure.
	keys, err := be.Client.Keys(ctx, "*"+raw+"*").Result()
	if err != nil {
		b.Fatal(err)
	}
	for from := 0; from < len(keys); from += 1000 {
		if err := be.Client.Unlink(ctx, keys[from:min(from+1000, len(keys))]...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	return took
}

// dropKeys removes the backend's keys once measured.
func dropKeys(b *testing.B, be redistest.Backend) {
	ctx := context.Background()
	keys, err := be.Keys(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for from := 0; from < len(keys); from += 1000 {
		if err := be.Client.Unlink(ctx, keys[from:min(from+1000, len(keys))]...).Err(); err != nil {
			b.Fatal(err)
		}
	}
}
