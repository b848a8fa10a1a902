package mailer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// outageDirectory adds three services to the seed, so that three requests
// can be open at once, each with two approvers.
const outageDirectory = `contacts:
  - {nic: ou0-ovh, email: old0@example.com}
  - {nic: ou1-ovh, email: old1@example.com}
  - {nic: ou2-ovh, email: old2@example.com}
  - {nic: on0-ovh, email: new0@example.net}
  - {nic: on1-ovh, email: new1@example.net}
  - {nic: on2-ovh, email: new2@example.net}
services:
  - {id: outage0.example, kind: domain, admin: ad1-ovh, tech: ou0-ovh, billing: bi1-ovh}
  - {id: outage1.example, kind: domain, admin: ad1-ovh, tech: ou1-ovh, billing: bi1-ovh}
  - {id: outage2.example, kind: domain, admin: ad1-ovh, tech: ou2-ovh, billing: bi1-ovh}
`

// TestSMTPOutage stops the relay's listener (connections are refused),
// creates requests while it is away, then brings it back on the same
// port: every waiting validation email must leave within a few seconds of
// its return, not each after its own backoff, and the log must show the
// outage once when it starts, with the emails waiting, and once when it
// ends. The bound (8 s) is the probe's longest wait (ProbeMax, 5 s by
// default) plus room for a loaded machine: a correctness bound, not a
// benchmark.
func TestSMTPOutage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend func(testing.TB) redistest.Backend
	}{
		{"miniredis", redistest.Mini},
		{"redis-server", redistest.Real},
	} {
		t.Run(tc.name, func(t *testing.T) { testSMTPOutage(t, tc.backend(t)) })
	}
}

func testSMTPOutage(t *testing.T, be redistest.Backend) {
	ctx := context.Background()
	s := newStore(t, be)
	if _, err := s.Import(ctx, []byte(outageDirectory)); err != nil {
		t.Fatal(err)
	}
	srv := startSink(t, "")
	addr := srv.ln.Addr().String()
	logs := &lockedBuffer{}
	m := newMailer(t, s, testConfig(srv.port()), 2, func(p *Params) {
		// The defaults of a daemon for everything that paces recovery.
		p.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		p.RetryBase, p.RetryMax, p.Poll, p.ProbeMax = 0, 0, 0, 0
	})
	start(t, m)

	// The relay goes away; requests are made meanwhile.
	if err := srv.srv.Close(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 3; i++ {
		r, err := s.Create(ctx, workflow.Ask{Service: fmt.Sprintf("outage%d.example", i), Requester: "ad1-ovh",
			Changes: map[string]string{"tech": fmt.Sprintf("on%d-ovh", i)}}, workflow.API)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// Stay away until the probe backs off to seconds (five failures:
	// 0.25, 0.5, 1 and 2 s waited, the next wait 4 s).
	waitUntil(t, 20*time.Second, "the relay tried five times", func() bool { return m.relay.Failures() >= 5 })
	if n := pending(t, s); n != 6 {
		t.Fatalf("%d emails waiting during the outage, want the 6 validation emails", n)
	}

	back := startSink(t, addr)
	returned := time.Now()
	waitUntil(t, 8*time.Second, "every waiting email delivered after the relay returned", func() bool {
		return len(validations(back, ids)) == 6
	})
	t.Logf("6 waiting emails delivered %s after the relay returned", time.Since(returned).Round(time.Millisecond))
	if got := len(validations(srv, ids)); got != 0 {
		t.Errorf("%d emails reached the relay while it was down", got)
	}
	checkOutageLog(t, logs.String())
}

// validations lists the validation emails the sink got about the requests.
func validations(s *sink, ids []string) []string {
	var out []string
	for _, raw := range s.received() {
		id := headerValue(raw, "X-Contactd-Request")
		for _, want := range ids {
			if id == want && headerValue(raw, "X-Contactd-Kind") == "validation" {
				out = append(out, id+" "+headerValue(raw, "To"))
			}
		}
	}
	return out
}

// checkOutageLog asserts the log shows one start of the SMTP outage, with
// the emails waiting, and one end.
func checkOutageLog(t *testing.T, logs string) {
	t.Helper()
	var starts, ends int
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["dependency"] != "smtp" {
			continue
		}
		switch rec["msg"] {
		case "smtp unreachable: outage started":
			starts++
			if w, ok := rec["emails_waiting"].(float64); !ok || w < 1 {
				t.Errorf("outage start logged with emails_waiting %v, want the emails waiting: %s", rec["emails_waiting"], line)
			}
		case "smtp reachable again: outage ended":
			ends++
		}
	}
	if starts != 1 || ends != 1 {
		t.Errorf("the log shows %d outage starts and %d ends, want one of each:\n%s", starts, ends, logs)
	}
}

// waitUntil polls cond until it holds, failing t after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockedBuffer is a log destination safe for several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
