package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"contactd/config"
	"contactd/internal/redistest"
	"contactd/workflow"
)

// The crash test's load and faults.
const (
	crashRequests = 200                       // one per service, two approvers each
	crashKills    = 12                        // kill -9 of the daemon, each followed by a restart
	crashLease    = 15 * time.Second          // mailer.Params.Lease's default, which the daemon uses
	crashPoll     = 5 * time.Second           // mailer.Params.Poll's default: the safety-net scan
	crashSlack    = crashPoll + 5*time.Second // the scan that finds a lapsed claim, the send, a loaded machine
)

// TestCrashKill9 runs the real binary against a real Redis and an
// in-process SMTP sink, and kills it with SIGKILL many times while
// requests are created, restarting it each time. The test plays every
// approver: each validation email that arrives is accepted with the link
// it carries: every other one by posting the form of the link's page to
// the daemon, the others (and those the daemon was down for) through the
// same store. After a last restart and a drain it checks what SPEC
// sections 2, 3 and 9 promise:
//
//   - every request is applied exactly once (one "applied" event);
//   - every approver's email carried a working link when it arrived;
//   - no validation email arrived later than its request's creation plus
//     the claim lease and a few seconds, not counting the time no daemon
//     was running;
//   - every "sent" event matches an email the relay received (the sent
//     record written by the same script names its Message-ID).
//
// Delivery is at least once: a kill between the relay's 250 reply and the
// script that records it leaves an email received with no "sent" event.
// Its entry is taken back once the claim lapses; if the approver has
// accepted meanwhile (the email's token works while pending) it is
// dropped, else it is sent again and that second email is recorded. Such
// emails are counted and must stay rare: at most one per kill.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs for about a minute")
	}
	if os.Getenv(redistest.EnvAddr) == "" {
		t.Skipf("SKIPPED: the crash test needs a real Redis: set %s=host:port (scripts/test.sh starts one)", redistest.EnvAddr)
	}
	be := redistest.Real(t)
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	sink := startCrashSink(t)
	cfg, conf := crashConfig(t, dir, be, sink.port())
	st, err := workflow.NewStore(be.Client, storeOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(ctx, crashDirectory(crashRequests)); err != nil {
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

	ap := newApprovers(st, sink)
	apDone := make(chan struct{})
	apCtx, stopApprovers := context.WithCancel(ctx)
	go func() { ap.run(apCtx); close(apDone) }()

	ids := createLoad(t, st, d)
	d.waitKills()
	waitFor(t, 60*time.Second, "every approver accepted and the outbox drained", func() bool {
		return ap.acceptedCount() == 2*crashRequests && outboxEmpty(t, st)
	})
	d.stop()
	stopApprovers()
	<-apDone

	if len(ap.failures) > 0 {
		t.Errorf("%d emails could not be acted on with their link on arrival; first: %s", len(ap.failures), ap.failures[0])
	}
	checkApplied(t, st, ids)
	unrecorded := checkSentEvents(t, st, ap)
	checkDelays(t, ap, d.downtimes())
	t.Logf("%d requests, %d kills, %d validation emails received (%d duplicates), %d received with no sent event; %d accepts through the daemon's pages; mailer took back lapsed claims %d times",
		len(ids), d.kills, len(ap.emails), ap.dups, unrecorded, ap.viaHTTP, d.logCount("took back outbox entries"))
	if unrecorded > d.kills {
		t.Errorf("%d emails were received with no sent event, more than the %d kills explain", unrecorded, d.kills)
	}
}

// buildBinary builds contactd into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "contactd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// crashDirectory has n services sN.example, each with an admin aN (the
// requester), a tech tN and a candidate nN.
func crashDirectory(n int) []byte {
	var b strings.Builder
	b.WriteString("contacts:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {nic: ad%d-ovh, email: ad%d@example.com}\n  - {nic: te%d-ovh, email: te%d@example.com}\n  - {nic: nw%d-ovh, email: nw%d@example.net}\n", i, i, i, i, i, i)
	}
	b.WriteString("services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: s%d.example, kind: domain, admin: ad%d-ovh, tech: te%d-ovh, billing: ad%d-ovh}\n", i, i, i, i)
	}
	return []byte(b.String())
}

// crashConfig writes the daemon's configuration: the real Redis under the
// test's prefix, the sink as relay, a sweep every second.
func crashConfig(t *testing.T, dir string, be redistest.Backend, smtpPort int) (cfg config.Config, path string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	path = filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf(`redis: {addr: %q, key_prefix: %q}
smtp: {host: 127.0.0.1, port: %d, tls: none, from: "Contacts <contacts@example.com>"}
imap: {host: 127.0.0.1, port: 1, tls: none, username: u, password: p}
http: {listen: %q, base_url: "http://%s", api_tokens: ["crash-test-token-0123456789"]}
schedule: {sweep: "@every 1s"}
log: {format: json, level: info}
`, be.Addrs[0], be.Prefix, smtpPort, addr, addr)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Load(path); err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

// createLoad creates crashRequests requests, one every 60 ms, while the
// daemon is killed and restarted; it returns their ids.
func createLoad(t *testing.T, st *workflow.Store, d *child) []string {
	t.Helper()
	go d.killLoop(crashKills)
	var ids []string
	tick := time.NewTicker(60 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < crashRequests; i++ {
		<-tick.C
		r, err := st.Create(context.Background(), workflow.Ask{Service: fmt.Sprintf("s%d.example", i),
			Requester: fmt.Sprintf("ad%d-ovh", i), Changes: map[string]string{"tech": fmt.Sprintf("nw%d-ovh", i)}}, workflow.API)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if len(r.Approvers()) != 2 {
			t.Fatalf("request %s has approvers %v, want two", r.ID, r.Approvers())
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func outboxEmpty(t *testing.T, st *workflow.Store) bool {
	sc, err := st.ScanOutbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sc.Ready+sc.Claimed == 0 && sc.Dead == 0
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not done after %s: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkApplied asserts every request was applied, with one applied event.
func checkApplied(t *testing.T, st *workflow.Store, ids []string) {
	t.Helper()
	for _, id := range ids {
		r, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if n := countEvents(r, "applied", ""); r.Status != workflow.Applied || n != 1 {
			t.Errorf("request %s: status %s with %d applied events, want applied once", id, r.Status, n)
		}
	}
}

func countEvents(r *workflow.Request, event, nic string) int {
	n := 0
	for _, e := range r.History {
		if e.Event == event && (nic == "" || e.NIC == nic) {
			n++
		}
	}
	return n
}

// checkSentEvents matches the "sent" events of each approver with the
// validation emails received: each email names, in its Message-ID, the
// token it carried, which must be the approver's; an email is recorded
// (its event written) at most once, and no event lacks an email. A
// daemon killed between the relay's answer and the record leaves an email
// received but not recorded (another daemon sends it again): it returns
// how many such emails arrived.
func checkSentEvents(t *testing.T, st *workflow.Store, ap *approvers) int {
	t.Helper()
	ctx := context.Background()
	received := map[string]int{}
	for _, e := range ap.emails {
		sent, err := st.LookupSent(ctx, e.messageID)
		if err != nil {
			t.Fatal(err)
		}
		if sent == nil || sent.Request != e.request || sent.NIC != e.nic || sent.TokenHash != workflow.HashToken(e.token) {
			t.Errorf("email %s to %s about %s does not name its own token: %+v", e.messageID, e.nic, e.request, sent)
		}
		received[e.request+" "+e.nic]++
	}
	unrecorded := 0
	reqs := map[string]*workflow.Request{}
	for _, e := range ap.emails {
		if reqs[e.request] == nil {
			r, err := st.Get(ctx, e.request)
			if err != nil {
				t.Fatal(err)
			}
			reqs[e.request] = r
		}
	}
	for id, r := range reqs {
		for _, nic := range r.Approvers() {
			n, got := countEvents(r, "sent", nic), received[id+" "+nic]
			if n > got {
				t.Errorf("request %s, approver %s: %d sent events for %d emails received", id, nic, n, got)
			}
			unrecorded += got - n
		}
	}
	return unrecorded
}

// checkDelays asserts no validation email came later than its request's
// creation plus the lease and the slack, once the time no daemon ran is
// taken out, and logs the delays.
func checkDelays(t *testing.T, ap *approvers, down []span) {
	t.Helper()
	var delays []time.Duration
	var worst time.Duration
	for _, e := range ap.emails {
		d := e.arrived.Sub(e.created)
		delays = append(delays, d)
		excess := d - overlap(down, e.created, e.arrived)
		worst = max(worst, excess)
		if excess > crashLease+crashSlack {
			t.Errorf("validation email to %s about %s arrived %s after the request (%s with a daemon running), past the %s lease plus %s",
				e.nic, e.request, d.Round(time.Millisecond), excess.Round(time.Millisecond), crashLease, crashSlack)
		}
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	if len(delays) > 0 {
		t.Logf("validation email delay after creation: median %s, p99 %s, max %s; max with a daemon running %s",
			delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)*99/100].Round(time.Millisecond),
			delays[len(delays)-1].Round(time.Millisecond), worst.Round(time.Millisecond))
	}
}

// span is a time interval.
type span struct{ from, to time.Time }

// overlap is how much of [from, to] the spans cover.
func overlap(spans []span, from, to time.Time) time.Duration {
	var d time.Duration
	for _, s := range spans {
		a, b := maxTime(s.from, from), minTime(s.to, to)
		if b.After(a) {
			d += b.Sub(a)
		}
	}
	return d
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// child is the daemon process, restarted after each kill.
type child struct {
	t         *testing.T
	bin, conf string
	addr, log string
	// components is serve's --components ("http,mailer,scheduler" when
	// empty).
	components string
	mu         sync.Mutex
	cmd        *exec.Cmd
	down       []span
	kills      int
	killsDone  chan struct{}
	stopped    bool
	// killedAt is when kill last stopped the daemon, until start runs it
	// again: that span is time no daemon ran.
	killedAt time.Time
}

// start runs the daemon and waits until it answers /healthz.
func (c *child) start() error {
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	components := c.components
	if components == "" {
		components = "http,mailer,scheduler"
	}
	cmd := exec.Command(c.bin, "serve", "--config", c.conf, "--components", components)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	c.mu.Lock()
	c.cmd = cmd
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if !c.killedAt.IsZero() {
			c.down = append(c.down, span{c.killedAt, time.Now()})
			c.killedAt = time.Time{}
		}
		c.mu.Unlock()
	}()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + c.addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("the daemon did not answer /healthz within 15s")
}

// killLoop kills the daemon n times, 0.5 to 1.5 s apart, restarting it
// each time, and records when no daemon ran.
func (c *child) killLoop(n int) {
	defer close(c.killsDone)
	for i := 0; i < n; i++ {
		time.Sleep(500*time.Millisecond + rand.N(time.Second))
		c.mu.Lock()
		cmd := c.cmd
		c.mu.Unlock()
		at := time.Now()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if err := c.start(); err != nil {
			c.t.Errorf("restart after kill %d: %v", i+1, err)
			return
		}
		c.mu.Lock()
		c.down = append(c.down, span{at, time.Now()})
		c.kills++
		c.mu.Unlock()
	}
}

// kill ends the daemon with SIGKILL, to be started again; the time until
// then counts as time no daemon ran.
func (c *child) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c.killedAt = time.Now()
	c.kills++
}

func (c *child) waitKills() { <-c.killsDone }

func (c *child) downtimes() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.down...)
}

// stop ends the daemon with SIGKILL (its claims are handed back by lease).
func (c *child) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.cmd == nil {
		return
	}
	c.stopped = true
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// logCount counts the daemon log lines holding s.
func (c *child) logCount(s string) int {
	b, _ := os.ReadFile(c.log)
	return strings.Count(string(b), s)
}

func (c *child) dumpLog() {
	b, _ := os.ReadFile(c.log)
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	c.t.Logf("daemon log (end):\n%s", b)
}

// received is one validation email as the approver saw it.
type received struct {
	request, nic, token, messageID string
	created, arrived               time.Time
}

// approvers reads the validation emails reaching the sink and accepts
// each with its link, checking the link works on arrival.
type approvers struct {
	st       *workflow.Store
	sink     *crashSink
	mu       sync.Mutex
	accepted map[string]bool
	emails   []received
	dups     int
	failures []string
	// tries counts accepts tried; viaHTTP those the daemon's page took.
	tries, viaHTTP int
}

func newApprovers(st *workflow.Store, sink *crashSink) *approvers {
	return &approvers{st: st, sink: sink, accepted: map[string]bool{}}
}

func (a *approvers) acceptedCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.accepted)
}

func (a *approvers) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-a.sink.ch:
			a.handle(ctx, m)
		}
	}
}

// handle accepts with one email's link, unless its approver already did.
func (a *approvers) handle(ctx context.Context, m sunk) {
	e, err := readEmail(m.data)
	if err != nil || e.Kind != string(workflow.KindValidation) {
		return
	}
	local, _, _ := strings.Cut(m.rcpt, "@")
	nic := local + "-ovh"
	tok := e.Link[strings.LastIndexByte(e.Link, '/')+1:]
	r, err := a.st.Get(ctx, e.Request)
	if err != nil {
		a.fail("email to %s: request %q: %v", nic, e.Request, err)
		return
	}
	key := e.Request + " " + nic
	a.mu.Lock()
	a.emails = append(a.emails, received{request: e.Request, nic: nic, token: tok, messageID: e.MessageID, created: r.CreatedAt, arrived: m.at})
	done := a.accepted[key]
	if done {
		a.dups++
	}
	a.mu.Unlock()
	if e.Link == "" {
		a.fail("validation email to %s about %s has no link", nic, e.Request)
		return
	}
	if done {
		return
	}
	// Every copy received so far works until the approver decides: a
	// daemon killed after the relay took an email sends it again, and the
	// second copy must not revoke the first. The approver decides with the
	// first copy.
	copies := a.copies(key)
	for _, c := range copies {
		if _, who, err := a.st.LookupToken(ctx, c); err != nil || who != nic {
			a.fail("copy %d of %d of the link to %s about %s: lookup gives %q, %v", len(copies), len(copies), nic, e.Request, who, err)
			return
		}
	}
	tok = copies[0]
	link := e.Link[:strings.LastIndexByte(e.Link, '/')+1] + tok
	if !a.acceptByLink(ctx, link, e.Request, nic) {
		if _, err := a.st.Decide(ctx, tok, workflow.Accept, workflow.Web); err != nil {
			a.fail("accepting with the link to %s about %s: %v", nic, e.Request, err)
			return
		}
	}
	a.mu.Lock()
	a.accepted[key] = true
	a.mu.Unlock()
}

// copies returns the tokens of every validation email key's approver
// received, oldest first.
func (a *approvers) copies(key string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.emails {
		if e.request+" "+e.nic == key {
			out = append(out, e.token)
		}
	}
	return out
}

// acceptByLink accepts every other time as a person would, by posting
// the form of the link's page to the running daemon. It reports whether
// the decision is recorded; false leaves it to the store (the daemon was
// down, or killed before it could answer and before it recorded it).
func (a *approvers) acceptByLink(ctx context.Context, link, id, nic string) bool {
	a.mu.Lock()
	a.tries++
	odd := a.tries%2 == 1
	a.mu.Unlock()
	if !odd {
		return false
	}
	u, err := url.Parse(link)
	if err != nil {
		a.fail("link %q: %v", link, err)
		return true
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", link, strings.NewReader("decision=accept"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		r, gerr := a.st.Get(ctx, id)
		return gerr == nil && r.Approvals[nic].Status == workflow.ApprovalAccepted
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.fail("posting the form of the link to %s about %s: status %d", nic, id, resp.StatusCode)
	} else {
		a.mu.Lock()
		a.viaHTTP++
		a.mu.Unlock()
	}
	return true
}

func (a *approvers) fail(format string, args ...any) {
	a.mu.Lock()
	a.failures = append(a.failures, fmt.Sprintf(format, args...))
	a.mu.Unlock()
}

// sunk is one message the sink accepted, with when its DATA ended.
type sunk struct {
	rcpt string
	data []byte
	at   time.Time
}

// crashSink is an SMTP relay that hands every message it accepts to a
// channel, before answering 250.
type crashSink struct {
	ln  net.Listener
	srv *smtp.Server
	ch  chan sunk
}

func startCrashSink(t *testing.T) *crashSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &crashSink{ln: ln, ch: make(chan sunk, 10*crashRequests)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &crashSession{s: s}, nil }))
	s.srv.Domain = "sink.test"
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // a killed daemon's connections reset
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *crashSink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

type crashSession struct {
	s    *crashSink
	rcpt string
}

func (x *crashSession) Reset()                                    { x.rcpt = "" }
func (x *crashSession) Logout() error                             { return nil }
func (x *crashSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (x *crashSession) Rcpt(to string, _ *smtp.RcptOptions) error { x.rcpt = to; return nil }
func (x *crashSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.ch <- sunk{rcpt: x.rcpt, data: b, at: time.Now()}
	return nil
}
