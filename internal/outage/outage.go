// Package outage tells an operator when a dependency (the SMTP relay, the
// mailbox, Redis, the webhook endpoint) goes away and comes back: one
// line when the outage starts, one at intervals while it lasts, and one
// when it ends, each saying for how long.
//
// A tracker logs its "still unreachable" lines either at the failures
// its owner reports (the first failure at least one interval after the
// previous line), or, while its Run goroutine runs, on its own clock:
// exactly one interval apart whatever the callers' pace. Trackers shared
// by several components (the daemon's Redis tracker) are run.
package outage

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Tracker follows the state of one dependency. Its methods may be called
// from several goroutines.
type Tracker struct {
	what  string
	log   *slog.Logger
	every time.Duration
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	// down mirrors the state for OK's fast path: a success while up
	// takes no lock.
	isDown  atomic.Bool
	clocked atomic.Bool
	wake    chan struct{}

	mu       sync.Mutex
	down     bool
	since    time.Time
	lastLog  time.Time
	fails    int
	lastErr  error
	attrs    []any
	onChange func(up bool)
}

// slack is how early a "still unreachable" line may come at a failure:
// callers that fail on a timer of the same interval (a tick every 30 s)
// would otherwise miss each line by a hair and log every other interval.
const slack = 10 // a tenth of the interval

// New returns a tracker of the dependency named what (e.g. "smtp"),
// logging to log, repeating its "still down" line every interval.
func New(what string, log *slog.Logger, every time.Duration) *Tracker {
	if every <= 0 {
		every = 30 * time.Second
	}
	return &Tracker{what: what, log: log, every: every, now: time.Now, after: time.After,
		wake: make(chan struct{}, 1)}
}

// Name is the dependency's name.
func (t *Tracker) Name() string { return t.what }

// OnChange sets a function called (outside the tracker's lock) each time
// the dependency goes down or comes back, e.g. to set a metric.
func (t *Tracker) OnChange(f func(up bool)) {
	t.mu.Lock()
	t.onChange = f
	t.mu.Unlock()
}

// Fail records a failure to reach the dependency. The first one starts an
// outage (logged at once); later ones are logged every interval, unless
// Run logs them on its own clock. attrs add what an operator wants to
// know (e.g. the emails waiting); the latest are kept for the next line.
func (t *Tracker) Fail(err error, attrs ...any) {
	t.mu.Lock()
	now := t.now()
	t.fails++
	t.lastErr, t.attrs = err, attrs
	start := !t.down
	if start {
		t.down, t.since = true, now
		t.isDown.Store(true)
	}
	logNow := start || (!t.clocked.Load() && now.Sub(t.lastLog) >= t.every-t.every/slack)
	if logNow {
		t.lastLog = now
	}
	since, fails, onChange := t.since, t.fails, t.onChange
	t.mu.Unlock()
	if start {
		select {
		case t.wake <- struct{}{}:
		default:
		}
		if onChange != nil {
			onChange(false)
		}
	}
	if !logNow {
		return
	}
	if start {
		t.log.Warn(t.what+" unreachable: outage started", append([]any{"dependency", t.what, "err", err}, attrs...)...)
		return
	}
	t.still(now, since, fails, err, attrs)
}

// still logs the "still unreachable" line.
func (t *Tracker) still(now, since time.Time, fails int, err error, attrs []any) {
	args := append([]any{"dependency", t.what, "err", err}, attrs...)
	args = append(args, "down_for", now.Sub(since).Round(time.Second).String(), "failures", fails)
	t.log.Warn(t.what+" still unreachable", args...)
}

// OK records a success: an outage under way ends (logged with its length).
func (t *Tracker) OK(attrs ...any) {
	if !t.isDown.Load() {
		return
	}
	t.mu.Lock()
	if !t.down {
		t.mu.Unlock()
		return
	}
	since, fails, onChange := t.since, t.fails, t.onChange
	t.down, t.fails, t.lastErr, t.attrs = false, 0, nil, nil
	t.isDown.Store(false)
	t.mu.Unlock()
	if onChange != nil {
		onChange(true)
	}
	args := append([]any{"dependency", t.what, "down_for", t.now().Sub(since).Round(time.Millisecond).String(),
		"failures", fails}, attrs...)
	t.log.Info(t.what+" reachable again: outage ended", args...)
}

// Down reports whether an outage is under way.
func (t *Tracker) Down() bool { return t.isDown.Load() }

// Failures returns the failures of the outage under way (0 when up).
func (t *Tracker) Failures() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fails
}

// Run logs the "still unreachable" line of an outage under way every
// interval on its own clock, until ctx ends; meanwhile Fail logs only the
// start of an outage. It returns nil when ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	t.clocked.Store(true)
	defer t.clocked.Store(false)
	for {
		t.mu.Lock()
		down, next := t.down, t.lastLog.Add(t.every)
		t.mu.Unlock()
		var due <-chan time.Time
		if down {
			due = t.after(max(next.Sub(t.now()), 0))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.wake:
		case <-due:
			t.tick()
		}
	}
}

// tick logs the "still" line if the outage is still under way and an
// interval has passed since the last line.
func (t *Tracker) tick() {
	t.mu.Lock()
	now := t.now()
	if !t.down || now.Sub(t.lastLog) < t.every-t.every/slack {
		t.mu.Unlock()
		return
	}
	t.lastLog = now
	since, fails, err, attrs := t.since, t.fails, t.lastErr, t.attrs
	t.mu.Unlock()
	t.still(now, since, fails, err, attrs)
}
