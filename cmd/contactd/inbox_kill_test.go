package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The inbox kill test's load and faults.
const (
	inboxBurst   = 25 // replies arriving at once, before each kill
	inboxKills   = 8  // kill -9 of the daemon, each followed by a restart
	inboxReplies = inboxBurst * (inboxKills + 1)
	inboxLease   = 10 * time.Second        // inbox.Params.ClaimLease's default, which the daemon uses
	inboxSlack   = 5 * time.Second         // the pass after the lease, a loaded machine
	inboxMaxWait = inboxLease + inboxSlack // reply → decided, not counting the time no daemon ran
)

// TestInboxKill9 runs the real binary (inbox and HTTP only) reading a
// real Dovecot mailbox (through a TCP proxy) into a real Redis, and kills
// it with SIGKILL in the middle of its work, again and again: a burst of
// replies arrives, the proxy holds the first MOVE the daemon sends (and
// all that follows), and the daemon is killed then, its connection
// dropped, and a new one started. Replies are so left decided, flagged
// \Seen and not moved, claimed and not decided, or not yet claimed.
// After a last restart it checks what SPEC sections 4 and 9 promise:
//
//   - every reply is acted on once (one accepted event per request) and
//     filed in the processed mailbox, whatever step a kill cut short (a
//     reply acted on and flagged but not moved included);
//   - none is rejected or answered as not understood (a kill after the
//     decision never turns it into a dead token);
//   - no reply waits longer than the claim lease and a few seconds once
//     the time no daemon ran is taken out (a killed reader's messages
//     are taken over within 15 s).
func TestInboxKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs for about half a minute")
	}
	if os.Getenv(redistest.EnvAddr) == "" || os.Getenv("CONTACTD_TEST_IMAP") == "" {
		t.Skipf("SKIPPED: the inbox kill test needs a real Redis and Dovecot: set %s and CONTACTD_TEST_IMAP, CONTACTD_TEST_IMAP_USER, CONTACTD_TEST_IMAP_PASSWORD (scripts/test.sh starts them)", redistest.EnvAddr)
	}
	be := redistest.Real(t)
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	proxy := startMoveTrap(t, os.Getenv("CONTACTD_TEST_IMAP"))
	cfg, conf := inboxConfig(t, dir, be, proxy.addr())
	mail := newMailbox(t, cfg, os.Getenv("CONTACTD_TEST_IMAP"))
	st, err := workflow.NewStore(be.Client, storeOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(ctx, crashDirectory(inboxReplies)); err != nil {
		t.Fatal(err)
	}
	ids, tokens := inboxRequests(t, st)
	d := &child{t: t, bin: bin, conf: conf, addr: strings.TrimPrefix(cfg.HTTP.BaseURL, "http://"),
		log: filepath.Join(dir, "daemon.log"), components: "http,inbox"}
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			d.dumpLog()
		}
	})

	appended := make([]time.Time, inboxReplies)
	stranded := map[int]bool{} // replies decided before a kill and left in the mailbox by it
	for k := range inboxKills + 1 {
		if k < inboxKills {
			proxy.arm()
		}
		burst := make([]int, inboxBurst)
		for j := range burst {
			i := k*inboxBurst + j
			burst[j] = i
			appended[i] = time.Now()
			if err := mail.append(cfg.IMAP.Mailbox, inboxReply(i, tokens[i])); err != nil {
				t.Fatal(err)
			}
		}
		if k == inboxKills {
			break
		}
		select {
		case <-proxy.held:
		case <-time.After(30 * time.Second):
			t.Fatal("the daemon moved nothing in 30s")
		}
		d.kill()
		proxy.drop()
		for _, i := range mail.decidedIn(t, st, ids, cfg.IMAP.Mailbox) {
			stranded[i] = true
		}
		if err := d.start(); err != nil {
			t.Fatal(err)
		}
	}
	last := time.Now()
	waitFor(t, 90*time.Second, "every reply acted on and filed", func() bool {
		return mail.count(t, cfg.IMAP.Mailbox) == 0 && mail.count(t, cfg.IMAP.ProcessedMailbox) == inboxReplies
	})
	t.Logf("%d replies, %d kills; %d replies were left decided but not moved by a kill; all filed %s after the last restart",
		inboxReplies, d.kills, len(stranded), time.Since(last).Round(time.Millisecond))
	if len(stranded) == 0 {
		t.Errorf("no kill left a decided reply in the mailbox: the test did not test filing after a kill")
	}

	checkInboxDecisions(t, st, ids, appended, d.downtimes())
	for _, box := range []string{cfg.IMAP.RejectedMailbox, cfg.IMAP.IgnoredMailbox} {
		if n := mail.count(t, box); n != 0 {
			t.Errorf("%s holds %d replies, want none", box, n)
		}
	}
	queued, err := st.ListOutbox(ctx, workflow.OutboxReady, 10*inboxReplies)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range queued {
		if e.Kind() == workflow.KindNotUnderstood {
			t.Errorf("a reply was answered as not understood: %+v", e.Message)
		}
	}
	if n := d.logCount(`"msg":"inbox connected"`); n < inboxKills+1 {
		t.Errorf("%d connections logged, want one per start (%d)", n, inboxKills+1)
	}
}

// anyDecided reports whether one of the requests i of ids is decided.
func anyDecided(t *testing.T, st *workflow.Store, ids []string, is []int) bool {
	for _, i := range is {
		r, err := st.Get(context.Background(), ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != workflow.Pending {
			return true
		}
	}
	return false
}

// inboxConfig writes the daemon's configuration: the real Redis under the
// test's prefix, Dovecot's mailboxes of this test, HTTP for /healthz.
func inboxConfig(t *testing.T, dir string, be redistest.Backend, imapAddr string) (config.Config, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	host, port, err := net.SplitHostPort(imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = crand.Read(b)
	id := hex.EncodeToString(b)
	path := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf(`redis: {addr: %q, key_prefix: %q}
imap: {host: %q, port: %s, tls: none, username: %q, password: %q, mailbox: "in-%s", processed_mailbox: "processed-%s",
       rejected_mailbox: "rejected-%s", ignored_mailbox: "ignored-%s", poll_interval: 5s, idle: true,
       reply_address: contacts@example.com, plus_addressing: true}
http: {listen: %q, base_url: "http://%s", api_tokens: ["inbox-kill-test-token-0123456789"]}
log: {format: json, level: info}
`, be.Addrs[0], be.Prefix, host, port, os.Getenv("CONTACTD_TEST_IMAP_USER"), os.Getenv("CONTACTD_TEST_IMAP_PASSWORD"),
		id, id, id, id, addr, addr)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

// inboxRequests opens one request per service, its admin taking over the
// tech role (the admin is its only approver), and sends its validation
// email as the mailer does, without SMTP: it returns the tokens.
func inboxRequests(t *testing.T, st *workflow.Store) (ids, tokens []string) {
	t.Helper()
	ctx := context.Background()
	for i := range inboxReplies {
		nic := fmt.Sprintf("ad%d-ovh", i)
		r, err := st.Create(ctx, workflow.Ask{Service: fmt.Sprintf("s%d.example", i), Requester: nic,
			Changes: map[string]string{"tech": nic}}, workflow.API)
		if err != nil {
			t.Fatal(err)
		}
		tok := outboxtest.Deliver(t, st, outboxtest.Of(r.ID, nic, workflow.KindValidation))["validation "+nic]
		if tok == "" {
			t.Fatalf("no validation email queued for %s", r.ID)
		}
		ids, tokens = append(ids, r.ID), append(tokens, tok)
	}
	return ids, tokens
}

// inboxReply is approver i's reply accepting with its token.
func inboxReply(i int, token string) string {
	return fmt.Sprintf("From: Admin %d <ad%d@example.com>\r\nTo: contacts+%s@example.com\r\n"+
		"Subject: Re: Change of contacts\r\nMessage-ID: <kill%d@example.com>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nACCEPT\r\n\r\nOn Mon, 2 Mar 2026, Contacts wrote:\r\n> reply ACCEPT or DECLINE\r\n",
		i, i, token, i)
}

// checkInboxDecisions asserts each request was accepted once, by email,
// and applied, no later than the lease and the slack after its reply
// arrived once the time no daemon ran is taken out; it logs the delays.
func checkInboxDecisions(t *testing.T, st *workflow.Store, ids []string, appended []time.Time, down []span) {
	t.Helper()
	var worst time.Duration
	for i, id := range ids {
		r, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		nic := fmt.Sprintf("ad%d-ovh", i)
		a := r.Approvals[nic]
		if n := countEvents(r, "accepted", nic); r.Status != workflow.Applied || n != 1 || a.Channel != workflow.Email || a.At == nil {
			t.Errorf("request %s: %s, %d accepts, approval %+v; want applied, accepted once by email", id, r.Status, n, a)
			continue
		}
		took := a.At.Sub(appended[i])
		excess := took - overlap(down, appended[i], *a.At)
		worst = max(worst, excess)
		if excess > inboxMaxWait {
			t.Errorf("reply %d was acted on %s after it arrived (%s with a daemon running), past the %s lease plus %s",
				i, took.Round(time.Millisecond), excess.Round(time.Millisecond), inboxLease, inboxSlack)
		}
	}
	t.Logf("longest wait for a reply with a daemon running: %s", worst.Round(time.Millisecond))
}

// moveTrap forwards IMAP connections to a server; once armed, it holds
// the first MOVE a client sends, and all the client sends after it, as
// if the client had been killed just before its MOVE went out.
type moveTrap struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
	held   chan struct{}
	mu     sync.Mutex
	conns  []net.Conn
}

func startMoveTrap(t *testing.T, target string) *moveTrap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &moveTrap{ln: ln, target: target, held: make(chan struct{}, 1)}
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); p.drop() })
	return p
}

func (p *moveTrap) addr() string { return p.ln.Addr().String() }

// arm makes the trap hold the next MOVE.
func (p *moveTrap) arm() { p.armed.Store(true) }

// drop closes every connection.
func (p *moveTrap) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *moveTrap) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(client, server) }()
		go p.forward(client, server)
	}
}

// forward copies what the client sends until it sends a MOVE while the
// trap is armed; from then on it reads and drops.
func (p *moveTrap) forward(client, server net.Conn) {
	buf := make([]byte, 64<<10)
	holding := false
	for {
		n, err := client.Read(buf)
		if n > 0 && !holding && bytes.Contains(buf[:n], []byte(" MOVE ")) && p.armed.CompareAndSwap(true, false) {
			holding = true
			p.held <- struct{}{}
		}
		if n > 0 && !holding {
			if _, err := server.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			_ = server.Close()
			return
		}
	}
}

// mailbox is a test's own IMAP connection to Dovecot.
type mailbox struct {
	mu sync.Mutex
	c  *imapclient.Client
}

// newMailbox connects to the server at addr and creates the reply
// mailbox of cfg; its mailboxes are deleted at the end of the test.
func newMailbox(t *testing.T, cfg config.Config, addr string) *mailbox {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(cfg.IMAP.Username, cfg.IMAP.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(cfg.IMAP.Mailbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range []string{cfg.IMAP.Mailbox, cfg.IMAP.ProcessedMailbox, cfg.IMAP.RejectedMailbox, cfg.IMAP.IgnoredMailbox} {
			_ = c.Delete(m).Wait()
		}
		_ = c.Close()
	})
	return &mailbox{c: c}
}

func (m *mailbox) append(box, raw string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := m.c.Append(box, int64(len(raw)), nil)
	if _, err := io.WriteString(cmd, raw); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// decidedIn lists the replies in box that answer a decided request.
func (m *mailbox) decidedIn(t *testing.T, st *workflow.Store, ids []string, box string) []int {
	m.mu.Lock()
	sel, err := m.c.Select(box, &imap.SelectOptions{ReadOnly: true}).Wait()
	var msgs []*imapclient.FetchMessageBuffer
	if err == nil && sel.NumMessages > 0 {
		msgs, err = m.c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true}).Collect()
	}
	if err == nil {
		err = m.c.Unselect().Wait()
	}
	m.mu.Unlock()
	if err != nil {
		t.Fatalf("reading %s: %v", box, err)
	}
	var out []int
	for _, msg := range msgs {
		var i int
		if msg.Envelope == nil || len(msg.Envelope.MessageID) == 0 {
			continue
		}
		if _, err := fmt.Sscanf(msg.Envelope.MessageID, "kill%d@example.com", &i); err == nil && anyDecided(t, st, ids, []int{i}) {
			out = append(out, i)
		}
	}
	return out
}

// count returns the messages of a mailbox, 0 for one not created yet.
func (m *mailbox) count(t *testing.T, box string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.c.Status(box, &imap.StatusOptions{NumMessages: true}).Wait()
	var imapErr *imap.Error
	if errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeNonExistent {
		return 0
	}
	if err != nil {
		t.Fatalf("counting %s: %v", box, err)
	}
	return int(*st.NumMessages)
}
