package mailer

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/emersion/go-smtp"
)

// queueMix fills the outbox with the two validations of a request (one to
// nw2-ovh, whose address the 550 case refuses) and five replies not
// understood.
func queueMix(t *testing.T, s *workflow.Store) *workflow.Request {
	t.Helper()
	ctx := context.Background()
	r, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
		Changes: map[string]string{"tech": "nw2-ovh"}}, workflow.API)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"a@example.net", "b@example.net", "c@example.net", "d@example.net", "e@example.net"} {
		if err := s.Enqueue(ctx, workflow.Message{Kinds: []workflow.Kind{"not_understood"}, To: to, Language: "fr", Reason: "no_decision"}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// checkOnce asserts that every entry queued was received exactly once or
// is dead, and that nothing is left ready or claimed.
func checkOnce(t *testing.T, s *workflow.Store, srv *sink, entries map[string]workflow.Message, wantDead int) {
	t.Helper()
	if n := pending(t, s); n != 0 {
		t.Errorf("%d entries still ready or claimed", n)
	}
	seen := map[string]int{}
	for _, raw := range srv.received() {
		// The nonce of an email with a token changes at each attempt.
		id := nonceRe.ReplaceAllString(strings.Trim(headerValue(raw, "Message-ID"), "<>"), "@")
		seen[id]++
	}
	dead := deadRefs(t, s)
	for ref, msg := range entries {
		sh, id, _ := strings.Cut(ref, "/")
		e := &workflow.OutboxEntry{Message: msg, ID: id, Shard: atoi(sh)}
		n := seen[workflow.MessageID(e, msg.Kinds[0], "example.com")]
		switch {
		case dead[ref] && n != 0:
			t.Errorf("entry %s (%s) is dead but was received %d times", ref, msg.Kinds, n)
		case !dead[ref] && n != 1:
			t.Errorf("entry %s (%s to %s%s) received %d times, want exactly once", ref, msg.Kinds, msg.NIC, msg.To, n)
		}
	}
	if len(dead) != wantDead {
		t.Errorf("%d dead entries, want %d", len(dead), wantDead)
	}
	if total := len(srv.received()); total != len(seen) {
		t.Errorf("%d emails received for %d distinct Message-IDs: some sent twice", total, len(seen))
	}
}

var nonceRe = regexp.MustCompile(`\.t[a-z2-7]{26}@`)

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestFailuresLoseNothing(t *testing.T) {
	tempFail := func(stage string, times int) func(string, int, string) error {
		return func(st string, n int, _ string) error {
			if st == stage && n < times {
				return &smtp.SMTPError{Code: map[string]int{"mail": 421, "rcpt": 451, "data": 451}[stage],
					EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
			}
			return nil
		}
	}
	cases := []struct {
		name     string
		setup    func(t *testing.T, srv *sink)
		wantDead int
		// stage must have been reached more than times: the fault happened.
		stage string
		times int
	}{
		{"421 at MAIL then accept", func(t *testing.T, srv *sink) { srv.fault = tempFail("mail", 3) }, 0, "mail", 3},
		{"451 at RCPT then accept", func(t *testing.T, srv *sink) { srv.fault = tempFail("rcpt", 3) }, 0, "rcpt", 3},
		{"451 after DATA then accept", func(t *testing.T, srv *sink) { srv.fault = tempFail("data", 2) }, 0, "data", 2},
		{"connection dropped mid-DATA", func(t *testing.T, srv *sink) { srv.dropData = 3 }, 0, "data", 3},
		{"550 for one recipient", func(t *testing.T, srv *sink) {
			srv.fault = func(st string, _ int, arg string) error {
				if st == "rcpt" && strings.Contains(arg, "bad@") {
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
				}
				return nil
			}
		}, 1, "rcpt", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := redistest.Mini(t)
			s := newStore(t, b)
			srv := startSink(t, "")
			srv.mu.Lock()
			tc.setup(t, srv)
			srv.mu.Unlock()
			r := queueMix(t, s)
			entries := queued(t, s)
			m := newMailer(t, s, testConfig(srv.port()), 2)
			start(t, m)
			waitDrained(t, s, 20*time.Second)
			if tc.wantDead > 0 {
				// The refused approver is marked undeliverable, and the
				// requester's notice about it is queued and sent.
				got, _ := s.Get(context.Background(), r.ID)
				if !got.Approvals["nw2-ovh"].Undeliverable {
					t.Errorf("nw2-ovh not marked undeliverable after a 550 at RCPT")
				}
				time.Sleep(50 * time.Millisecond)
				waitDrained(t, s, 10*time.Second)
				for ref, msg := range queued(t, s) {
					if _, ok := entries[ref]; !ok {
						entries[ref] = msg
					}
				}
				found := false
				for _, raw := range srv.received() {
					found = found || (headerValue(raw, "X-Contactd-Kind") == "undeliverable" && strings.Contains(headerValue(raw, "To"), "admin@example.com"))
				}
				if !found {
					t.Errorf("no undeliverable notice to the requester")
				}
				if n, err := m.DeadCount(context.Background()); err != nil || n != 1 {
					t.Errorf("DeadCount = %d, %v; want 1", n, err)
				}
			}
			checkOnce(t, s, srv, entries, tc.wantDead)
			if got := srv.callsTo(tc.stage); got <= tc.times {
				t.Errorf("%s reached %d times: the fault was not exercised", tc.stage, got)
			}
		})
	}
}

func TestServerDownAtStart(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // nothing listens there yet
	r := queueMix(t, s)
	entries := queued(t, s)
	cfg := testConfig(port)
	cfg.SMTP.MaxAttempts = 2 // an outage must not use the emails' attempts up
	m := newMailer(t, s, cfg, 2)
	start(t, m)
	waitUntil(t, 10*time.Second, "three failed connections to the relay", func() bool { return m.relay.Failures() >= 3 })
	if pending(t, s) == 0 {
		t.Fatal("outbox drained while the server was down")
	}
	srv := startSink(t, addr)
	waitDrained(t, s, 20*time.Second)
	checkOnce(t, s, srv, entries, 0)
	// While the server was down no token was issued: the history shows
	// one email sent to each approver.
	got, err := s.Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, ev := range got.History {
		if ev.Event == "sent" {
			sent++
		}
	}
	if sent != 2 {
		t.Errorf("history has %d sent events, want 2 (one per approver)", sent)
	}
}

// hangingListener holds its first connections open without a word, as a
// server that hangs does, and passes the later ones on.
type hangingListener struct {
	net.Listener
	mu    sync.Mutex
	hang  int
	held  []net.Conn
	count int
}

func (l *hangingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.count++
		hold := l.count <= l.hang
		if hold {
			l.held = append(l.held, c)
		}
		l.mu.Unlock()
		if !hold {
			return c, nil
		}
	}
}

func (l *hangingListener) Close() error {
	l.mu.Lock()
	for _, c := range l.held {
		_ = c.Close()
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

func TestServerThatHangsTimesOut(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl := &hangingListener{Listener: ln, hang: 3}
	srv := startSinkOn(t, hl)
	t.Cleanup(func() { _ = hl.Close() })
	queueMix(t, s)
	entries := queued(t, s)
	m := newMailer(t, s, testConfig(ln.Addr().(*net.TCPAddr).Port), 2)
	start(t, m)
	waitDrained(t, s, 20*time.Second)
	hl.mu.Lock()
	held := len(hl.held)
	hl.mu.Unlock()
	if held != 3 {
		t.Errorf("%d connections hung, want 3 (the test did not exercise the timeout)", held)
	}
	checkOnce(t, s, srv, entries, 0)
}

func TestMaxAttemptsEndsDead(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	srv := startSink(t, "")
	srv.fault = func(st string, _ int, _ string) error {
		if st == "rcpt" {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "busy"}
		}
		return nil
	}
	if err := s.Enqueue(context.Background(), workflow.Message{Kinds: []workflow.Kind{"not_understood"}, To: "x@example.net", Reason: "no_token"}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(srv.port())
	cfg.SMTP.MaxAttempts = 3
	m := newMailer(t, s, cfg, 1)
	start(t, m)
	waitDrained(t, s, 10*time.Second)
	if got := srv.callsTo("rcpt"); got != 3 {
		t.Errorf("RCPT tried %d times, want smtp.max_attempts = 3", got)
	}
	if n, _ := m.DeadCount(context.Background()); n != 1 {
		t.Errorf("DeadCount = %d, want 1", n)
	}
	if raw := rawEntry(t, s); !strings.Contains(raw, "451") || !strings.Contains(raw, `"attempts":3`) {
		t.Errorf("dead entry does not keep its attempts and last error: %s", raw)
	}
}

// rawEntry returns the JSON of the one dead entry.
func rawEntry(t *testing.T, s *workflow.Store) string {
	es, err := s.ListOutbox(context.Background(), workflow.OutboxDead, 10)
	if err != nil || len(es) == 0 {
		t.Fatalf("no dead entry: %v", err)
	}
	raw, _ := json.Marshal(es[0])
	return string(raw)
}

// A daemon killed mid-send leaves claims behind; they lapse and are sent.
func TestLapsedClaimsAreSent(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	srv := startSink(t, "")
	queueMix(t, s)
	entries := queued(t, s)
	claimed := 0
	for sh := 0; sh < workflow.Shards; sh++ {
		es, _, _, err := s.ClaimOutbox(context.Background(), sh, 50*time.Millisecond, 100) // a 50 ms lease, never renewed
		if err != nil {
			t.Fatal(err)
		}
		claimed += len(es)
	}
	if claimed != len(entries) {
		t.Fatalf("claimed %d of %d", claimed, len(entries))
	}
	time.Sleep(60 * time.Millisecond)
	m := newMailer(t, s, testConfig(srv.port()), 2)
	start(t, m)
	waitDrained(t, s, 10*time.Second)
	checkOnce(t, s, srv, entries, 0)
}

// At shutdown, claimed entries not started are handed back at once.
func TestShutdownHandsBack(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	srv := startSink(t, "")
	release := make(chan struct{})
	srv.fault = func(st string, _ int, _ string) error {
		if st == "mail" {
			<-release
		}
		return nil
	}
	queueMix(t, s)
	m := newMailer(t, s, testConfig(srv.port()), 1)
	queuedN := pending(t, s)
	stop := start(t, m)
	// One entry in flight (held at MAIL), at least one more claimed and
	// waiting in the dispatcher: the ones shutdown must hand back.
	waitUntil(t, 10*time.Second, "one entry in flight and others claimed", func() bool {
		return srv.callsTo("mail") == 1 && claimedIn(t, b) >= 2
	})
	go func() { time.Sleep(100 * time.Millisecond); close(release) }()
	stop()
	if n := claimedIn(t, b); n != 0 {
		t.Errorf("%d entries left claimed after Run returned", n)
	}
	if got := len(srv.received()); got != 1 {
		t.Errorf("received %d emails, want the one in flight", got)
	}
	if got := pending(t, s); got != queuedN-1 {
		t.Errorf("%d entries ready after shutdown, want %d: all but the one sent handed back", got, queuedN-1)
	}
}

// claimedIn counts the outbox entries claimed in every shard.
func claimedIn(t *testing.T, b redistest.Backend) int64 {
	t.Helper()
	s, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := s.ScanOutbox(context.Background())
	if err != nil {
		t.Fatalf("counting the claimed entries: %v", err)
	}
	return sc.Claimed
}
