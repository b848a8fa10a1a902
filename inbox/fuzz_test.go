package inbox

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"contactd/internal/redistest"
	"contactd/metrics"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Faults of the store in FuzzAct: two bits per call to DecideReply, the
// first call in the lowest bits; calls past the eighth do not fail.
const (
	faultNone  = 0 // the store decides
	faultError = 1 // the store cannot be reached
	faultPanic = 2 // the store panics
	faultLost  = 3 // the store decides and its answer is lost
)

// faults writes a fault pattern, first call first.
func faults(calls ...uint16) uint16 {
	var f uint16
	for i, c := range calls {
		f |= c << (2 * i)
	}
	return f
}

// FuzzAct runs the whole act path of one message (fetch, read, claim,
// decide, record, flag and move) against an IMAP server and a store that
// fails or panics as the fault pattern says, pass after pass until the
// message has left the mailbox. Whatever the message and the faults: no
// pass fails nor stops the reader, the message ends in exactly one
// outcome mailbox, only the store's own panics are recovered (a panic
// while reading is a bug), and three panics set the message aside. The
// reply fixtures, with a few fault patterns, and testdata/fuzz/FuzzAct
// are its seeds. The servers' goroutines make coverage vary from run to
// run, so fuzz it without minimizing:
//
//	go test -run '^$' -fuzz FuzzAct -fuzzminimizetime 0 ./inbox/
func FuzzAct(f *testing.F) {
	files, _ := filepath.Glob("testdata/replies/*.eml")
	for i, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, uint16(faultNone))
		pattern := [...]uint16{faults(faultPanic, faultPanic, faultPanic), faults(faultLost), faults(faultError, faultPanic, faultLost)}
		f.Add(raw, pattern[i%len(pattern)])
	}
	srv := startMemIMAP(f)
	b := redistest.Mini(f)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, raw []byte, pattern uint16) {
		b.Mini.FlushAll()
		w := newWorld(t, b, 1)
		msg := strings.ReplaceAll(string(raw), fixtureMsgID, w.sent(t, 0))
		msg = strings.ReplaceAll(msg, fixtureToken, w.tokens[0])
		msg = strings.ReplaceAll(msg, "tech@example.com", "admin0@example.com")
		cfg := imapConfig(t, srv.addr)
		id := n.Add(1)
		cfg.IMAP.Mailbox = fmt.Sprintf("in%d", id)
		cfg.IMAP.ProcessedMailbox, cfg.IMAP.RejectedMailbox, cfg.IMAP.IgnoredMailbox =
			fmt.Sprintf("p%d", id), fmt.Sprintf("r%d", id), fmt.Sprintf("i%d", id)
		c := client(t, cfg)
		if err := c.Create(cfg.IMAP.Mailbox, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if err := tryAppend(c, cfg.IMAP.Mailbox, msg); err != nil {
			t.Skipf("the server refuses the message: %v", err)
		}
		store := &faultyStore{Store: w.store, pattern: pattern}
		logs := &logRecorder{}
		r, err := New(Params{Store: store, Config: cfg, Logger: slog.New(logs), Metrics: metrics.New(), Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		s, err := r.connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		if _, err := r.open(s); err != nil {
			t.Fatal(err)
		}
		for range 12 {
			if countIn(t, c, cfg.IMAP.Mailbox) == 0 {
				break
			}
			if _, err := r.pass(ctx, s, true, func() {}); err != nil {
				t.Fatalf("a pass failed: %v", err)
			}
		}
		if got := countIn(t, c, cfg.IMAP.Mailbox); got != 0 {
			t.Fatalf("the message is still in the mailbox after 12 passes (faults %016b)", pattern)
		}
		filed := map[string]int{}
		for _, box := range []string{cfg.IMAP.ProcessedMailbox, cfg.IMAP.RejectedMailbox, cfg.IMAP.IgnoredMailbox} {
			filed[box] = countIn(t, c, box)
		}
		if filed[cfg.IMAP.ProcessedMailbox]+filed[cfg.IMAP.RejectedMailbox]+filed[cfg.IMAP.IgnoredMailbox] != 1 {
			t.Fatalf("the message was filed as %v, want in exactly one mailbox", filed)
		}
		panics := int(testutil.ToFloat64(r.met.Panics.WithLabelValues("inbox")))
		if want := int(store.panics.Load()); panics != want {
			for _, l := range logs.find("acting on a message panicked") {
				t.Logf("%s\n%s", attr(l, "panic"), attr(l, "stack"))
			}
			t.Fatalf("%d panics recovered, the store made %d: reading the message panicked", panics, want)
		}
		poison := testutil.ToFloat64(r.met.PoisonMessages)
		if aside := store.panics.Load() >= maxAttempts; aside != (poison == 1) || aside && filed[cfg.IMAP.RejectedMailbox] != 1 {
			t.Fatalf("%d panics, %v poison messages, filed %v", store.panics.Load(), poison, filed)
		}
		if store.decided.Load() > 1 {
			t.Fatalf("decided %d times", store.decided.Load())
		}
	})
}

// faultyStore is a store whose DecideReply fails as its pattern says.
type faultyStore struct {
	*workflow.Store
	pattern uint16
	calls   atomic.Int32
	panics  atomic.Int32
	decided atomic.Int32
}

func (s *faultyStore) DecideReply(ctx context.Context, r workflow.Reply) (*workflow.ReplyOutcome, error) {
	k := s.calls.Add(1) - 1
	fault := uint16(faultNone)
	if k < 8 {
		fault = s.pattern >> (2 * k) & 3
	}
	switch fault {
	case faultError:
		return nil, workflow.Errorf(workflow.EUnavailable, "the store is unreachable")
	case faultPanic:
		s.panics.Add(1)
		panic("the store broke")
	}
	out, err := s.Store.DecideReply(ctx, r)
	if err == nil && out.Result == workflow.ReplyProcessed && !out.Again {
		s.decided.Add(1)
	}
	if fault == faultLost && err == nil {
		return nil, workflow.Errorf(workflow.EUnavailable, "the store's answer was lost")
	}
	return out, err
}
