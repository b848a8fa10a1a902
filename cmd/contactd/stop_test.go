package main

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/emersion/go-smtp"
)

// holdingSink is an SMTP relay that holds the first emails' DATA for a
// while before answering 250, as a slow relay does, and keeps every email
// it accepted with the time it answered.
type holdingSink struct {
	ln      net.Listener
	srv     *smtp.Server
	hold    time.Duration
	mu      sync.Mutex
	holding int // DATA commands being held now
	toHold  int // how many more DATA commands to hold
	got     []sunk
}

func startHoldingSink(t *testing.T, hold time.Duration, n int) *holdingSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &holdingSink{ln: ln, hold: hold, toHold: n}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &holdingSession{s: s}, nil }))
	s.srv.Domain = "sink.test"
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *holdingSink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *holdingSink) state() (holding int, got []sunk) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holding, append([]sunk(nil), s.got...)
}

type holdingSession struct {
	s    *holdingSink
	rcpt string
}

func (x *holdingSession) Reset()                                    { x.rcpt = "" }
func (x *holdingSession) Logout() error                             { return nil }
func (x *holdingSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (x *holdingSession) Rcpt(to string, _ *smtp.RcptOptions) error { x.rcpt = to; return nil }
func (x *holdingSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := x.s
	s.mu.Lock()
	hold := s.toHold > 0
	if hold {
		s.toHold--
		s.holding++
	}
	s.mu.Unlock()
	if hold {
		time.Sleep(s.hold)
	}
	s.mu.Lock()
	if hold {
		s.holding--
	}
	s.got = append(s.got, sunk{rcpt: x.rcpt, data: b, at: time.Now()})
	s.mu.Unlock()
	return nil
}

// A stop while the relay is receiving emails waits for the relay's
// answer and records them before the daemon exits: restarted, it sends
// nothing again, each approver has exactly one email, and its link works.
// The relay holds DATA for 20 s, longer than any other part of the
// daemon takes to stop, shorter than smtp.timeout (30 s).
func TestStopFinishesEmailsOnTheWire(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and waits for a 20 s relay")
	}
	if os.Getenv(redistest.EnvAddr) == "" {
		t.Skipf("SKIPPED: the stop test needs a real Redis: set %s=host:port (scripts/test.sh starts one)", redistest.EnvAddr)
	}
	be := redistest.Real(t)
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	const hold = 20 * time.Second
	sink := startHoldingSink(t, hold, 2)
	cfg, conf := crashConfig(t, dir, be, sink.port())
	st, err := workflow.NewStore(be.Client, storeOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(ctx, crashDirectory(1)); err != nil {
		t.Fatal(err)
	}
	d := &child{t: t, bin: bin, conf: conf, addr: strings.TrimPrefix(cfg.HTTP.BaseURL, "http://"),
		log: filepath.Join(dir, "daemon.log"), killsDone: make(chan struct{})}
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			d.dumpLog()
		}
	})
	r, err := st.Create(ctx, workflow.Ask{Service: "s0.example", Requester: "ad0-ovh",
		Changes: map[string]string{"tech": "nw0-ovh"}}, workflow.API)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "both validation emails held in DATA by the relay", func() bool {
		n, _ := sink.state()
		return n == 2
	})

	d.mu.Lock()
	cmd := d.cmd
	d.mu.Unlock()
	termAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the daemon exited with %v after SIGTERM, want status 0", err)
	}
	exitAt := time.Now()
	_, got := sink.state()
	if len(got) != 2 {
		t.Fatalf("the relay answered %d emails by the time the daemon exited, want the 2 it was receiving", len(got))
	}
	for _, m := range got {
		if m.at.After(exitAt) {
			t.Errorf("the daemon exited before the relay answered (exit %v, answer %v)", exitAt, m.at)
		}
	}
	t.Logf("SIGTERM to exit: %v (the relay held DATA %v)", exitAt.Sub(termAt).Round(time.Millisecond), hold)
	if h, err := st.Get(ctx, r.ID); err != nil || countEvents(h, "sent", "") != 2 {
		t.Fatalf("after the stop: %d sent events, %v; want both emails recorded", countEvents(h, "sent", ""), err)
	}

	// Restarted, the daemon has nothing left to send.
	d.cmd = nil
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	// An entry left in the outbox would be sent before it leaves it: once
	// the outbox is empty, every email that will ever arrive has arrived.
	waitFor(t, 10*time.Second, "the outbox empty after the restart", func() bool { return outboxEmpty(t, st) })
	_, got = sink.state()
	per := map[string]int{}
	for _, m := range got {
		per[m.rcpt]++
		e, err := readEmail(m.data)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(e.Link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the link of the email to %s answers %d after the restart, want 200", m.rcpt, resp.StatusCode)
		}
	}
	if len(per) != 2 || len(got) != 2 {
		t.Errorf("emails received by recipient: %v, want one each for the two approvers", per)
	}
}
