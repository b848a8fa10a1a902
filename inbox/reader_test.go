package inbox

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReaderActsAndFiles(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		w := newWorld(t, b, 4)
		srv := startMemIMAP(t)
		cfg := imapConfig(t, srv.addr)
		c := client(t, cfg)

		// 0: accepted by its approver.
		appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "Yes.", "r0@example.com"))
		// 1: declined through the reference alone (no token anywhere).
		appendMsg(t, c, "INBOX", "From: admin1@example.com\r\nTo: contacts@example.com\r\nSubject: Re: change\r\n"+
			"Message-ID: <r1@example.com>\r\nIn-Reply-To: <"+w.sent(t, 1)+">\r\n\r\nNON\r\n")
		// 2: twice from someone else: rejected, answered once.
		for k := range 2 {
			raw := strings.Replace(reply(2, w.tokens[2], "accept", fmt.Sprintf("x%d@example.org", k)),
				"admin2@example.com", "mallory@example.org", 1)
			appendMsg(t, c, "INBOX", raw)
		}
		// 3: an out-of-office quoting the email: ignored, not answered.
		raw, err := os.ReadFile("testdata/replies/ooo_en.eml")
		if err != nil {
			t.Fatal(err)
		}
		appendMsg(t, c, "INBOX", strings.ReplaceAll(string(raw), fixtureToken, w.tokens[3]))
		// a bounce of the email to approver 3.
		raw, err = os.ReadFile("testdata/replies/bounce_dsn.eml")
		if err != nil {
			t.Fatal(err)
		}
		raw = []byte(strings.ReplaceAll(string(raw), fixtureMsgID, w.sent(t, 3)))
		// The report names the address the email went to: approver 3's.
		appendMsg(t, c, "INBOX", strings.ReplaceAll(string(raw), "new1@example.net", "admin3@example.com"))

		r := runReader(t, w, cfg)
		eventually(t, "INBOX emptied", func() bool { return countIn(t, c, "INBOX") == 0 })
		if got := testutil.ToFloat64(r.met.Replies.WithLabelValues("ignored")); got != 2 {
			t.Errorf("contactd_replies_total{outcome=ignored} grew by %v, want 2", got)
		}

		for box, want := range map[string]int{"Processed": 2, "Rejected": 2, "Ignored": 2} {
			if got := countIn(t, c, box); got != want {
				t.Errorf("%s holds %d messages, want %d", box, got, want)
			}
		}
		if got := w.request(t, 0).Status; got != workflow.Applied {
			t.Errorf("request 0 is %s, want applied", got)
		}
		if got := w.request(t, 1).Status; got != workflow.Declined {
			t.Errorf("request 1 is %s, want declined", got)
		}
		r2 := w.request(t, 2)
		if r2.Status != workflow.Pending || historyCount(r2, "accepted") != 0 {
			t.Errorf("a reply from a stranger changed request 2: %s %v", r2.Status, r2.History)
		}
		if a := w.request(t, 3).Approvals["ad3-ovh"]; !a.Undeliverable || a.Status != "pending" {
			t.Errorf("approver 3 after a bounce: %+v, want undeliverable and still pending", a)
		}
		nu := outboxOf(t, w, "not_understood")
		if len(nu) != 1 || nu[0].To != "mallory@example.org" || nu[0].Reason != ReasonWrongSender || !strings.HasSuffix(nu[0].InReplyTo, "@example.org>") {
			t.Errorf("not_understood emails = %+v, want one to mallory@example.org for wrong_sender", nu)
		}
		if r.LastPoll().IsZero() {
			t.Error("LastPoll is zero after a poll")
		}
	})
}

func TestReaderIdleActsAtOnce(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 1)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	cfg.IMAP.PollInterval = config.Duration(time.Hour) // only IDLE can wake it
	c := client(t, cfg)
	r := runReader(t, w, cfg)
	eventually(t, "first poll", func() bool { return !r.LastPoll().IsZero() })
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "ACCEPT", "idle@example.com"))
	eventually(t, "reply acted on without a poll", func() bool { return w.request(t, 0).Status == workflow.Applied })
	eventually(t, "reply filed", func() bool { return countIn(t, c, "Processed") == 1 })
}

func TestReaderTooLarge(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 1)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	cfg.Inbox.MaxMessageBytes = 2048
	c := client(t, cfg)
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "ACCEPT\r\n"+strings.Repeat("padding line\r\n", 1000), "big@example.com"))
	runReader(t, w, cfg)
	eventually(t, "large message rejected", func() bool { return countIn(t, c, "Rejected") == 1 })
	if got := w.request(t, 0).Status; got != workflow.Pending {
		t.Errorf("a message over the limit was acted on: %s", got)
	}
	if nu := outboxOf(t, w, "not_understood"); len(nu) != 1 || nu[0].Reason != ReasonTooLarge {
		t.Errorf("not_understood = %+v, want one too_large", nu)
	}
}

func TestReaderTwoReadersActOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		const n = 30
		w := newWorld(t, b, n)
		srv := startMemIMAP(t)
		cfg := imapConfig(t, srv.addr)
		cfg.IMAP.PollInterval = config.Duration(20 * time.Millisecond)
		c := client(t, cfg)
		runReader(t, w, cfg)
		runReader(t, w, cfg)
		for i := range n {
			raw := reply(i, w.tokens[i], "yes", fmt.Sprintf("m%d@example.com", i))
			appendMsg(t, c, "INBOX", raw)
			appendMsg(t, c, "INBOX", raw) // delivered twice: same Message-ID
		}
		eventually(t, "INBOX emptied", func() bool { return countIn(t, c, "INBOX") == 0 })
		if got := countIn(t, c, "Processed"); got != 2*n {
			t.Errorf("Processed holds %d, want %d", got, 2*n)
		}
		for i := range n {
			r := w.request(t, i)
			if r.Status != workflow.Applied || historyCount(r, "accepted") != 1 {
				t.Errorf("request %d: %s with %d accepts, want applied once", i, r.Status, historyCount(r, "accepted"))
			}
		}
		if nu := outboxOf(t, w, "not_understood"); len(nu) != 0 {
			t.Errorf("answered %d replies as not understood: %+v", len(nu), nu)
		}
	})
}

// A reader that stopped after deciding but before recording its outcome
// leaves a stale claim: the next reader takes it over and, finding the
// decision this very message made, files it as processed without
// answering it. Another message with the same token is told the token is
// dead. A message acted on and recorded but not moved is moved.
func TestReaderCrashAfterActing(t *testing.T) {
	b := redistest.Mini(t)
	w := newWorld(t, b, 2)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	c := client(t, cfg)
	ctx := context.Background()
	out, err := w.store.DecideReply(ctx, workflow.Reply{Message: "mid:crash@example.com", From: "admin0@example.com",
		Token: w.tokens[0], Decision: workflow.Accept, SenderMustMatch: true})
	if err != nil || out.Result != workflow.ReplyProcessed {
		t.Fatalf("DecideReply = %+v, %v", out, err)
	}
	stale := fmt.Sprintf("w:gone:%d", time.Now().Add(-time.Hour).UnixMilli())
	b.Client.Set(ctx, workflow.Keys{Prefix: b.Prefix}.InboxClaim("mid:crash@example.com"), stale, time.Hour)
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "yes", "crash@example.com"))
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "yes", "second-reply@example.com"))
	// Another one acted on and recorded, but not moved before the crash.
	if _, err := w.store.Decide(ctx, w.tokens[1], workflow.Decline, workflow.Email); err != nil {
		t.Fatal(err)
	}
	b.Client.Set(ctx, workflow.Keys{Prefix: b.Prefix}.InboxClaim("mid:moved@example.com"), string(Processed), time.Hour)
	appendMsg(t, c, "INBOX", reply(1, w.tokens[1], "no", "moved@example.com"))

	runReader(t, w, cfg)
	eventually(t, "all filed", func() bool { return countIn(t, c, "INBOX") == 0 })
	if got := countIn(t, c, "Processed"); got != 2 {
		t.Errorf("Processed holds %d, want the reply acted on before the crash and the one recorded", got)
	}
	if got := countIn(t, c, "Rejected"); got != 1 {
		t.Errorf("Rejected holds %d, want the second reply with the used token", got)
	}
	nu := outboxOf(t, w, "not_understood")
	if len(nu) != 1 || nu[0].Reason != ReasonUsedToken || nu[0].InReplyTo != "<second-reply@example.com>" {
		t.Errorf("not_understood = %+v, want one dead_token answer to the second reply only", nu)
	}
	if got := historyCount(w.request(t, 0), "accepted"); got != 1 {
		t.Errorf("request 0 has %d accepts, want 1", got)
	}
}

// A fresh claim by another reader leaves the message where it is.
func TestReaderLeavesMessageClaimedByAnother(t *testing.T) {
	b := redistest.Mini(t)
	w := newWorld(t, b, 1)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	c := client(t, cfg)
	ctx := context.Background()
	working := fmt.Sprintf("w:other:%d", time.Now().UnixMilli())
	b.Client.Set(ctx, workflow.Keys{Prefix: b.Prefix}.InboxClaim("mid:busy@example.com"), working, time.Hour)
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "yes", "busy@example.com"))
	r := runReader(t, w, cfg)
	// Three clean polls, each of which saw the claimed message and left it.
	for i := range 3 {
		last := r.LastPoll()
		eventually(t, fmt.Sprintf("poll %d", i+1), func() bool { return r.LastPoll().After(last) })
	}
	if got := countIn(t, c, "INBOX"); got != 1 {
		t.Errorf("INBOX holds %d, want the claimed message left there", got)
	}
	if got := w.request(t, 0).Status; got != workflow.Pending {
		t.Errorf("a message claimed by another reader was acted on: %s", got)
	}
}

func TestReaderReconnects(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 2)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	c := client(t, cfg)
	r := runReader(t, w, cfg)
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "yes", "before@example.com"))
	eventually(t, "first reply acted on", func() bool { return w.request(t, 0).Status == workflow.Applied })

	srv.stop()
	polled := r.LastPoll()
	srv.listen(t, srv.addr)
	c = client(t, cfg)
	appendMsg(t, c, "INBOX", reply(1, w.tokens[1], "yes", "after@example.com"))
	eventually(t, "reply acted on after the server came back", func() bool { return w.request(t, 1).Status == workflow.Applied })
	eventually(t, "polling again", func() bool { return r.LastPoll().After(polled) })
}

func TestReaderStoreDown(t *testing.T) {
	b := redistest.Mini(t)
	w := newWorld(t, b, 1)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	c := client(t, cfg)
	b.Mini.SetError("LOADING Redis is loading the dataset in memory")
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "yes", "down@example.com"))
	logs := &logRecorder{}
	runReaderWith(t, Params{Store: w.store, Config: cfg, Logger: slog.New(logs),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	// Two polls read the message and could not act on it.
	eventually(t, "the message tried twice while the store is down", func() bool {
		return len(logs.find("message left for a later poll")) >= 2
	})
	if got := countIn(t, c, "INBOX"); got != 1 {
		t.Fatalf("INBOX holds %d while the store is down, want the message kept", got)
	}
	b.Mini.SetError("")
	eventually(t, "acted on once the store is back", func() bool { return countIn(t, c, "Processed") == 1 })
	if got := w.request(t, 0).Status; got != workflow.Applied {
		t.Errorf("request is %s, want applied", got)
	}
}

func TestReaderAuthservID(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 2)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	cfg.Inbox.AuthservID = "mx.example.com"
	c := client(t, cfg)
	appendMsg(t, c, "INBOX", "Authentication-Results: mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n"+
		reply(0, w.tokens[0], "yes", "auth0@example.com"))
	// A header from another server proves nothing.
	appendMsg(t, c, "INBOX", "Authentication-Results: mx.other.example; dmarc=pass header.from=example.com\r\n"+
		reply(1, w.tokens[1], "yes", "auth1@example.com"))
	runReader(t, w, cfg)
	eventually(t, "both filed", func() bool { return countIn(t, c, "INBOX") == 0 })
	if got := w.request(t, 0).Status; got != workflow.Applied {
		t.Errorf("authenticated reply: request %s, want applied", got)
	}
	if got := w.request(t, 1).Status; got != workflow.Pending {
		t.Errorf("unauthenticated reply: request %s, want pending", got)
	}
	if nu := outboxOf(t, w, "not_understood"); len(nu) != 1 || nu[0].Reason != ReasonNotAuthenticated || nu[0].To != "admin1@example.com" {
		t.Errorf("not_understood = %+v, want one not_authentic to admin1", nu)
	}
}

// A From field whose encoded display name spells the approver's address
// is read as the address it really holds; a message with two From fields
// or two addresses in From is not acted on.
func TestReaderSpoofedFrom(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 3)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	c := client(t, cfg)
	froms := []string{
		"=?utf-8?q?admin0=40example.com_=28?= <attacker@evil.example> (=?utf-8?q?=29?=)",
		"admin1@example.com\r\nFrom: attacker@evil.example",
		"admin2@example.com, attacker@evil.example",
	}
	for i, from := range froms {
		raw := reply(i, w.tokens[i], "ACCEPT", fmt.Sprintf("spoof%d@evil.example", i))
		raw = strings.Replace(raw, fmt.Sprintf("Admin %d <admin%d@example.com>", i, i), from, 1)
		appendMsg(t, c, "INBOX", raw)
	}
	runReader(t, w, cfg)
	eventually(t, "all filed", func() bool { return countIn(t, c, "INBOX") == 0 })
	if got := countIn(t, c, "Rejected"); got != len(froms) {
		t.Errorf("Rejected holds %d, want %d", got, len(froms))
	}
	for i := range froms {
		if r := w.request(t, i); r.Status != workflow.Pending || historyCount(r, "accepted") != 0 {
			t.Errorf("request %d: %s after a reply from a spoofed sender, want pending", i, r.Status)
		}
	}
	for _, m := range outboxOf(t, w, "not_understood") {
		if strings.Contains(m.To, "example.com") {
			t.Errorf("answered the impersonated address %s", m.To)
		}
	}
}

// Replies written under the quote are acted on; a reply with nothing
// typed above the quote that says ACCEPT is not.
func TestReaderRepliesUnderTheQuote(t *testing.T) {
	files := map[string]workflow.Status{
		"bottom_posted_thunderbird.eml":       workflow.Applied,
		"inline_reply.eml":                    workflow.Declined,
		"gmail_wrapped_attribution_fr.eml":    workflow.Declined,
		"attribution_de.eml":                  workflow.Applied,
		"nothing_typed_quote_says_accept.eml": workflow.Pending,
		"outlook_block_de.eml":                workflow.Pending,
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	w := newWorld(t, redistest.Mini(t), len(names))
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	c := client(t, cfg)
	for i, name := range names {
		raw, err := os.ReadFile("testdata/replies/" + name)
		if err != nil {
			t.Fatal(err)
		}
		msg := strings.ReplaceAll(string(raw), fixtureToken, w.tokens[i])
		msg = strings.ReplaceAll(msg, "tech@example.com", fmt.Sprintf("admin%d@example.com", i))
		appendMsg(t, c, "INBOX", msg)
	}
	runReader(t, w, cfg)
	eventually(t, "all filed", func() bool { return countIn(t, c, "INBOX") == 0 })
	for i, name := range names {
		if got := w.request(t, i).Status; got != files[name] {
			t.Errorf("%s: request %s, want %s", name, got, files[name])
		}
	}
}
