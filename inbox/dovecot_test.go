package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"
)

// dovecot returns a configuration reading a fresh mailbox (and fresh
// outcome mailboxes) of the Dovecot that scripts/test.d/dovecot.sh
// started, or skips loudly when there is none.
func dovecot(t testing.TB) config.Config {
	t.Helper()
	addr := os.Getenv("CONTACTD_TEST_IMAP")
	if addr == "" {
		t.Skip("SKIPPED: no Dovecot: set CONTACTD_TEST_IMAP=host:port, CONTACTD_TEST_IMAP_USER and CONTACTD_TEST_IMAP_PASSWORD (scripts/test.sh starts one)")
	}
	cfg := imapConfig(t, addr)
	cfg.IMAP.Username = os.Getenv("CONTACTD_TEST_IMAP_USER")
	cfg.IMAP.Password = os.Getenv("CONTACTD_TEST_IMAP_PASSWORD")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	cfg.IMAP.Mailbox = "in-" + id
	cfg.IMAP.ProcessedMailbox = "processed-" + id
	cfg.IMAP.RejectedMailbox = "rejected-" + id
	cfg.IMAP.IgnoredMailbox = "ignored-" + id
	c := client(t, cfg)
	if err := c.Create(cfg.IMAP.Mailbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := client(t, cfg)
		for _, m := range []string{cfg.IMAP.Mailbox, cfg.IMAP.ProcessedMailbox, cfg.IMAP.RejectedMailbox, cfg.IMAP.IgnoredMailbox} {
			_ = c.Delete(m).Wait()
		}
	})
	return cfg
}

// killDovecot stops the Dovecot master; its supervisor starts it again a
// second later.
func killDovecot(t testing.TB) {
	t.Helper()
	file := os.Getenv("CONTACTD_TEST_DOVECOT_PIDFILE")
	if file == "" {
		t.Skip("SKIPPED: CONTACTD_TEST_DOVECOT_PIDFILE unset: cannot restart Dovecot")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

func TestDovecotActsMovesAndSurvivesRestart(t *testing.T) {
	cfg := dovecot(t)
	w := newWorld(t, redistest.Real(t), 20)
	c := client(t, cfg)
	for i := range 10 {
		appendMsg(t, c, cfg.IMAP.Mailbox, reply(i, w.tokens[i], "Accept", fmt.Sprintf("d%d@example.com", i)))
	}
	appendMsg(t, c, cfg.IMAP.Mailbox, "From: admin10@example.com\r\nTo: contacts@example.com\r\nSubject: hello\r\n"+
		"Message-ID: <d-no-token@example.com>\r\n\r\nyes\r\n")
	appendMsg(t, c, cfg.IMAP.Mailbox, "From: admin11@example.com\r\nTo: contacts+"+w.tokens[11]+"@example.com\r\n"+
		"Subject: Automatic reply\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <d-ooo@example.com>\r\n\r\nyes\r\n")
	r := runReader(t, w, cfg)
	eventually(t, "first replies filed", func() bool { return countIn(t, c, cfg.IMAP.Mailbox) == 0 })

	killDovecot(t)
	polled := r.LastPoll()
	eventually(t, "Dovecot back", func() bool {
		c2, err := dial(cfg)
		if err == nil {
			c = c2
			t.Cleanup(func() { _ = c2.Close() })
		}
		return err == nil
	})
	for i := 12; i < 20; i++ {
		appendMsg(t, c, cfg.IMAP.Mailbox, reply(i, w.tokens[i], "DECLINE", fmt.Sprintf("d%d@example.com", i)))
	}
	eventually(t, "replies after the restart filed", func() bool { return countIn(t, c, cfg.IMAP.Mailbox) == 0 })
	eventually(t, "polling again", func() bool { return r.LastPoll().After(polled) })

	for box, want := range map[string]int{cfg.IMAP.ProcessedMailbox: 18, cfg.IMAP.RejectedMailbox: 1, cfg.IMAP.IgnoredMailbox: 1} {
		if got := countIn(t, c, box); got != want {
			t.Errorf("%s holds %d, want %d", box, got, want)
		}
	}
	for i := range 20 {
		want := workflow.Applied
		switch {
		case i == 10 || i == 11:
			want = workflow.Pending
		case i >= 12:
			want = workflow.Declined
		}
		if got := w.request(t, i).Status; got != want {
			t.Errorf("request %d is %s, want %s", i, got, want)
		}
	}
	if nu := outboxOf(t, w, "not_understood"); len(nu) != 1 || nu[0].Reason != ReasonNoToken {
		t.Errorf("not_understood = %+v, want one for no_token", nu)
	}
}

func TestDovecotTwoReadersActOnce(t *testing.T) {
	cfg := dovecot(t)
	const n = 40
	w := newWorld(t, redistest.Real(t), n)
	c := client(t, cfg)
	for i := range n {
		appendMsg(t, c, cfg.IMAP.Mailbox, reply(i, w.tokens[i], "oui", fmt.Sprintf("two%d@example.com", i)))
	}
	cfg.IMAP.PollInterval = config.Duration(50 * time.Millisecond)
	runReader(t, w, cfg)
	runReader(t, w, cfg)
	eventually(t, "mailbox emptied", func() bool { return countIn(t, c, cfg.IMAP.Mailbox) == 0 })
	if got := countIn(t, c, cfg.IMAP.ProcessedMailbox); got != n {
		t.Errorf("processed holds %d, want %d", got, n)
	}
	for i := range n {
		if r := w.request(t, i); r.Status != workflow.Applied || historyCount(r, "accepted") != 1 {
			t.Errorf("request %d: %s with %d accepts, want applied once", i, r.Status, historyCount(r, "accepted"))
		}
	}
	if nu := outboxOf(t, w, "not_understood"); len(nu) != 0 {
		t.Errorf("%d replies answered as not understood", len(nu))
	}
}

// TestDovecotHandoverReplies: the two approvers of a hand-over of three
// services answer its emails through Dovecot, one with the token in the
// address the reply goes to ("JA", in German), the other answering the
// email by its Message-ID alone ("ACCEPT"). Each reply decides the whole
// hand-over for its sender, and the second applies every request.
func TestDovecotHandoverReplies(t *testing.T) {
	cfg := dovecot(t)
	b := redistest.Real(t)
	ctx := context.Background()
	s, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`,
		RequestTTL: 336 * time.Hour, RemindAfter: 48 * time.Hour, MaxReminders: 2, ReportWindow: 720 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dir := "contacts:\n  - {nic: ag1-ovh, email: agency@example.com}\n  - {nic: te1-ovh, email: tech@example.com}\n" +
		"  - {nic: nw1-ovh, email: neu@example.de, language: de}\nservices:\n"
	for i := range 3 {
		dir += fmt.Sprintf("  - {id: site%d.example, kind: domain, admin: ag1-ovh, tech: te1-ovh, billing: ag1-ovh}\n", i)
	}
	if _, err := s.Import(ctx, []byte(dir)); err != nil {
		t.Fatal(err)
	}
	h, err := s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API, "")
	if err != nil {
		t.Fatal(err)
	}
	// The mailer's work: the two validation emails sent, each Message-ID
	// naming its token.
	es := outboxtest.Claim(t, s, outboxtest.Of(h.ID, "", workflow.KindValidation))
	toks := outboxtest.Issue(t, s, es)
	outboxtest.Settle(t, s, es, workflow.ActSent)
	token, sent := map[string]string{}, map[string]string{}
	for i, e := range es {
		e.TokenRef = workflow.HashToken(toks[i])
		token[e.NIC], sent[e.NIC] = toks[i], workflow.MessageID(e, workflow.KindValidation, "contactd.example.com")
	}
	c := client(t, cfg)
	appendMsg(t, c, cfg.IMAP.Mailbox, "From: Neu <neu@example.de>\r\nTo: contacts+"+token["nw1-ovh"]+"@example.com\r\n"+
		"Subject: AW: Kontaktänderung\r\nMessage-ID: <ho-de@example.de>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"JA\r\n\r\nAm Montag schrieb Contacts:\r\n> Antworten Sie mit JA oder NEIN\r\n")
	appendMsg(t, c, cfg.IMAP.Mailbox, "From: Agency <agency@example.com>\r\nTo: contacts@example.com\r\n"+
		"Subject: Re: Change of contacts for 3 services\r\nMessage-ID: <ho-en@example.com>\r\n"+
		"In-Reply-To: <"+sent["ag1-ovh"]+">\r\nReferences: <"+sent["ag1-ovh"]+">\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"ACCEPT\r\n\r\nOn Monday, Contacts wrote:\r\n> reply ACCEPT or DECLINE\r\n")
	runReader(t, &world{store: s, b: b}, cfg)
	eventually(t, "both replies filed", func() bool { return countIn(t, c, cfg.IMAP.Mailbox) == 0 })
	if got := countIn(t, c, cfg.IMAP.ProcessedMailbox); got != 2 {
		t.Errorf("%d replies processed, want 2", got)
	}
	got, err := s.GetHandover(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, nic := range []string{"ag1-ovh", "nw1-ovh"} {
		if a := got.Approvals[nic]; a.Status != workflow.ApprovalAccepted || a.Channel != workflow.Email {
			t.Errorf("%s: %+v, want accepted by email", nic, a)
		}
	}
	if got.Status != "applied" {
		t.Errorf("hand-over %s, want applied", got.Status)
	}
	for _, r := range got.Requests {
		if svc, _ := s.GetService(ctx, r.Service); r.Status != workflow.Applied || svc.Tech != "nw1-ovh" {
			t.Errorf("%s: request %s, tech %s", r.Service, r.Status, svc.Tech)
		}
	}
}
