// Package scheduler runs contactd's periodic work on a cron schedule:
// reminders, expiry, approved requests left behind, and whatever other
// sweeps the daemon registers. A lease in Redis makes each tick run on one
// daemon only, however many share the store.
package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
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

// Locker hands out the lease of a tick (workflow.Store does).
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
}

// Scheduler runs the jobs on every tick of the spec.
type Scheduler struct {
	p        Params
	redis    *outage.Tracker
	schedule cron.Schedule
	lease    time.Duration
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
	p.Metrics = metrics.Or(p.Metrics)
	if p.Owner == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		p.Owner = hex.EncodeToString(b)
	}
	return &Scheduler{p: p, schedule: sched, lease: Lease(sched, time.Now()),
		redis: outage.New("redis", p.Logger, 30*time.Second)}, nil
}

// Lease is how long a tick's lease lasts: nine tenths of the gap between
// two ticks, so one daemon holds each tick and the lease is gone before
// the next one.
func Lease(s cron.Schedule, from time.Time) time.Duration {
	first := s.Next(from)
	gap := s.Next(first).Sub(first)
	if l := gap * 9 / 10; l > 0 {
		return l
	}
	return time.Second
}

// Run runs the jobs on schedule until ctx is cancelled, then waits for a
// running tick to end.
func (s *Scheduler) Run(ctx context.Context) error {
	c := cron.New(cron.WithParser(parser), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	c.Schedule(s.schedule, cron.FuncJob(func() { s.Tick(ctx) }))
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

// Tick runs every job once if this daemon wins the tick's lease, and
// reports whether it did. A job that panics is logged and counted; the
// other jobs still run and the daemon stays up.
func (s *Scheduler) Tick(ctx context.Context) bool {
	won, stillHeld, err := s.p.Locker.TryLock(ctx, "sweep", s.p.Owner, s.lease)
	if err != nil {
		s.redis.Fail(err, "tick", "skipped")
		return false
	}
	s.redis.OK()
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
