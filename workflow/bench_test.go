package workflow_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// benchDirectory imports n services, each with an admin, a tech and a
// candidate, so that lifecycles never conflict.
func benchDirectory(b *testing.B, s *workflow.Store, n int) {
	dir := "contacts:\n"
	for i := 0; i < n; i++ {
		dir += fmt.Sprintf("  - {nic: ad%d-ovh, email: a%d@example.com}\n  - {nic: te%d-ovh, email: t%d@example.com}\n  - {nic: nw%d-ovh, email: n%d@example.com}\n", i, i, i, i, i, i)
	}
	dir += "services:\n"
	for i := 0; i < n; i++ {
		dir += fmt.Sprintf("  - {id: s%d.example, admin: ad%d-ovh, tech: te%d-ovh, billing: ad%d-ovh}\n", i, i, i, i)
	}
	if _, err := s.Import(context.Background(), []byte(dir)); err != nil {
		b.Fatal(err)
	}
}

// lifecycle runs one full change on service i: create with two approvers,
// two accepts, applied; then the reverse change, so the service is back.
func lifecycle(ctx context.Context, s *workflow.Store, i int) error {
	for _, c := range [][2]string{{"te", "nw"}, {"nw", "te"}} {
		r, err := s.Create(ctx, workflow.Ask{Service: fmt.Sprintf("s%d.example", i), Requester: fmt.Sprintf("ad%d-ovh", i),
			Changes: map[string]string{"tech": fmt.Sprintf("%s%d-ovh", c[1], i)}}, workflow.API)
		if err != nil {
			return err
		}
		var last *workflow.Outcome
		toks, err := sendValidations(ctx, s, r)
		if err != nil {
			return err
		}
		for _, tok := range toks {
			if last, err = s.Decide(ctx, tok, workflow.Accept, workflow.Web); err != nil {
				return err
			}
		}
		if last.Request.Status != workflow.Applied {
			return fmt.Errorf("%s ended %s", r.ID, last.Request.Status)
		}
	}
	return nil
}

func realStore(b *testing.B) (*workflow.Store, redis.UniversalClient, *redistest.RoundTrips) {
	be := redistest.Real(b)
	hook := &redistest.RoundTrips{}
	be.Client.AddHook(hook)
	s, err := workflow.NewStore(be.Client, workflow.Options{KeyPrefix: be.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`,
		RequestTTL: ttl, RemindAfter: remindAfter, MaxReminders: 2, ReportWindow: ttl})
	if err != nil {
		b.Fatal(err)
	}
	return s, be.Client, hook
}

// BenchmarkLifecycle measures full lifecycles (create with two approvers,
// two tokens issued, two accepts, applied) against the real Redis. One op
// is one lifecycle.
func BenchmarkLifecycle(b *testing.B) {
	for _, workers := range []int{1, 64} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s, rdb, hook := realStore(b)
			benchDirectory(b, s, workers)
			ctx := context.Background()
			b.SetParallelism(1)
			b.ResetTimer()
			hook.Reset()
			var next atomic.Int64
			var done atomic.Int64
			errs := make(chan error, workers)
			sem := make(chan struct{}, workers)
			for w := 0; w < workers; w++ {
				sem <- struct{}{}
			}
			_ = rdb
			for w := 0; w < workers; w++ {
				go func(i int) {
					defer func() { errs <- nil }()
					for next.Add(1) <= int64(b.N) {
						if err := lifecycle(ctx, s, i); err != nil {
							errs <- err
							return
						}
						done.Add(2)
					}
				}(w)
			}
			for w := 0; w < workers; w++ {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// lifecycle runs two changes per op; report per change.
			b.ReportMetric(float64(done.Load())/b.Elapsed().Seconds(), "lifecycles/s")
			b.ReportMetric(float64(hook.N())/float64(done.Load()), "roundtrips/lifecycle")
		})
	}
}

// BenchmarkRoundTrips reports the Redis round trips of each transition.
func BenchmarkRoundTrips(b *testing.B) {
	s, _, hook := realStore(b)
	benchDirectory(b, s, 1)
	ctx := context.Background()
	var create, issue, accept, final int64
	for i := 0; i < b.N; i++ {
		for _, c := range [][2]string{{"te", "nw"}, {"nw", "te"}} {
			hook.Reset()
			r, err := s.Create(ctx, workflow.Ask{Service: "s0.example", Requester: "ad0-ovh", Changes: map[string]string{"tech": c[1] + "0-ovh"}}, workflow.API)
			if err != nil {
				b.Fatal(err)
			}
			create += hook.Reset()
			toks, err := sendValidations(ctx, s, r)
			if err != nil || len(toks) != 2 {
				b.Fatal(err, len(toks))
			}
			issue += hook.Reset()
			if _, err := s.Decide(ctx, toks[0], workflow.Accept, workflow.Web); err != nil {
				b.Fatal(err)
			}
			accept += hook.Reset() - 1 // the final read of the request is for the caller
			if _, err := s.Decide(ctx, toks[1], workflow.Accept, workflow.Web); err != nil {
				b.Fatal(err)
			}
			final += hook.Reset() - 1
		}
	}
	n := float64(2 * b.N)
	b.ReportMetric(float64(create)/n, "create-rt")
	b.ReportMetric(float64(issue)/n, "send-validations-rt")
	b.ReportMetric(float64(accept)/n, "accept-rt")
	b.ReportMetric(float64(final)/n, "accept+apply-rt")
}

// BenchmarkRawRoundTrip is the baseline: one PING per op, same server,
// same concurrency as BenchmarkLifecycle.
func BenchmarkRawRoundTrip(b *testing.B) {
	for _, workers := range []int{1, 64} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			_, rdb, _ := realStore(b)
			ctx := context.Background()
			var next atomic.Int64
			done := make(chan error, workers)
			b.ResetTimer()
			for w := 0; w < workers; w++ {
				go func() {
					for next.Add(1) <= int64(b.N) {
						if err := rdb.Ping(ctx).Err(); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
			}
			for w := 0; w < workers; w++ {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
		})
	}
}

// commandsSince is the number of commands run since before, INFO (the
// measurement's own) left out.
func commandsSince(t testing.TB, rdb redis.UniversalClient, before map[string]int64) int64 {
	var n int64
	for k, v := range redistest.CommandStats(t, rdb) {
		if k != "info" {
			n += v - before[k]
		}
	}
	return n
}

// callCounter counts the commands of each kind of store call.
type callCounter struct {
	t     testing.TB
	rdb   redis.UniversalClient
	cmds  map[string]int64
	calls map[string]int64
}

// do runs f and adds its commands to the call named name.
func (c *callCounter) do(name string, f func() error) {
	before := redistest.CommandStats(c.t, c.rdb)
	if err := f(); err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	c.cmds[name] += commandsSince(c.t, c.rdb, before)
	c.calls[name]++
}

// BenchmarkCallCommands counts, with INFO commandstats on a redis-server
// of its own (any other client's commands would be counted), the Redis
// commands of each store call a full lifecycle makes: the workflow's
// transitions and, done here in the mailer's order without SMTP, each
// email's claim, reads, token and record. One op is one lifecycle; the
// log gives commands per call and calls per lifecycle.
func BenchmarkCallCommands(b *testing.B) {
	s, rdb, _ := realStore(b)
	benchDirectory(b, s, b.N)
	c := &callCounter{t: b, rdb: rdb, cmds: map[string]int64{}, calls: map[string]int64{}}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var r *workflow.Request
		c.do("create", func() (err error) {
			r, err = s.Create(ctx, workflow.Ask{Service: fmt.Sprintf("s%d.example", i), Requester: fmt.Sprintf("ad%d-ovh", i),
				Changes: map[string]string{"tech": fmt.Sprintf("nw%d-ovh", i)}}, workflow.API)
			return err
		})
		toks := mailAll(c, s, r)
		c.do("decide", func() error { _, err := s.Decide(ctx, toks[0], workflow.Accept, workflow.Web); return err })
		mailAll(c, s, r)
		c.do("decide+apply", func() error { _, err := s.Decide(ctx, toks[1], workflow.Accept, workflow.Web); return err })
		mailAll(c, s, r)
	}
	b.StopTimer()
	var all int64
	var lines []string
	for name, n := range c.cmds {
		all += n
		lines = append(lines, fmt.Sprintf("%s: %.1f commands x %.1f calls", name, float64(n)/float64(c.calls[name]), float64(c.calls[name])/float64(b.N)))
	}
	sort.Strings(lines)
	b.ReportMetric(float64(all)/float64(b.N), "cmds/lifecycle")
	b.Logf("per lifecycle (%d): %s", b.N, strings.Join(lines, "; "))
}

// sendValidations does, without SMTP, what the mailer does with the
// validation emails of request r: claims its shard's due entries (a
// batch), issues their tokens in one script and records them as sent in
// another. Other entries of the batch (the drained ones of earlier
// requests) are dropped. It returns the tokens issued, in approver order.
func sendValidations(ctx context.Context, s *workflow.Store, r *workflow.Request) ([]string, error) {
	shard := workflow.ShardOf(r.Service)
	batch, _, _, err := s.ClaimOutbox(ctx, shard, 15*time.Second, 8)
	if err != nil {
		return nil, err
	}
	var asks []*workflow.TokenAsk
	var sts []workflow.Settlement
	for _, e := range batch {
		st := workflow.Settlement{Entry: e, Action: workflow.ActDrop}
		if e.Request == r.ID && e.Kind() == workflow.KindValidation {
			asks = append(asks, &workflow.TokenAsk{Entry: e, Service: r.Service})
			st.Action = workflow.ActSent
		}
		sts = append(sts, st)
	}
	if err := s.IssueTokens(ctx, shard, asks); err != nil {
		return nil, err
	}
	if _, err := s.Settle(ctx, sts); err != nil {
		return nil, err
	}
	sort.Slice(asks, func(i, j int) bool { return asks[i].Entry.NIC < asks[j].Entry.NIC })
	var toks []string
	for _, a := range asks {
		toks = append(toks, a.Token)
	}
	return toks, nil
}

// mailAll does what the mailer does with the due entries of r's shard:
// claim a batch, read the requests and the contacts the emails show (one
// round trip each), issue the tokens the emails carry (one script),
// publish the events (the request read whole, then XADD), and record the
// batch (one script). It returns the validation tokens issued.
func mailAll(c *callCounter, s *workflow.Store, r *workflow.Request) []string {
	ctx := context.Background()
	shard := workflow.ShardOf(r.Service)
	var batch []*workflow.OutboxEntry
	c.do("claim", func() (err error) {
		batch, _, _, err = s.ClaimOutbox(ctx, shard, 15*time.Second, 8)
		return err
	})
	var ids, nics []string
	var asks []*workflow.TokenAsk
	var sts []workflow.Settlement
	for _, e := range batch {
		sts = append(sts, workflow.Settlement{Entry: e, Action: workflow.ActSent})
		switch {
		case e.Kind() == workflow.KindEvent:
			c.do("publish event", func() error {
				req, err := s.Get(ctx, e.Request)
				if err != nil {
					return err
				}
				return s.PublishEvent(ctx, e.Ref(), e.Event, req.ID, []byte(`{}`))
			})
			continue
		case e.Kind().CarriesToken(), e.Kind() == workflow.KindInformed:
			asks = append(asks, &workflow.TokenAsk{Entry: e, Service: r.Service, Report: e.Kind() == workflow.KindInformed})
		}
		ids, nics = append(ids, e.Request), append(nics, e.NIC)
	}
	if len(ids) > 0 {
		reqs := map[string]*workflow.Request{}
		var unread []string
		for _, e := range batch {
			if q := s.Snapshot(&e.Message); q != nil {
				reqs[e.Request] = q
			} else if e.Request != "" && e.Kind() != workflow.KindEvent {
				unread = append(unread, e.Request)
			}
		}
		if len(unread) > 0 {
			c.do("read requests", func() (err error) { reqs, err = s.ReadRequests(ctx, unread); return err })
		}
		for _, q := range reqs {
			nics = append(nics, q.Requester)
			for _, ch := range q.Changes {
				nics = append(nics, ch.From, ch.To)
			}
		}
		c.do("read contacts", func() error { _, err := s.ReadContacts(ctx, nics); return err })
	}
	if len(asks) > 0 {
		c.do("issue tokens", func() error { return s.IssueTokens(ctx, shard, asks) })
	}
	c.do("record sent", func() error { _, err := s.Settle(ctx, sts); return err })
	var toks []string
	for _, a := range asks {
		if a.Entry.Kind() == workflow.KindValidation {
			toks = append(toks, a.Token)
		}
	}
	return toks
}

// TestMemoryPerPendingRequest reports the Redis bytes a pending request
// with two approvers holds once its two validation emails are out: the
// request hash and its history, the approvers' tokens, and its entries
// in the due-time sets, its service's open roles and the per-NIC indexes. Two
// figures: MEMORY USAGE of its own keys, and the growth of used_memory
// over many requests, which also counts its entries in shared keys. It
// fails only if far above the 2 KiB aim.
func TestMemoryPerPendingRequest(t *testing.T) {
	be := redistest.Real(t)
	ctx := context.Background()
	s, err := workflow.NewStore(be.Client, workflow.Options{KeyPrefix: be.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`,
		RequestTTL: ttl, RemindAfter: remindAfter, MaxReminders: 2, ReportWindow: ttl})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	dir := "contacts:\n"
	for i := 0; i < n; i++ {
		dir += fmt.Sprintf("  - {nic: ad%d-ovh, email: a%d@example.com}\n  - {nic: nw%d-ovh, email: n%d@example.com}\n", i, i, i, i)
	}
	dir += "services:\n"
	for i := 0; i < n; i++ {
		dir += fmt.Sprintf("  - {id: m%d.example, admin: ad%d-ovh, tech: ad%d-ovh, billing: ad%d-ovh}\n", i, i, i, i)
	}
	if _, err := s.Import(ctx, []byte(dir)); err != nil {
		t.Fatal(err)
	}
	// The growth also counts each shard's outbox sequence, created by the
	// first request of the shard: 32 small strings, about 2 bytes a request.
	used := func() int64 { return usedMemory(t, be.Client) }
	before := used()
	var own [2]int64
	for i := 0; i < n; i++ {
		m := pendingWithMailSent(t, s, be, i)
		for j := range own {
			own[j] += m[j]
		}
	}
	growth := (used() - before) / n
	all := (own[0] + own[1]) / n
	t.Logf("per pending request with two approvers, validation emails sent: own keys %d bytes (MEMORY USAGE: request and history %d, 2 tokens %d), total growth %d bytes (used_memory over %d requests, shared indexes included)",
		all, own[0]/n, own[1]/n, growth, n)
	if all > 4096 || growth > 4096 {
		t.Errorf("a pending request takes %d bytes (%d in its own keys), far above the 2 KiB aim", growth, all)
	}
}

// pendingWithMailSent creates request i, sends its validation emails as
// the mailer does, and returns the MEMORY USAGE of the keys it owns: the
// request and its history, its tokens.
func pendingWithMailSent(t *testing.T, s *workflow.Store, be redistest.Backend, i int) [2]int64 {
	ctx := context.Background()
	r, err := s.Create(ctx, workflow.Ask{Service: fmt.Sprintf("m%d.example", i), Requester: fmt.Sprintf("ad%d-ovh", i),
		Changes: map[string]string{"tech": fmt.Sprintf("nw%d-ovh", i)}}, workflow.API)
	if err != nil {
		t.Fatal(err)
	}
	shard := workflow.ShardOf(r.Service)
	k := workflow.Keys{Prefix: be.Prefix}
	toks, err := sendValidations(ctx, s, r)
	if err != nil || len(toks) != 2 {
		t.Fatalf("send validations of %s: %d tokens, %v", r.ID, len(toks), err)
	}
	keys := []string{k.Request(shard, r.ID), k.History(shard, r.ID)}
	for _, tok := range toks {
		keys = append(keys, k.Token(shard, workflow.HashToken(tok)))
	}
	if i == 0 {
		enc, _ := be.Client.ObjectEncoding(ctx, keys[0]).Result()
		fields, _ := be.Client.HLen(ctx, keys[0]).Result()
		t.Logf("a request hash: %d fields, encoding %s", fields, enc)
	}
	var own [2]int64
	for j, key := range keys {
		m, err := be.Client.MemoryUsage(ctx, key).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", key, err)
		}
		own[min(j/2, 1)] += m // the request and its history, then the tokens
	}
	return own
}

func usedMemory(t testing.TB, rdb redis.UniversalClient) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}
