package inbox

import (
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
