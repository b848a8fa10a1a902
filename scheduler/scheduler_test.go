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

// store opens a workflow store on b.
func store(t *testing.T, b redistest.Backend) *workflow.Store {
	t.Helper()
	st, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newScheduler(t *testing.T, b redistest.Backend, spec, owner string, jobs ...scheduler.Job) *scheduler.Scheduler {
	t.Helper()
	s, err := scheduler.New(scheduler.Params{Locker: store(t, b), Spec: spec, Jobs: jobs, Owner: owner, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOneDaemonPerTick: two daemons sharing one Redis; each tick runs on
// the first to ask, once, and the next tick is free at once.
func TestOneDaemonPerTick(t *testing.T) {
	b := redistest.Mini(t)
	var runs atomic.Int64
	a, c := newScheduler(t, b, "@every 10s", "a", counting(&runs)), newScheduler(t, b, "@every 10s", "c", counting(&runs))
	ctx := context.Background()
	tick := a.Next(time.Now())
	if !a.Tick(ctx, tick) {
		t.Fatal("first daemon did not get the tick")
	}
	if c.Tick(ctx, tick) || a.Tick(ctx, tick) {
		t.Fatal("a second run in the same tick")
	}
	if !c.Tick(ctx, a.Next(tick)) {
		t.Fatal("the next tick was not free")
	}
	if got := runs.Load(); got != 2 {
		t.Errorf("jobs ran %d times, want 2", got)
	}
	if a.Runs("count") != 1 || c.Runs("count") != 1 {
		t.Errorf("runs per daemon: %d, %d", a.Runs("count"), c.Runs("count"))
	}
}

// With a cron spec whose ticks are unevenly spaced, every tick runs: a
// lease sized on the first gap (started at 10:00, 9:00 -> 17:00 is 16 h)
// must not swallow the next one.
func TestEveryTickOfAnUnevenSpecRuns(t *testing.T) {
	b := redistest.Mini(t)
	var runs atomic.Int64
	s := newScheduler(t, b, "0 9,17 * * *", "a", counting(&runs))
	ctx := context.Background()
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.Local)
	var ticks []time.Time
	for i := 0; i < 4; i++ {
		at = s.Next(at)
		ticks = append(ticks, at)
		if !s.Tick(ctx, at) {
			t.Errorf("tick %s did not run", at.Format(time.DateTime))
		}
	}
	if got := runs.Load(); got != 4 {
		t.Errorf("four ticks ran the job %d times", got)
	}
	want := []string{"2026-03-02 17:00:00", "2026-03-03 09:00:00", "2026-03-03 17:00:00", "2026-03-04 09:00:00"}
	for i, tk := range ticks {
		if got := tk.Format(time.DateTime); got != want[i] {
			t.Errorf("tick %d at %s, want %s", i, got, want[i])
		}
	}
}

// Daemons started at different moments tick at the same times with
// "@every", so they share each tick's lease.
func TestEveryIsAlignedAcrossDaemons(t *testing.T) {
	b := redistest.Mini(t)
	a, c := newScheduler(t, b, "@every 30s", "a"), newScheduler(t, b, "@every 30s", "c")
	t0 := time.Date(2026, 3, 2, 9, 0, 7, 0, time.UTC)
	if got, want := a.Next(t0), time.Date(2026, 3, 2, 9, 0, 30, 0, time.UTC); !got.Equal(want) {
		t.Errorf("next tick after 9:00:07 = %s, want %s", got, want)
	}
	if x, y := a.Next(t0), c.Next(t0.Add(19*time.Second)); !x.Equal(y) {
		t.Errorf("daemons started 19 s apart tick at %s and %s", x, y)
	}
}

func TestBadSpec(t *testing.T) {
	_, err := scheduler.New(scheduler.Params{Spec: "every now and then"})
	if err == nil {
		t.Fatal("bad spec accepted")
	}
}

// A tick's lease lasts until the next tick, whatever the gaps.
func TestLease(t *testing.T) {
	b := redistest.Mini(t)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.Local)
	for spec, want := range map[string]time.Duration{"@every 30s": 30 * time.Second, "*/5 * * * *": 5 * time.Minute,
		"@hourly": time.Hour, "0 9,17 * * *": 8 * time.Hour} {
		if got := newScheduler(t, b, spec, "a").Lease(at); got != want {
			t.Errorf("lease of %q at 9:00 = %v, want %v", spec, got, want)
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
	if !s.Tick(context.Background(), s.Next(time.Now())) {
		t.Fatal("the tick did not run")
	}
	if runs.Load() != 1 || s.Runs("boom") != 1 {
		t.Errorf("after a panicking job: count ran %d times, boom %d; want 1 and 1", runs.Load(), s.Runs("boom"))
	}
	if d := testutil.ToFloat64(met.Panics.WithLabelValues("scheduler")); d != 1 {
		t.Errorf("contactd_panics_recovered_total{component=scheduler} grew by %v, want 1", d)
	}
}
