package scheduler_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/metrics"
	"contactd/scheduler"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func counting(n *atomic.Int64) scheduler.Job {
	return scheduler.Job{Name: "count", Run: func(context.Context, func() bool) error { n.Add(1); return nil }}
}

// TestOneDaemonPerTick: two daemons sharing one Redis; within a tick only
// the first to ask runs the jobs, and the next tick is free again.
// store opens a workflow store on b.
func store(t *testing.T, b redistest.Backend) *workflow.Store {
	t.Helper()
	st, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestOneDaemonPerTick(t *testing.T) {
	b := redistest.Mini(t)
	var runs atomic.Int64
	mk := func(owner string) *scheduler.Scheduler {
		s, err := scheduler.New(scheduler.Params{Locker: store(t, b),
			Spec: "@every 10s", Jobs: []scheduler.Job{counting(&runs)}, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, c := mk("a"), mk("c")
	ctx := context.Background()
	if !a.Tick(ctx) {
		t.Fatal("first daemon did not get the tick")
	}
	if c.Tick(ctx) || a.Tick(ctx) {
		t.Fatal("a second run in the same tick")
	}
	b.Mini.FastForward(9 * time.Second) // the lease is 9/10 of the gap
	if !c.Tick(ctx) {
		t.Fatal("the next tick was not free")
	}
	if got := runs.Load(); got != 2 {
		t.Errorf("jobs ran %d times, want 2", got)
	}
	if a.Runs("count") != 1 || c.Runs("count") != 1 {
		t.Errorf("runs per daemon: %d, %d", a.Runs("count"), c.Runs("count"))
	}
}

func TestBadSpec(t *testing.T) {
	_, err := scheduler.New(scheduler.Params{Spec: "every now and then"})
	if err == nil {
		t.Fatal("bad spec accepted")
	}
}

func TestLease(t *testing.T) {
	for spec, want := range map[string]time.Duration{"@every 30s": 27 * time.Second, "*/5 * * * *": 270 * time.Second, "@hourly": 54 * time.Minute} {
		sched, err := cronParse(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := scheduler.Lease(sched, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); got != want {
			t.Errorf("lease of %q = %v, want %v", spec, got, want)
		}
	}
}

// TestRemindAndExpireOnSchedule runs the real scheduler with durations of
// seconds: a request gets its reminders, then expires, with no other call.
func TestRemindAndExpireOnSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a few seconds")
	}
	b := redistest.Mini(t)
	st, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`,
		RequestTTL: 3 * time.Second, RemindAfter: time.Second, MaxReminders: 1, ReportWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := st.Import(ctx, []byte("contacts:\n  - {nic: ad1-ovh, email: a@example.com}\n  - {nic: nw1-ovh, email: n@example.com}\nservices:\n  - {id: a.example, admin: ad1-ovh, tech: ad1-ovh, billing: ad1-ovh}\n")); err != nil {
		t.Fatal(err)
	}
	r, err := st.Create(ctx, workflow.Ask{Service: "a.example", Requester: "ad1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scheduler.New(scheduler.Params{Locker: store(t, b), Spec: "@every 1s",
		Jobs: []scheduler.Job{scheduler.SweepJob(st, discard(), 100)}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = sc.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	var got *workflow.Request
	for time.Now().Before(deadline) {
		b.Mini.FastForward(time.Second) // let leases lapse as real time passes
		got, _ = st.Get(ctx, r.ID)
		if len(got.History) > 0 && got.History[len(got.History)-1].Event == "expired" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	<-done
	reminders := 0
	for _, a := range got.Approvals {
		reminders += a.Reminders
	}
	if got.Status != workflow.Expired || got.History[len(got.History)-1].Event != "expired" {
		t.Fatalf("status %s, history %v: the sweep did not expire it", got.Status, got.History)
	}
	if reminders != 2 {
		t.Errorf("reminders queued = %d, want one per approver", reminders)
	}
}

// A job that panics is logged and counted; the other jobs of the tick
// still run, and so do later ticks.
func TestPanickingJobDoesNotStopTheDaemon(t *testing.T) {
	b := redistest.Mini(t)
	var runs atomic.Int64
	boom := scheduler.Job{Name: "boom", Run: func(context.Context, func() bool) error { panic("bad record") }}
	met := metrics.New()
	s, err := scheduler.New(scheduler.Params{Locker: store(t, b), Spec: "@every 1s", Metrics: met,
		Jobs: []scheduler.Job{boom, counting(&runs)}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Tick(context.Background()) {
		t.Fatal("the tick did not run")
	}
	if runs.Load() != 1 || s.Runs("boom") != 1 {
		t.Errorf("after a panicking job: count ran %d times, boom %d; want 1 and 1", runs.Load(), s.Runs("boom"))
	}
	if d := testutil.ToFloat64(met.Panics.WithLabelValues("scheduler")); d != 1 {
		t.Errorf("contactd_panics_recovered_total{component=scheduler} grew by %v, want 1", d)
	}
}
