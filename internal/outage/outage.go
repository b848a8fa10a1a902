// Package outage tells an operator when a dependency (the SMTP relay, the
// mailbox, Redis, the webhook endpoint) goes away and comes back: one
// line when the outage starts, one at intervals while it lasts, and one
// when it ends, each saying for how long.
package outage

import (
	"log/slog"
	"sync"
	"time"
)

// Tracker follows the state of one dependency. Its methods may be called
// from several goroutines.
type Tracker struct {
	what  string
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu       sync.Mutex
	down     bool
	since    time.Time
	lastLog  time.Time
	fails    int
	onChange func(up bool)
}

// New returns a tracker of the dependency named what (e.g. "smtp"),
// logging to log, repeating its "still down" line every interval.
func New(what string, log *slog.Logger, every time.Duration) *Tracker {
	if every <= 0 {
		every = 30 * time.Second
	}
	return &Tracker{what: what, log: log, every: every, now: time.Now}
}

// OnChange sets a function called (outside the tracker's lock) each time
// the dependency goes down or comes back, e.g. to set a metric.
func (t *Tracker) OnChange(f func(up bool)) { t.onChange = f }

// Fail records a failure to reach the dependency. The first one starts an
// outage (logged at once); later ones are logged every interval. attrs
// add what an operator wants to know (e.g. the emails waiting).
func (t *Tracker) Fail(err error, attrs ...any) {
	t.mu.Lock()
	now := t.now()
	t.fails++
	start := !t.down
	if start {
		t.down, t.since = true, now
	}
	logNow := start || now.Sub(t.lastLog) >= t.every
	if logNow {
		t.lastLog = now
	}
	since, fails := t.since, t.fails
	t.mu.Unlock()
	if start && t.onChange != nil {
		t.onChange(false)
	}
	if !logNow {
		return
	}
	args := append([]any{"dependency", t.what, "err", err}, attrs...)
	if start {
		t.log.Warn(t.what+" unreachable: outage started", args...)
		return
	}
	args = append(args, "down_for", now.Sub(since).Round(time.Second).String(), "failures", fails)
	t.log.Warn(t.what+" still unreachable", args...)
}

// OK records a success: an outage under way ends (logged with its length).
func (t *Tracker) OK(attrs ...any) {
	t.mu.Lock()
	if !t.down {
		t.mu.Unlock()
		return
	}
	since, fails := t.since, t.fails
	t.down, t.fails = false, 0
	t.mu.Unlock()
	if t.onChange != nil {
		t.onChange(true)
	}
	args := append([]any{"dependency", t.what, "down_for", t.now().Sub(since).Round(time.Millisecond).String(),
		"failures", fails}, attrs...)
	t.log.Info(t.what+" reachable again: outage ended", args...)
}

// Down reports whether an outage is under way.
func (t *Tracker) Down() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.down
}

// Failures returns the failures of the outage under way (0 when up).
func (t *Tracker) Failures() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fails
}
