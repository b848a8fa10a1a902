package inbox

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/redistest"
	"contactd/metrics"
	"contactd/workflow"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// quickParams are a reader's settings for tests that wait on leases.
func quickParams(store Store, cfg config.Config, log *slog.Logger) Params {
	return Params{Store: store, Config: cfg, Logger: log, Metrics: metrics.New(),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, ClaimLease: time.Second}
}

// A message that makes acting panic is tried three times, then set aside
// in the rejected mailbox, logged and counted; the reader goes on with
// the other messages and never stops.
func TestReaderSetsPoisonAside(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 3)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	c := client(t, cfg)
	for i := range 3 {
		appendMsg(t, c, "INBOX", reply(i, w.tokens[i], "yes", fmt.Sprintf("m%d@example.com", i)))
	}
	store := &wrappedStore{Store: w.store, decide: func(ctx context.Context, r workflow.Reply, next decideFunc) (*workflow.ReplyOutcome, error) {
		if r.MessageID == "m1@example.com" {
			panic("a bug that this message sets off")
		}
		return next(ctx, r)
	}}
	logs := &logRecorder{}
	r, _ := startReaderWith(t, quickParams(store, cfg, slog.New(logs)))
	eventually(t, "INBOX emptied", func() bool { return countIn(t, c, "INBOX") == 0 })
	if got, want := countIn(t, c, "Processed"), 2; got != want {
		t.Errorf("Processed holds %d, want %d", got, want)
	}
	if got, want := countIn(t, c, "Rejected"), 1; got != want {
		t.Errorf("Rejected holds %d, want the poison message", got)
	}
	for i, want := range []workflow.Status{workflow.Applied, workflow.Pending, workflow.Applied} {
		if got := w.request(t, i).Status; got != want {
			t.Errorf("request %d is %s, want %s", i, got, want)
		}
	}
	if got := testutil.ToFloat64(r.met.Panics.WithLabelValues("inbox")); got != maxAttempts {
		t.Errorf("contactd_panics_recovered_total{component=inbox} = %v, want %d", got, maxAttempts)
	}
	if got := testutil.ToFloat64(r.met.PoisonMessages); got != 1 {
		t.Errorf("contactd_poison_messages_total = %v, want 1", got)
	}
	aside := logs.find("message set aside")
	if len(aside) != 1 || attr(aside[0], "message_id") != "m1@example.com" || attr(aside[0], "attempts") != "3" {
		t.Errorf("set-aside lines: %v, want one for m1@example.com after 3 attempts", aside)
	}
	if nu := outboxOf(t, w, "not_understood"); len(nu) != 0 {
		t.Errorf("the poison message was answered: %+v", nu)
	}
}

// The attempts at a poison message are counted in the store, so that
// several readers (or one restarted) count together: three readers that
// each try once set it aside.
func TestPoisonAttemptsCountAcrossReaders(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 1)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	c := client(t, cfg)
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "yes", "poison@example.com"))
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		// Each reader panics at its first attempt and waits at its others,
		// so that it tries once.
		var calls atomic.Int32
		store := &wrappedStore{Store: w.store, decide: func(ctx context.Context, r workflow.Reply, next decideFunc) (*workflow.ReplyOutcome, error) {
			if calls.Add(1) == 1 {
				panic("a bug that this message sets off")
			}
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		r, stop := startReaderWith(t, quickParams(store, cfg, testLogger(t)))
		eventually(t, fmt.Sprintf("reader %d tried", attempt), func() bool {
			return testutil.ToFloat64(r.met.Panics.WithLabelValues("inbox")) == 1
		})
		if attempt < maxAttempts {
			stop()
			if got := countIn(t, c, "INBOX"); got != 1 {
				t.Fatalf("after %d attempts INBOX holds %d, want the message still there", attempt, got)
			}
			continue
		}
		eventually(t, "set aside", func() bool { return countIn(t, c, "Rejected") == 1 })
		if got := testutil.ToFloat64(r.met.PoisonMessages); got != 1 {
			t.Errorf("the third reader counted %v poison messages, want 1", got)
		}
	}
}

// When the store records a decision and its answer is lost, the message
// keeps its claim and the next attempt recognises the decision as its
// own: processed, not rejected, not answered.
func TestReaderAmbiguousStoreAnswer(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		w := newWorld(t, b, 1)
		lose := &redistest.LoseAnswer{Args: []string{workflow.HashToken(w.tokens[0]), "accept", "email"}}
		b.Client.AddHook(lose)
		srv := startMemIMAP(t)
		cfg := imapConfig(t, srv.addr)
		c := client(t, cfg)
		appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "Yes", "lost@example.com"))
		logs := &logRecorder{}
		startReaderWith(t, quickParams(w.store, cfg, slog.New(logs)))
		eventually(t, "filed", func() bool { return countIn(t, c, "INBOX") == 0 })
		if !lose.Lost() {
			t.Fatal("no answer was lost: the test tested nothing")
		}
		if got := countIn(t, c, "Processed"); got != 1 {
			t.Errorf("Processed holds %d, want the reply", got)
		}
		if got := w.request(t, 0).Status; got != workflow.Applied {
			t.Errorf("request is %s, want applied", got)
		}
		if nu := outboxOf(t, w, "not_understood"); len(nu) != 0 {
			t.Errorf("the approver was told the reply was not understood: %+v", nu)
		}
		if len(logs.find("message left for a later poll")) != 1 || len(logs.find("reply acted on")) != 1 {
			t.Errorf("want one line for the lost answer and one for the reply acted on")
		}
	})
}

// A message claimed by a reader that stopped is taken over a lease after
// its last heartbeat, without waiting for new mail or the poll interval.
func TestReaderTakesOverStoppedReader(t *testing.T) {
	b := redistest.Mini(t)
	w := newWorld(t, b, 1)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	cfg.IMAP.PollInterval = config.Duration(time.Hour)
	c := client(t, cfg)
	// A reader that beat a moment ago and then stopped (written as an
	// earlier version wrote claims, without a count of failed attempts).
	working := fmt.Sprintf("w:stopped:%d", time.Now().UnixMilli())
	b.Client.Set(context.Background(), workflow.Keys{Prefix: b.Prefix}.InboxClaim("mid:orphan@example.com"), working, time.Hour)
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "yes", "orphan@example.com"))
	logs := &logRecorder{}
	startReaderWith(t, quickParams(w.store, cfg, slog.New(logs)))
	eventually(t, "the connection's first pass", func() bool { return len(logs.find("inbox caught up")) > 0 })
	if got := attr(logs.find("inbox caught up")[0], "left"); got != "1" {
		t.Errorf("first pass left %s messages, want the one claimed", got)
	}
	eventually(t, "taken over", func() bool { return countIn(t, c, "Processed") == 1 })
	if got := w.request(t, 0).Status; got != workflow.Applied {
		t.Errorf("request is %s, want applied", got)
	}
}

// A reader whose work outlasts many leases keeps its claim with its
// heartbeat: another reader polling all along never acts on the message.
func TestReaderHeartbeatKeepsClaim(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 1)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	cfg.IMAP.PollInterval = config.Duration(50 * time.Millisecond)
	c := client(t, cfg)
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "yes", "slow@example.com"))
	var calls atomic.Int32
	release := make(chan struct{})
	slow := &wrappedStore{Store: w.store, decide: func(ctx context.Context, r workflow.Reply, next decideFunc) (*workflow.ReplyOutcome, error) {
		calls.Add(1)
		<-release
		return next(ctx, r)
	}}
	p := quickParams(slow, cfg, testLogger(t))
	p.ClaimLease = 300 * time.Millisecond
	startReaderWith(t, p)
	eventually(t, "the first reader acting", func() bool { return calls.Load() == 1 })
	other, _ := startReaderWith(t, Params{Store: slow, Config: cfg, Logger: testLogger(t), ClaimLease: 300 * time.Millisecond})
	// The other reader passes over the message for ten leases.
	for range 10 {
		polled := other.LastPoll()
		eventually(t, "another pass", func() bool { return other.LastPoll().After(polled) })
		time.Sleep(p.ClaimLease / 3)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the message was acted on %d times while its first reader worked, want once", n)
	}
	close(release)
	eventually(t, "filed", func() bool { return countIn(t, c, "Processed") == 1 })
	if got := historyCount(w.request(t, 0), "accepted"); got != 1 {
		t.Errorf("%d accepts, want 1", got)
	}
}

// A reply acted on, flagged \Seen, and left in the mailbox by a reader
// stopped before its MOVE reaches its folder once another reader starts:
// every message is looked at after a connection, not only unseen ones.
func TestReaderFilesSeenMessageLeftBehind(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 1)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	cfg.IMAP.PollInterval = config.Duration(time.Hour)
	c := client(t, cfg)
	appendMsg(t, c, "INBOX", reply(0, w.tokens[0], "yes", "unmoved@example.com"))
	srv.refuseMove.Store(true)
	// A lease long enough for the second reader to start within it: the
	// first reader's outcome is recent, so it is left to that reader at
	// first, and must be moved by the second once it is not.
	p := quickParams(w.store, cfg, testLogger(t))
	p.ClaimLease = 3 * time.Second
	_, stop := startReaderWith(t, p)
	eventually(t, "acted on and flagged", func() bool {
		return w.request(t, 0).Status == workflow.Applied && unseen(t, c, "INBOX") == 0
	})
	stop()
	srv.refuseMove.Store(false)
	if got := countIn(t, c, "INBOX"); got != 1 {
		t.Fatalf("INBOX holds %d, want the flagged message", got)
	}
	p.Metrics = metrics.New()
	startReaderWith(t, p)
	eventually(t, "moved", func() bool { return countIn(t, c, "Processed") == 1 })
	if got := historyCount(w.request(t, 0), "accepted"); got != 1 {
		t.Errorf("%d accepts, want 1", got)
	}
	if nu := outboxOf(t, w, "not_understood"); len(nu) != 0 {
		t.Errorf("answered: %+v", nu)
	}
}

// unseen counts the messages of a mailbox not flagged \Seen.
func unseen(t *testing.T, c *imapclient.Client, mailbox string) int {
	t.Helper()
	st, err := c.Status(mailbox, &imap.StatusOptions{NumUnseen: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return int(*st.NumUnseen)
}

// While a backlog drains, the mailbox is up and polled: contactd_imap_up
// and the last poll time are set as soon as the server answers and a
// batch is filed, and the end of an outage is logged then, not once the
// whole backlog is read. Connecting and catching up are logged with
// their counts.
func TestReaderSaysUpWhileDraining(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 60)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	c := client(t, cfg)
	for i := range 30 {
		appendMsg(t, c, "INBOX", reply(i, w.tokens[i], "yes", fmt.Sprintf("d%d@example.com", i)))
	}
	var gate sync.Mutex // held: acting waits after the first messages
	var acted atomic.Int32
	store := &wrappedStore{Store: w.store, decide: func(ctx context.Context, r workflow.Reply, next decideFunc) (*workflow.ReplyOutcome, error) {
		if acted.Add(1) > 5 {
			gate.Lock()
			gate.Unlock()
		}
		return next(ctx, r)
	}}
	gate.Lock()
	logs := &logRecorder{}
	p := quickParams(store, cfg, slog.New(logs))
	p.Workers, p.BatchSize = 1, 5
	r, _ := startReaderWith(t, p)
	eventually(t, "up and polled while the backlog waits", func() bool {
		return testutil.ToFloat64(r.met.IMAPUp) == 1 && !r.LastPoll().IsZero() && testutil.ToFloat64(r.met.LastPoll) > 0
	})
	if got := countIn(t, c, "INBOX"); got < 20 {
		t.Fatalf("INBOX holds %d: the backlog drained before the test could look", got)
	}
	if n := len(logs.find("inbox connected")); n != 1 {
		t.Errorf("%d lines say the inbox connected, want 1", n)
	}
	gate.Unlock()
	eventually(t, "drained", func() bool { return countIn(t, c, "INBOX") == 0 })
	eventually(t, "caught up logged", func() bool { return len(logs.find("inbox caught up")) == 1 })
	if l := logs.find("inbox caught up")[0]; attr(l, "found") != "30" || attr(l, "processed") != "30" || attr(l, "took") == "" {
		t.Errorf("caught-up line %v, want found=30 processed=30 and how long it took", l)
	}

	// An outage: the server goes away and comes back with a backlog.
	srv.stop()
	eventually(t, "outage logged", func() bool { return len(logs.find("imap unreachable")) == 1 })
	acted.Store(0)
	gate.Lock()
	srv.listen(t, srv.addr)
	c = client(t, cfg)
	for i := 30; i < 60; i++ {
		appendMsg(t, c, "INBOX", reply(i, w.tokens[i], "yes", fmt.Sprintf("d%d@example.com", i)))
	}
	eventually(t, "end of the outage logged", func() bool { return len(logs.find("imap reachable again")) == 1 })
	if got := countIn(t, c, "INBOX"); got < 20 {
		t.Errorf("the end of the outage was logged once %d of 30 messages were left: it waited for the backlog", got)
	}
	gate.Unlock()
	eventually(t, "drained again", func() bool { return countIn(t, c, "INBOX") == 0 })
	if !strings.Contains(attr(logs.find("imap reachable again")[0], "down_for"), "s") {
		t.Errorf("the end of the outage says nothing of its length")
	}
}
