package mailer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/redistest"
	"contactd/templates"
	"contactd/workflow"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	gomail "github.com/wneessen/go-mail"
)

// sink is an in-process SMTP server keeping what it receives. fault, when
// set, may refuse a command: it gets the stage ("mail", "rcpt", "data"),
// how many times that stage was reached before (from 0) and the argument.
type sink struct {
	mu    sync.Mutex
	msgs  [][]byte
	calls map[string]int
	fault func(stage string, n int, arg string) error
	// dropData closes the connection in the middle of the first DATA
	// commands, while n < dropData.
	dropData int
	srv      *smtp.Server
	ln       net.Listener
	// authServers, when set, makes the sink offer AUTH with these
	// mechanisms (name -> a new SASL server for one exchange).
	authServers map[string]func(*sink) sasl.Server
	// logins counts successful authentications.
	logins atomic.Int64
	// discard counts messages without keeping them (benchmarks).
	discard bool
	count   atomic.Int64
}

func startSink(t testing.TB, addr string) *sink {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return startSinkOn(t, ln)
}

// startSinkOn serves the sink on ln.
func startSinkOn(t testing.TB, ln net.Listener) *sink {
	s := &sink{calls: map[string]int{}, ln: ln}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		if s.authServers != nil {
			return &authSession{session{s: s, c: c}}, nil
		}
		return &session{s: s, c: c}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = 1 << 20
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *sink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *sink) callsTo(stage string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[stage]
}

func (s *sink) check(stage, arg string) error {
	s.mu.Lock()
	n := s.calls[stage]
	s.calls[stage]++
	f := s.fault
	s.mu.Unlock()
	if f != nil {
		return f(stage, n, arg)
	}
	return nil
}

func (s *sink) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs...)
}

// authSession is a session that offers AUTH.
type authSession struct{ session }

func (x *authSession) AuthMechanisms() []string {
	var out []string
	for m := range x.s.authServers {
		out = append(out, m)
	}
	return out
}

func (x *authSession) Auth(mech string) (sasl.Server, error) {
	f, ok := x.s.authServers[mech]
	if !ok {
		return nil, errors.New("unsupported mechanism")
	}
	return f(x.s), nil
}

type session struct {
	s *sink
	c *smtp.Conn
}

func (x *session) Reset()        {}
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	return x.s.check("mail", from)
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error { return x.s.check("rcpt", to) }
func (x *session) Data(r io.Reader) error {
	x.s.mu.Lock()
	n := x.s.calls["data"]
	drop := n < x.s.dropData
	x.s.mu.Unlock()
	if drop {
		x.s.mu.Lock()
		x.s.calls["data"]++
		x.s.mu.Unlock()
		buf := make([]byte, 64)
		_, _ = io.ReadFull(r, buf)
		_ = x.c.Conn().Close()
		_, _ = io.Copy(io.Discard, r)
		return errors.New("connection dropped")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := x.s.check("data", ""); err != nil {
		return err
	}
	if !x.s.discard {
		x.s.mu.Lock()
		x.s.msgs = append(x.s.msgs, b)
		x.s.mu.Unlock()
	}
	x.s.count.Add(1)
	return nil
}

// seedYAML is the directory the tests start from.
const seedYAML = `contacts:
  - {nic: ad1-ovh, email: admin@example.com, name: Alice Admin, language: en}
  - {nic: te1-ovh, email: tech@example.com, name: Tom Tech, language: fr}
  - {nic: bi1-ovh, email: billing@example.com, name: Bob Billing}
  - {nic: nw1-ovh, email: new1@example.net, name: Nora New, language: fr}
  - {nic: nw2-ovh, email: bad@example.net, name: Ned New}
services:
  - {id: example.com, kind: domain, admin: ad1-ovh, tech: te1-ovh, billing: bi1-ovh}
  - {id: example.org, kind: domain, admin: ad1-ovh, tech: te1-ovh, billing: bi1-ovh}
`

func newStore(t testing.TB, b redistest.Backend) *workflow.Store {
	t.Helper()
	s, err := workflow.NewStore(b.Client, workflow.Options{
		KeyPrefix: b.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`, RequestTTL: 336 * time.Hour,
		RemindAfter: 48 * time.Hour, MaxReminders: 2, ReportWindow: 720 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(context.Background(), []byte(seedYAML)); err != nil {
		t.Fatal(err)
	}
	return s
}

func testConfig(port int) config.Config {
	c := config.Default()
	c.SMTP.Host, c.SMTP.Port, c.SMTP.TLS = "127.0.0.1", port, "none"
	c.SMTP.From = "Contacts <contacts@example.com>"
	c.SMTP.MaxAttempts = 8
	c.HTTP.BaseURL = "https://contacts.example.com"
	c.IMAP.ReplyAddress = "contacts@example.com"
	c.Workflow.SecurityContact = "security@example.com"
	return c
}

// quietLogger drops logs unless the test runs with -v.
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newMailer(t testing.TB, s *workflow.Store, cfg config.Config, workers int, opts ...func(*Params)) *Mailer {
	t.Helper()
	p := Params{Store: s, Config: cfg, Templates: templates.MustEmbedded(), Logger: quietLogger(t),
		Workers: workers, Timeout: 400 * time.Millisecond, Lease: 20 * time.Second,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Poll: 20 * time.Millisecond}
	for _, o := range opts {
		o(&p)
	}
	m, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// start runs m until the test ends; stop waits for Run to return.
func start(t testing.TB, m *Mailer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// pending counts the entries of every shard still ready or claimed.
func pending(t testing.TB, s *workflow.Store) int64 {
	sc, err := s.ScanOutbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sc.Ready + sc.Claimed
}

// waitDrained waits until nothing is ready or claimed.
func waitDrained(t testing.TB, s *workflow.Store, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for pending(t, s) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained after %s: %d entries left", within, pending(t, s))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queued lists every entry in the outbox: "shard/id" -> message.
func queued(t testing.TB, s *workflow.Store) map[string]workflow.Message {
	t.Helper()
	out := map[string]workflow.Message{}
	for _, state := range []workflow.OutboxState{workflow.OutboxReady, workflow.OutboxClaimed, workflow.OutboxDead} {
		es, err := s.ListOutbox(context.Background(), state, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			out[e.Ref()] = e.Message
		}
	}
	return out
}

// deadRefs lists the dead entries as "shard/id".
func deadRefs(t testing.TB, s *workflow.Store) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	es, err := s.ListOutbox(context.Background(), workflow.OutboxDead, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		out[e.Ref()] = true
	}
	return out
}

// headerValue returns the first value of a header in a raw message, unfolded.
func headerValue(raw []byte, name string) string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	var cur string
	found := false
	for _, line := range strings.Split(string(head), "\r\n") {
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			if found {
				cur = strings.TrimSpace(cur + " " + strings.TrimSpace(line))
			}
			continue
		}
		if found {
			return cur
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			cur, found = strings.TrimSpace(v), true
		}
	}
	return cur
}

// sendMsg sends msg as the mailer would, with no claim to check.
func (s *sender) sendMsg(ctx context.Context, msg *gomail.Msg) error {
	_, _, err := s.send(ctx, msg, nil)
	return err
}

// composeOne writes the next email of entry e as the mailer would, the
// request read from the store.
func composeOne(t testing.TB, m *Mailer, e *workflow.OutboxEntry) *letter {
	t.Helper()
	j := &job{e: e}
	b, err := m.read(context.Background(), []*job{j})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.compose(j, e.Kind(), b)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.render(l, e); err != nil {
		t.Fatal(err)
	}
	return l
}
