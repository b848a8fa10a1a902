package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
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
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

const (
	imapUser     = "contacts"
	imapPassword = "secret"
)

// memIMAP is an in-process IMAP server with one user and an INBOX.
type memIMAP struct {
	mem    *imapmemserver.Server
	server *imapserver.Server
	addr   string
	// refuseMove makes every MOVE fail while set, as when a reader is
	// stopped after flagging its messages and before moving them.
	refuseMove atomic.Bool
}

// moveSwitch is a session whose MOVE fails while its server says so.
type moveSwitch struct {
	imapserver.SessionIMAP4rev2
	m *memIMAP
}

func (s moveSwitch) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if s.m.refuseMove.Load() {
		return errors.New("test: MOVE refused")
	}
	return s.SessionIMAP4rev2.Move(w, numSet, dest)
}

func startMemIMAP(t testing.TB) *memIMAP {
	t.Helper()
	m := &memIMAP{mem: imapmemserver.New()}
	user := imapmemserver.NewUser(imapUser, imapPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	m.mem.AddUser(user)
	m.listen(t, "127.0.0.1:0")
	return m
}

// listen serves the same mailboxes on addr (again, after stop).
func (m *memIMAP) listen(t testing.TB, addr string) {
	t.Helper()
	m.server = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return moveSwitch{SessionIMAP4rev2: m.mem.NewSession().(imapserver.SessionIMAP4rev2), m: m}, nil, nil
		},
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
	})
	var ln net.Listener
	var err error
	for range 50 { // the port of a stopped server may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	srv := m.server
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func (m *memIMAP) stop() { _ = m.server.Close() }

// imapConfig is a configuration reading the server at addr.
func imapConfig(t testing.TB, addr string) config.Config {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.IMAP.Host = host
	fmt.Sscan(port, &cfg.IMAP.Port)
	cfg.IMAP.TLS = "none"
	cfg.IMAP.Username = imapUser
	cfg.IMAP.Password = imapPassword
	cfg.IMAP.PollInterval = config.Duration(200 * time.Millisecond)
	cfg.IMAP.ReplyAddress = "contacts@example.com"
	return cfg
}

// client logs in to the server at addr for a test to append and look.
func client(t testing.TB, cfg config.Config) *imapclient.Client {
	t.Helper()
	c, err := dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dial connects and logs in to the server of cfg.
func dial(cfg config.Config) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(fmt.Sprintf("%s:%d", cfg.IMAP.Host, cfg.IMAP.Port), nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(cfg.IMAP.Username, cfg.IMAP.Password).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func appendMsg(t testing.TB, c *imapclient.Client, mailbox, raw string) {
	t.Helper()
	if err := tryAppend(c, mailbox, raw); err != nil {
		t.Fatal(err)
	}
}

// tryAppend appends a message written with any line endings; it may be
// called from any goroutine.
func tryAppend(c *imapclient.Client, mailbox, raw string) error {
	raw = strings.ReplaceAll(strings.ReplaceAll(raw, "\r\n", "\n"), "\n", "\r\n")
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	if _, err := io.WriteString(cmd, raw); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// countIn returns the number of messages in a mailbox: 0 if the server
// says it does not exist (the reader creates it when it first files
// there), and any other error fails the test, so that waiting for an
// empty mailbox never passes on a broken connection. It calls t.Fatalf:
// call it from the test's goroutine only.
func countIn(t testing.TB, c *imapclient.Client, mailbox string) int {
	t.Helper()
	st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	var imapErr *imap.Error
	if errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeNonExistent {
		return 0
	}
	if err != nil {
		t.Fatalf("counting the messages in %s: %v", mailbox, err)
	}
	return int(*st.NumMessages)
}

// eventually waits until f holds, failing after a generous deadline.
func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// world is a store with n services, each with one open request whose
// only approver is its admin (taking over the tech role), and a token
// for each.
type world struct {
	store  *workflow.Store
	b      redistest.Backend
	ids    []string
	tokens []string
}

func directory(n int) string {
	var b strings.Builder
	b.WriteString("contacts:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {nic: ad%d-ovh, email: admin%d@example.com, name: Admin %d, language: en}\n", i, i, i)
		fmt.Fprintf(&b, "  - {nic: te%d-ovh, email: tech%d@example.com, name: Tech %d, language: fr}\n", i, i, i)
	}
	b.WriteString("services:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {id: s%d.example.com, kind: domain, admin: ad%d-ovh, tech: te%d-ovh, billing: ad%d-ovh}\n", i, i, i, i)
	}
	return b.String()
}

func newWorld(t testing.TB, b redistest.Backend, n int) *world {
	t.Helper()
	ctx := context.Background()
	s, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`,
		RequestTTL: 336 * time.Hour, RemindAfter: 48 * time.Hour, MaxReminders: 2, ReportWindow: 720 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, []byte(directory(n))); err != nil {
		t.Fatal(err)
	}
	w := &world{store: s, b: b}
	for i := range n {
		nic := fmt.Sprintf("ad%d-ovh", i)
		r, err := s.Create(ctx, workflow.Ask{Service: fmt.Sprintf("s%d.example.com", i), Requester: nic,
			Changes: map[string]string{"tech": nic}}, workflow.API)
		if err != nil {
			t.Fatal(err)
		}
		tok := outboxtest.Pending(t, s, outboxtest.Of(r.ID, nic, workflow.KindValidation))
		w.ids = append(w.ids, r.ID)
		w.tokens = append(w.tokens, tok)
	}
	return w
}

// sent returns the Message-ID of the validation email to approver i of
// the world, as the mailer writes it: it names the token the email
// carries, so that a reply or a delivery report quoting it is matched.
func (w *world) sent(t testing.TB, i int) string {
	t.Helper()
	id := w.ids[i]
	shard := strings.IndexByte("abcdefghijklmnopqrstuvwxyz234567", id[0])
	e := &workflow.OutboxEntry{Message: workflow.Message{Request: id, At: 1}, Shard: shard, ID: "1",
		TokenRef: workflow.HashToken(w.tokens[i])}
	return workflow.MessageID(e, workflow.KindValidation, "contactd.example.com")
}

func (w *world) request(t testing.TB, i int) *workflow.Request {
	t.Helper()
	r, err := w.store.Get(context.Background(), w.ids[i])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// historyCount counts events of a request's history named event.
func historyCount(r *workflow.Request, event string) int {
	n := 0
	for _, e := range r.History {
		if e.Event == event {
			n++
		}
	}
	return n
}

// outboxKinds lists the outbox messages of the given kind.
func outboxOf(t testing.TB, w *world, kind string) []workflow.Message {
	t.Helper()
	ctx := context.Background()
	var out []workflow.Message
	for n := 0; n < workflow.Shards; n++ {
		all, err := w.b.Client.HGetAll(ctx, workflow.Keys{Prefix: w.b.Prefix}.Outbox(n)).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range all {
			var m workflow.Message
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				t.Fatal(err)
			}
			if len(m.Kinds) > 0 && string(m.Kinds[0]) == kind {
				out = append(out, m)
			}
		}
	}
	return out
}

// reply writes a plain reply from approver i of the world.
func reply(i int, token, text, messageID string) string {
	return fmt.Sprintf("From: Admin %d <admin%d@example.com>\r\nTo: contacts+%s@example.com\r\n"+
		"Subject: Re: Change of contacts\r\nMessage-ID: <%s>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\nOn Mon, 2 Mar 2026, Contacts wrote:\r\n> reply ACCEPT or DECLINE\r\n",
		i, i, token, messageID, text)
}

// runReader starts a Reader; it is stopped, and must have returned, at
// the end of the test.
func runReader(t testing.TB, w *world, cfg config.Config) *Reader {
	t.Helper()
	return runReaderWith(t, Params{Store: w.store, Config: cfg, Logger: testLogger(t),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
}

// runReaderWith starts a Reader of p, stopped like runReader's.
func runReaderWith(t testing.TB, p Params) *Reader {
	t.Helper()
	r, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return r
}

// startReaderWith runs a Reader of p until stop is called (or the test
// ends); stop returns once Run has.
func startReaderWith(t testing.TB, p Params) (r *Reader, stop func()) {
	t.Helper()
	r, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// wrappedStore is the world's store with DecideReply replaced by decide,
// which may call the store's own (next).
type wrappedStore struct {
	*workflow.Store
	decide func(ctx context.Context, r workflow.Reply, next decideFunc) (*workflow.ReplyOutcome, error)
}

type decideFunc = func(ctx context.Context, r workflow.Reply) (*workflow.ReplyOutcome, error)

func (s *wrappedStore) DecideReply(ctx context.Context, r workflow.Reply) (*workflow.ReplyOutcome, error) {
	return s.decide(ctx, r, s.Store.DecideReply)
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
