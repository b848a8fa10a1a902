package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

func TestEmailFaults(t *testing.T) {
	ws := lifecycleWants("sa1-ovh", "st1-ovh", "sn1-ovh")
	all := func() []received {
		var out []received
		for _, w := range ws {
			out = append(out, received{kind: w.kind, rcpt: w.rcpt})
		}
		return out
	}
	tests := []struct {
		name      string
		got       []received
		atLeast   bool
		wantFault []string
		wantDups  int
	}{
		{"the seven", all(), false, nil, 0},
		{"one missing", all()[1:], false, []string{"no validation email to sa1@example.com"}, 0},
		{"a copy", append(all(), received{kind: "validation", rcpt: "sn1@example.com"}), false,
			[]string{"2 validation emails to sn1@example.com, want 1"}, 1},
		{"a copy, when killing", append(all(), received{kind: "validation", rcpt: "sn1@example.com"}), true, nil, 1},
		{"applied to the one replaced", append(all(), received{kind: "applied", rcpt: "st1@example.com"}), true,
			[]string{"1 unexpected applied emails to st1@example.com"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			faults, dups := emailFaults("r1", ws, tc.got, tc.atLeast)
			var got []string
			for _, f := range faults {
				if f.Check != checkEmails {
					t.Errorf("fault %q is of check %q", f.Detail, f.Check)
				}
				got = append(got, strings.TrimPrefix(f.Detail, "request r1: "))
			}
			if diff := cmp.Diff(tc.wantFault, got); diff != "" {
				t.Errorf("faults (-want +got):\n%s", diff)
			}
			if dups != tc.wantDups {
				t.Errorf("dups = %d, want %d", dups, tc.wantDups)
			}
		})
	}
}

func TestCountApplied(t *testing.T) {
	msgs := []redis.XMessage{
		{ID: "1-0", Values: map[string]any{"event": "applied", "request": "a", "json": `{"id":"a","status":"applied"}`}},
		{ID: "2-0", Values: map[string]any{"event": "expired", "request": "b", "json": `{"id":"b","status":"expired"}`}},
		{ID: "3-0", Values: map[string]any{"json": `{"id":"a","status":"applied"}`}},
		{ID: "4-0", Values: map[string]any{"event": "applied", "request": "c"}},
		{ID: "5-0", Values: map[string]any{"event": "disputed", "request": "a", "json": `{"id":"a","status":"applied"}`}},
	}
	got := map[string]int{}
	countApplied(msgs, got)
	// The disputed report of an applied request carries its JSON, whose
	// status is applied: it must not count as a second application.
	want := map[string]int{"a": 2, "c": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("applied counts (-want +got):\n%s", diff)
	}
}

func TestRequestFaults(t *testing.T) {
	r := &apiRequest{ID: "r", Status: "applied"}
	r.History = append(r.History, struct {
		Event string `json:"event"`
		NIC   string `json:"nic"`
	}{Event: "applied"})
	if f := requestFaults(r); len(f) != 0 {
		t.Errorf("applied once: %v", f)
	}
	r.History = append(r.History, r.History[0])
	if f := requestFaults(r); len(f) != 1 || !strings.Contains(f[0].Detail, "2 applied events") {
		t.Errorf("applied twice: %v", f)
	}
	r.Status, r.History = "approved", nil
	if f := requestFaults(r); len(f) != 2 {
		t.Errorf("approved, not applied: %v", f)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := percentile(d, 50); got != 100*time.Millisecond {
		t.Errorf("p50 = %s", got)
	}
	if got := percentile(d, 99); got != 198*time.Millisecond {
		t.Errorf("p99 = %s", got)
	}
	if got := percentile(d[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one = %s", got)
	}
}

func TestCommandCounts(t *testing.T) {
	before := map[string]int64{"get": 10, "evalsha": 5, "info": 3}
	after := map[string]int64{"get": 30, "evalsha": 9, "info": 9, "hset": 8}
	if got := totalCommands(before, after); got != 32 {
		t.Errorf("total = %d, want 32 (INFO left out)", got)
	}
	got := byCommand(before, after, 4)
	want := []commandCount{{"get", 5}, {"evalsha", 1}, {"hset", 2}}
	want[1], want[2] = want[2], want[1]
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("by command (-want +got):\n%s", diff)
	}
}
