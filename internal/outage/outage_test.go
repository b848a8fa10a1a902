package outage

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
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
