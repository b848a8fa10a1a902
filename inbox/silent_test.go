package inbox

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/netproxy"
	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logRecorder keeps the records logged through it.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

// find returns the records logged with a message starting with msg.
func (l *logRecorder) find(msg string) []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slog.Record
	for _, r := range l.records {
		if strings.HasPrefix(r.Message, msg) {
			out = append(out, r)
		}
	}
	return out
}

// attr returns the value of a record's attribute as text.
func attr(r slog.Record, key string) string {
	v := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// proxied returns cfg reading its server through a proxy.
func proxied(t *testing.T, cfg config.Config) (config.Config, *netproxy.Proxy) {
	t.Helper()
	p, err := netproxy.Start(net.JoinHostPort(cfg.IMAP.Host, strconv.Itoa(cfg.IMAP.Port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	through := imapConfig(t, p.Addr())
	through.IMAP.Username, through.IMAP.Password = cfg.IMAP.Username, cfg.IMAP.Password
	through.IMAP.Mailbox = cfg.IMAP.Mailbox
	through.IMAP.ProcessedMailbox = cfg.IMAP.ProcessedMailbox
	through.IMAP.RejectedMailbox = cfg.IMAP.RejectedMailbox
	through.IMAP.IgnoredMailbox = cfg.IMAP.IgnoredMailbox
	return through, p
}

// silentServer is a server that stops answering mid-session: the
// connection stays open and nothing comes back. The reader must leave
// it, log the outage, connect again once the server answers, and act on
// the reply that arrived meanwhile.
func silentServer(t *testing.T, direct config.Config, idle bool) {
	w := newWorld(t, redistest.Mini(t), 2)
	c := client(t, direct)
	cfg, proxy := proxied(t, direct)
	cfg.IMAP.IDLE = idle
	cfg.IMAP.PollInterval = config.Duration(200 * time.Millisecond)
	logs := &logRecorder{}
	r := runReaderWith(t, Params{Store: w.store, Config: cfg, Logger: slog.New(logs),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		Timeout: time.Second, OutageLogEvery: 300 * time.Millisecond})

	appendMsg(t, c, direct.IMAP.Mailbox, reply(0, w.tokens[0], "yes", "before-silence@example.com"))
	eventually(t, "first reply acted on", func() bool { return w.request(t, 0).Status == workflow.Applied })

	proxy.Pause()
	paused := time.Now()
	appendMsg(t, c, direct.IMAP.Mailbox, reply(1, w.tokens[1], "yes", "during-silence@example.com"))
	eventually(t, "outage logged", func() bool { return len(logs.find("imap unreachable")) > 0 })
	// Two poll intervals plus the timeout, with room for a busy machine.
	took := time.Since(paused)
	if took > 4*time.Second {
		t.Errorf("a silent server was left after %s, want about two poll intervals and the timeout", took)
	}
	t.Logf("silent server left after %s (poll interval 200ms, timeout 1s)", took)
	if level := logs.find("imap unreachable")[0].Level; level != slog.LevelWarn {
		t.Errorf("outage logged at %s, want WARN", level)
	}
	eventually(t, "outage logged again while it lasts", func() bool {
		still := logs.find("imap still unreachable")
		return len(still) > 0 && attr(still[0], "down_for") != ""
	})
	if got := w.request(t, 1).Status; got != workflow.Pending {
		t.Fatalf("request 1 is %s while the server is silent", got)
	}
	if up := testutil.ToFloat64(r.met.IMAPUp); up != 0 {
		t.Errorf("contactd_imap_up = %v during the outage, want 0", up)
	}
	polled := r.LastPoll()

	proxy.Resume()
	eventually(t, "reply sent during the silence acted on", func() bool { return w.request(t, 1).Status == workflow.Applied })
	eventually(t, "filed", func() bool { return countIn(t, c, direct.IMAP.ProcessedMailbox) == 2 })
	eventually(t, "end of the outage logged", func() bool { return len(logs.find("imap reachable again")) == 1 })
	eventually(t, "polling again", func() bool { return r.LastPoll().After(polled) })
	if up := testutil.ToFloat64(r.met.IMAPUp); up != 1 {
		t.Errorf("contactd_imap_up = %v after the outage, want 1", up)
	}
	if got := testutil.ToFloat64(r.met.LastPoll); got < float64(polled.Unix()) {
		t.Errorf("contactd_last_poll_timestamp_seconds = %v, want at least %d", got, polled.Unix())
	}
	if n := len(logs.find("imap unreachable")); n != 1 {
		t.Errorf("one outage logged as starting %d times, want once", n)
	}
}

func TestReaderLeavesSilentServer(t *testing.T) {
	for _, idle := range []bool{true, false} {
		t.Run(map[bool]string{true: "idle", false: "poll"}[idle], func(t *testing.T) {
			srv := startMemIMAP(t)
			cfg := imapConfig(t, srv.addr)
			cfg.IMAP.ProcessedMailbox = "Processed"
			silentServer(t, cfg, idle)
		})
	}
}

func TestDovecotLeavesSilentServer(t *testing.T) {
	for _, idle := range []bool{true, false} {
		t.Run(map[bool]string{true: "idle", false: "poll"}[idle], func(t *testing.T) {
			silentServer(t, dovecot(t), idle)
		})
	}
}

// silentListener accepts connections and never says anything; it
// reports each connection on the channel.
func silentListener(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 100)
	t.Cleanup(func() {
		_ = ln.Close()
		close(conns)
		for c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	return ln.Addr().String(), conns
}

// A server that accepts and never greets is given up after the timeout,
// and tried again.
func TestReaderSilentGreeting(t *testing.T) {
	addr, conns := silentListener(t)
	w := newWorld(t, redistest.Mini(t), 1)
	logs := &logRecorder{}
	runReaderWith(t, Params{Store: w.store, Config: imapConfig(t, addr), Logger: slog.New(logs),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Timeout: 200 * time.Millisecond})
	for i := range 3 {
		select {
		case <-conns:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d never came: the reader is stuck", i+1)
		}
	}
	eventually(t, "outage logged", func() bool { return len(logs.find("imap unreachable")) > 0 })
	if err := attr(logs.find("imap unreachable")[0], "err"); !strings.Contains(err, "greeting") {
		t.Errorf("outage logged with %q, want it to name the greeting", err)
	}
}

// Stopping the reader never waits on a server that does not answer,
// whatever the timeout.
func TestReaderShutdownAgainstSilentServer(t *testing.T) {
	cases := []struct {
		name string
		// silence starts the reader on a server that stops answering, and
		// returns once the reader waits on it.
		silence func(t *testing.T, w *world) (*Reader, context.CancelFunc, <-chan error)
	}{
		{"no greeting", func(t *testing.T, w *world) (*Reader, context.CancelFunc, <-chan error) {
			addr, conns := silentListener(t)
			r, cancel, done := startReader(t, w, imapConfig(t, addr))
			select {
			case <-conns:
			case <-time.After(10 * time.Second):
				t.Fatal("the reader never connected")
			}
			return r, cancel, done
		}},
		{"silent mid-session", func(t *testing.T, w *world) (*Reader, context.CancelFunc, <-chan error) {
			srv := startMemIMAP(t)
			cfg, proxy := proxied(t, imapConfig(t, srv.addr))
			r, cancel, done := startReader(t, w, cfg)
			eventually(t, "a poll", func() bool { return !r.LastPoll().IsZero() })
			proxy.Pause()
			eventually(t, "the reader waits on the silent server", func() bool { return proxy.Held() > 0 })
			return r, cancel, done
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, redistest.Mini(t), 1)
			_, cancel, done := c.silence(t, w)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("Run still waits on a silent server 3s after cancel")
			}
		})
	}
}

// startReader runs a reader whose timeout is an hour: only cancelling
// can stop its wait on a silent server.
func startReader(t *testing.T, w *world, cfg config.Config) (*Reader, context.CancelFunc, <-chan error) {
	t.Helper()
	r, err := New(Params{Store: w.store, Config: cfg, Logger: testLogger(t), Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return r, cancel, done
}

// An IDLE is ended and the mailbox read again after IdleRestart, however
// long the poll interval: a server that went silent during a long IDLE is
// found out then.
func TestReaderIdleRestarts(t *testing.T) {
	w := newWorld(t, redistest.Mini(t), 1)
	srv := startMemIMAP(t)
	cfg := imapConfig(t, srv.addr)
	cfg.IMAP.PollInterval = config.Duration(time.Hour)
	r := runReaderWith(t, Params{Store: w.store, Config: cfg, Logger: testLogger(t), IdleRestart: 100 * time.Millisecond})
	eventually(t, "first poll", func() bool { return !r.LastPoll().IsZero() })
	first := r.LastPoll()
	eventually(t, "a poll after the IDLE ended", func() bool { return r.LastPoll().After(first) })
}
