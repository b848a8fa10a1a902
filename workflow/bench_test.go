package workflow_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

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
		for _, nic := range r.Approvers() {
			tok, _, err := s.IssueToken(ctx, r.ID, nic, workflow.KindValidation)
			if err != nil {
				return err
			}
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
			ap := r.Approvers()
			t1, _, _ := s.IssueToken(ctx, r.ID, ap[0], "validation")
			t2, _, _ := s.IssueToken(ctx, r.ID, ap[1], "validation")
			issue += hook.Reset()
			if _, err := s.Decide(ctx, t1, workflow.Accept, workflow.Web); err != nil {
				b.Fatal(err)
			}
			accept += hook.Reset() - 1 // the final read of the request is for the caller
			if _, err := s.Decide(ctx, t2, workflow.Accept, workflow.Web); err != nil {
				b.Fatal(err)
			}
			final += hook.Reset() - 1
		}
	}
	n := float64(2 * b.N)
	b.ReportMetric(float64(create)/n, "create-rt")
	b.ReportMetric(float64(issue)/n/2, "token-rt")
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

// TestMemoryPerPendingRequest reports the Redis bytes a pending request with
// two approvers and their live tokens holds: MEMORY USAGE of its own keys
// plus what it adds to the shared sorted sets and hashes, measured as the
// growth of used_memory over many requests. It asserts nothing about speed;
// it fails only if the memory is far above the 2 KiB aim.
func TestMemoryPerPendingRequest(t *testing.T) {
	be := redistest.Real(t)
	ctx := context.Background()
	s, err := workflow.NewStore(be.Client, workflow.Options{KeyPrefix: be.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`,
		RequestTTL: ttl, RemindAfter: remindAfter, MaxReminders: 2, ReportWindow: ttl})
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
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
	used := func() int64 {
		info, err := be.Client.Info(ctx, "memory").Result()
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
	before := used()
	var own int64
	for i := 0; i < n; i++ {
		r, err := s.Create(ctx, workflow.Ask{Service: fmt.Sprintf("m%d.example", i), Requester: fmt.Sprintf("ad%d-ovh", i),
			Changes: map[string]string{"tech": fmt.Sprintf("nw%d-ovh", i)}}, workflow.API)
		if err != nil {
			t.Fatal(err)
		}
		shard := workflow.ShardOf(r.Service)
		k := workflow.Keys{Prefix: be.Prefix}
		keys := []string{k.Request(shard, r.ID)}
		for _, nic := range r.Approvers() {
			tok, _, err := s.IssueToken(ctx, r.ID, nic, workflow.KindValidation)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k.Token(shard, workflow.HashToken(tok)))
		}
		for _, key := range keys {
			m, err := be.Client.MemoryUsage(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			own += m
		}
	}
	// The outbox entries are the mailer's and leave once sent: drop them.
	for sh := 0; sh < workflow.Shards; sh++ {
		k := workflow.Keys{Prefix: be.Prefix}
		be.Client.Del(ctx, k.Outbox(sh), k.OutboxReady(sh))
	}
	growth := (used() - before) / n
	t.Logf("per pending request with two approvers: own keys %d bytes (MEMORY USAGE), total growth %d bytes (allocator, incl. indexes)", own/n, growth)
	if own/n > 4096 {
		t.Errorf("a pending request takes %d bytes, far above the 2 KiB aim", own/n)
	}
}
