package mailer

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/internal/redistest"

	"github.com/emersion/go-smtp"
)

// A refusal is typed by the server's reply: 5xx permanent, 4xx or no
// reply temporary; a 5xx at RCPT TO is the recipient's. The sender then
// delivers the next email over a new connection.
func TestSendErrorTyping(t *testing.T) {
	reply := func(code int) error {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: "refused"}
	}
	for _, tc := range []struct {
		name      string
		stage     string // the sink's stage: mail, rcpt or data
		err       error  // nil: the connection is dropped in DATA
		code      int
		permanent bool
		recipient bool
	}{
		{"421 at MAIL FROM", "mail", reply(421), 421, false, false},
		{"550 at MAIL FROM", "mail", reply(550), 550, true, false},
		{"451 at RCPT TO", "rcpt", reply(451), 451, false, false},
		{"550 at RCPT TO", "rcpt", reply(550), 550, true, true},
		{"451 after DATA", "data", reply(451), 451, false, false},
		{"554 after DATA", "data", reply(554), 554, true, false},
		{"connection dropped in DATA", "data", nil, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, snd, srv, _ := mailerAndSink(t)
			srv.mu.Lock()
			if tc.err == nil {
				srv.dropData = 1
			}
			srv.fault = func(stage string, n int, _ string) error {
				if stage == tc.stage && n == 0 {
					return tc.err
				}
				return nil
			}
			srv.mu.Unlock()
			err := sendTo(m, snd, "Zed", "zed@example.net")
			var se *SendError
			if !errors.As(err, &se) {
				t.Fatalf("send = %v (%T), want a *SendError", err, err)
			}
			if se.Code != tc.code || se.Permanent != tc.permanent || se.Recipient != tc.recipient || se.Dial {
				t.Errorf("SendError{Code: %d, Permanent: %v, Recipient: %v, Dial: %v}, want {%d, %v, %v, false}",
					se.Code, se.Permanent, se.Recipient, se.Dial, tc.code, tc.permanent, tc.recipient)
			}
			if isPermanent(err) != tc.permanent {
				t.Errorf("isPermanent = %v, want %v", isPermanent(err), tc.permanent)
			}
			if want := strings.ToUpper(tc.stage); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the stage %s", err, want)
			}
			if err := sendTo(m, snd, "Zed", "zed@example.net"); err != nil {
				t.Errorf("the next email: %v", err)
			}
			if got := len(srv.received()); got != 1 {
				t.Errorf("%d emails received, want the second one", got)
			}
		})
	}
}

// An email refused after DATA with a 5xx is not tried again: its entry is
// dead after one attempt.
func TestRefusedAtDataIsDeadAtOnce(t *testing.T) {
	s := newStore(t, redistest.Mini(t))
	srv := startSink(t, "")
	srv.fault = func(stage string, _ int, _ string) error {
		if stage == "data" {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "content refused"}
		}
		return nil
	}
	sendOne(t, s)
	m := newMailer(t, s, testConfig(srv.port()), 1)
	start(t, m)
	waitDrained(t, s, 10*time.Second)
	if got := srv.callsTo("data"); got != 1 {
		t.Errorf("DATA sent %d times, want 1", got)
	}
	if n, err := m.DeadCount(context.Background()); err != nil || n != 1 {
		t.Errorf("DeadCount = %d, %v; want 1", n, err)
	}
	if raw := rawEntry(t, s); !strings.Contains(raw, "554") || !strings.Contains(raw, `"attempts":1`) {
		t.Errorf("dead entry %s: want the 554 and one attempt", raw)
	}
}

// connListener keeps the connections it accepts, so that a test can close
// them from the server's side.
type connListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// dropAll closes every connection accepted and returns how many.
func (l *connListener) dropAll() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	n := len(l.conns)
	l.conns = nil
	return n
}

// A kept connection the server closed while idle is dialled again at
// once: the email goes out, and no error reaches the caller.
func TestClosedIdleConnectionIsRedialled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &connListener{Listener: ln}
	srv := startSinkOn(t, cl)
	m := newMailer(t, newStore(t, redistest.Mini(t)), testConfig(srv.port()), 1)
	snd := newSender(m.cfg.SMTP, 5*time.Second, nil, nil)
	t.Cleanup(snd.close)
	if err := sendTo(m, snd, "Zed", "zed@example.net"); err != nil {
		t.Fatal(err)
	}
	if n := cl.dropAll(); n != 1 {
		t.Fatalf("%d connections open, want 1", n)
	}
	if err := sendTo(m, snd, "Zed", "zed@example.net"); err != nil {
		t.Fatalf("send over a connection the server closed: %v", err)
	}
	if got := len(srv.received()); got != 2 {
		t.Errorf("%d emails received, want 2", got)
	}
	if n := cl.dropAll(); n != 1 {
		t.Errorf("%d new connections, want 1", n)
	}
}
