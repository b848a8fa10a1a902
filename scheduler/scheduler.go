// Package scheduler runs contactd's periodic work on a cron schedule:
// reminders, expiry, approved requests left behind, and whatever other
// sweeps the daemon registers. A lease in Redis, one per tick and named
// by the tick's scheduled time, makes each tick run on one daemon only,
// however many share the store.
package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"contactd/config"
	"contactd/internal/outage"
	"contactd/metrics"
	"contactd/workflow"
)

// Job is one piece of periodic work. It runs while the tick's lease is
// held; stillHeld reports whether it still is, so a long job can stop
// early once another daemon may have taken over.
type Job struct {
	Name string
	Run  func(ctx context.Context, stillHeld func() bool) error
}

// Locker hands out the lease of a tick (workflow.Store does): it takes
// the lock name for ttl unless anybody, this owner included, holds it.
type Locker interface {
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, func() bool, error)
}

// Params configure a Scheduler.
type Params struct {
	Locker Locker
	Spec   string // cron spec, e.g. "@every 30s" (schedule.sweep)
	Jobs   []Job
	Logger *slog.Logger
	// Owner names this daemon in the lease; empty means a random name.
	Owner string
	// Metrics receives the jobs' durations and panics (default: a
	// registry of its own).
	Metrics *metrics.Metrics
	// Redis follows the store's outages; the daemon shares one among its
	// components (default: the scheduler's own).
	Redis *outage.Tracker
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Scheduler runs the jobs on every tick of the spec.
type Scheduler struct {
	p        Params
	schedule cron.Schedule
	ticks    sync.Map // job name -> *atomic.Int64 runs on this daemon
}

// parser accepts the five-field cron syntax and the @every/@hourly forms;
// it is config's, so `config check` accepts the specs the scheduler does.
var parser = config.CronParser

// New checks the spec and returns a scheduler.
func New(p Params) (*Scheduler, error) {
	sched, err := parser.Parse(p.Spec)
	if err != nil {
		return nil, fmt.Errorf("schedule.sweep: %w", err)
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	p.Metrics = metrics.Or(p.Metrics)
	if p.Owner == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		p.Owner = hex.EncodeToString(b)
	}
	if p.Redis == nil {
		p.Redis = outage.New("redis", p.Logger, 30*time.Second)
	}
	for _, j := range p.Jobs {
		p.Metrics.SweepSeconds.WithLabelValues(j.Name) // exported from the start
	}
	return &Scheduler{p: p, schedule: aligned(sched)}, nil
}

// aligned makes an "@every D" schedule tick at the multiples of D since
// the Unix epoch (@every 30s: at :00 and :30 of each minute), so that
// every daemon sharing the store ticks at the same times, whenever it
// started, and names each tick's lease alike. Cron specs are aligned on
// the clock already.
func aligned(s cron.Schedule) cron.Schedule {
	if every, ok := s.(cron.ConstantDelaySchedule); ok {
		return epochSchedule(every.Delay)
	}
	return s
}

// epochSchedule ticks at the multiples of a duration since the epoch.
type epochSchedule time.Duration

// Next returns the first multiple after t.
func (e epochSchedule) Next(t time.Time) time.Time {
	d := time.Duration(e)
	return t.Truncate(d).Add(d)
}

// Next is the first tick after t.
func (s *Scheduler) Next(t time.Time) time.Time { return s.schedule.Next(t) }

// Lease is how long the lease of the tick at is kept: until the next
// tick (at least a second), so that a daemon whose clock lags behind
// cannot run the same tick again, and no tick's lease outlives the next
// tick's start. The next tick has a lease of its own.
func (s *Scheduler) Lease(at time.Time) time.Duration {
	return max(s.schedule.Next(at).Sub(at), time.Second)
}

// leaseName names the lease of the tick scheduled at.
func leaseName(at time.Time) string { return "sweep:" + strconv.FormatInt(at.Unix(), 10) }

// Run runs the jobs on schedule until ctx is cancelled, waiting for a
// running tick to end. A tick that overruns the next makes it skipped.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		at := s.Next(s.p.Now())
		t := time.NewTimer(at.Sub(s.p.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		s.Tick(ctx, at)
	}
}

// Tick runs every job once for the tick scheduled at, if this daemon wins
// that tick's lease, and reports whether it did. A job that panics is
// logged and counted; the other jobs still run and the daemon stays up.
func (s *Scheduler) Tick(ctx context.Context, at time.Time) bool {
	won, stillHeld, err := s.p.Locker.TryLock(ctx, leaseName(at), s.p.Owner, s.Lease(at))
	if err != nil {
		if ctx.Err() == nil && workflow.ErrorCode(err) != workflow.EUnavailable {
			s.p.Logger.Warn("scheduler: cannot take the tick's lease; tick skipped", "tick", at, "err", err)
		}
		s.p.Redis.Fail(err, "tick", "skipped")
		return false
	}
	s.p.Redis.OK()
	if !won {
		return false
	}
	for _, j := range s.p.Jobs {
		if ctx.Err() != nil || !stillHeld() {
			s.p.Logger.Warn("scheduler: lease lost, tick cut short", "job", j.Name)
			break
		}
		start := time.Now()
		err := s.runJob(ctx, j, stillHeld)
		s.p.Metrics.SweepSeconds.WithLabelValues(j.Name).Observe(time.Since(start).Seconds())
		n, _ := s.ticks.LoadOrStore(j.Name, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		if err != nil && ctx.Err() == nil {
			s.p.Logger.Warn("scheduler: job failed", "job", j.Name, "err", err)
		}
	}
	return true
}

// runJob runs one job, turning a panic into an error.
func (s *Scheduler) runJob(ctx context.Context, j Job, stillHeld func() bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.p.Metrics.Panics.WithLabelValues("scheduler").Inc()
			s.p.Logger.Error("scheduler: job panicked; the daemon goes on", "job", j.Name, "panic", fmt.Sprint(r),
				"stack", string(debug.Stack()))
			err = fmt.Errorf("scheduler: job %s panicked: %v", j.Name, r)
		}
	}()
	return j.Run(ctx, stillHeld)
}

// SweepJob is the workflow's own sweep: reminders due, expiry, approved
// requests left behind. limit bounds the entries of each kind per shard
// and tick.
func SweepJob(st *workflow.Store, log *slog.Logger, limit int64) Job {
	return Job{Name: "requests", Run: func(ctx context.Context, _ func() bool) error {
		res, err := st.Sweep(ctx, limit)
		if err != nil {
			return err
		}
		if res != (workflow.SweepResult{}) {
			log.Info("sweep", "expired", res.Expired, "reminded", res.Reminded, "applied", res.Applied, "failed", res.Failed,
				"quarantined", res.Quarantined, "errors", res.Errors, "dead_purged", res.Purged)
		}
		return nil
	}}
}

// Runs reports how many times job ran on this scheduler.
func (s *Scheduler) Runs(job string) int64 {
	if n, ok := s.ticks.Load(job); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}
