package outage

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTrackerLogsStartIntervalsAndEnd(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	tr := New("smtp", log, time.Minute)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tr.now = func() time.Time { return now }
	var changes []bool
	tr.OnChange(func(up bool) { changes = append(changes, up) })

	tr.OK() // nothing to end
	refused := errors.New("connection refused")
	for i := 0; i < 10; i++ { // ten failures in 50 s: one line
		tr.Fail(refused, "emails_waiting", 3)
		now = now.Add(5 * time.Second)
	}
	now = now.Add(20 * time.Second)
	tr.Fail(refused, "emails_waiting", 4) // 70 s in: the "still" line
	now = now.Add(10 * time.Second)
	if !tr.Down() || tr.Failures() != 11 {
		t.Errorf("down = %v, failures = %d; want true, 11", tr.Down(), tr.Failures())
	}
	tr.OK()
	tr.OK()

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=WARN msg="smtp unreachable: outage started" dependency=smtp err="connection refused" emails_waiting=3`,
		`level=WARN msg="smtp still unreachable" dependency=smtp err="connection refused" emails_waiting=4 down_for=1m10s failures=11`,
		`level=INFO msg="smtp reachable again: outage ended" dependency=smtp down_for=1m20s failures=11`,
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, want[i]) {
			t.Errorf("line %d = %s\nwant suffix  %s", i, l, want[i])
		}
	}
	if len(changes) != 2 || changes[0] || !changes[1] {
		t.Errorf("OnChange calls = %v, want [false true]", changes)
	}
}

// A caller failing on a timer of the same length as the interval (the
// scheduler's 30 s tick, a few milliseconds early each time) gets a line
// at each of its failures, not at every other one.
func TestTrackerToleratesCallersOnTheSameInterval(t *testing.T) {
	var buf bytes.Buffer
	tr := New("redis", slog.New(slog.NewTextHandler(&buf, nil)), 30*time.Second)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tr.now = func() time.Time { return now }
	for i := 0; i < 4; i++ {
		tr.Fail(errors.New("refused"))
		now = now.Add(30*time.Second - 20*time.Millisecond)
	}
	if got := strings.Count(buf.String(), "still unreachable"); got != 3 {
		t.Errorf("%d still-unreachable lines for four failures 29.98 s apart, want 3:\n%s", got, buf.String())
	}
}

// fakeClock drives a running tracker: every timer it hands out is the
// one channel the test fires once it has moved the time on.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	timer chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(time.Duration) <-chan time.Time { return c.timer }

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// A running tracker logs "still unreachable" one interval after the
// previous line, however rarely its callers fail, and the failures in
// between log nothing.
func TestRunningTrackerLogsOnItsOwnClock(t *testing.T) {
	var buf syncBuffer
	clock := &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), timer: make(chan time.Time)}
	tr := New("redis", slog.New(slog.NewTextHandler(&buf, nil)), 30*time.Second)
	tr.now, tr.after = clock.Now, clock.After
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tr.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for !tr.clocked.Load() {
		runtime.Gosched()
	}
	still := func(n int) {
		t.Helper()
		clock.timer <- time.Time{}
		for strings.Count(buf.String(), "still unreachable") < n {
			runtime.Gosched()
		}
	}

	tr.Fail(errors.New("dial tcp: connection refused"))
	clock.advance(20 * time.Second)
	tr.Fail(errors.New("i/o timeout"))
	clock.timer <- time.Time{} // 20 s in: too early for a line
	clock.advance(10 * time.Second)
	still(1)
	clock.advance(30 * time.Second)
	still(2)
	clock.advance(5 * time.Second)
	tr.OK()

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=WARN msg="redis unreachable: outage started" dependency=redis err="dial tcp: connection refused"`,
		`level=WARN msg="redis still unreachable" dependency=redis err="i/o timeout" down_for=30s failures=2`,
		`level=WARN msg="redis still unreachable" dependency=redis err="i/o timeout" down_for=1m0s failures=2`,
		`level=INFO msg="redis reachable again: outage ended" dependency=redis down_for=1m5s failures=2`,
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, want[i]) {
			t.Errorf("line %d = %s\nwant suffix  %s", i, l, want[i])
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger on another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
