package mailer

import (
	"bytes"
	"context"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"contactd/internal/redistest"
	"contactd/templates"
	"contactd/workflow"
)

// rcptLog keeps the RCPT TO arguments a sink receives, in order.
type rcptLog struct {
	mu    sync.Mutex
	rcpts []string
}

// recordRcpts makes srv log every RCPT TO argument, and accept it.
func recordRcpts(srv *sink) *rcptLog {
	l := &rcptLog{}
	srv.mu.Lock()
	srv.fault = func(stage string, _ int, arg string) error {
		if stage == "rcpt" {
			l.mu.Lock()
			l.rcpts = append(l.rcpts, arg)
			l.mu.Unlock()
		}
		return nil
	}
	srv.mu.Unlock()
	return l
}

// take returns the arguments logged since the last call.
func (l *rcptLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.rcpts
	l.rcpts = nil
	return out
}

// takeReceived returns the messages srv kept since the last call.
func takeReceived(srv *sink) [][]byte {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := srv.msgs
	srv.msgs = nil
	return out
}

// testEntry is an outbox entry of kind about request, as the mailer
// reads it.
func testEntry(kind, request string) *workflow.OutboxEntry {
	return &workflow.OutboxEntry{Message: workflow.Message{Kinds: []workflow.Kind{workflow.Kind(kind)}, Request: request}}
}

// sendTo builds a "recorded" email to name <addr> and sends it with snd.
func sendTo(m *Mailer, snd *sender, name, addr string) error {
	l := &letter{to: addr, toName: name, request: "r1"}
	msg, _, err := m.buildMsg(l, testEntry("recorded", "r1"), &templates.Email{Subject: "Your answer is recorded",
		Text: "Thank you.", HTML: "<p>Thank you.</p>"})
	if err != nil {
		return err
	}
	return snd.sendMsg(context.Background(), msg)
}

// mailerAndSink returns a mailer (not running), a sender of its own and
// a sink logging the RCPT TO arguments.
func mailerAndSink(t testing.TB) (*Mailer, *sender, *sink, *rcptLog) {
	srv := startSink(t, "")
	rcpts := recordRcpts(srv)
	m := newMailer(t, newStore(t, redistest.Mini(t)), testConfig(srv.port()), 1)
	snd := newSender(m.cfg.SMTP, 5*time.Second, nil, nil)
	t.Cleanup(snd.close)
	return m, snd, srv, rcpts
}

// readTo parses the message and its To header.
func readTo(t *testing.T, raw []byte) (*mail.Message, []*mail.Address) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, raw)
	}
	to, err := mail.ParseAddressList(msg.Header.Get("To"))
	if err != nil {
		t.Fatalf("To %q does not parse: %v", msg.Header.Get("To"), err)
	}
	return msg, to
}

// Any display name a contact can have reaches that contact, and is shown
// as it is: the envelope and the To header name exactly its address.
func FuzzRecipient(f *testing.F) {
	m, snd, srv, rcpts := mailerAndSink(f)
	const addr = "zed@example.net"
	f.Fuzz(func(t *testing.T, name string) {
		if err := sendTo(m, snd, name, addr); err != nil {
			t.Fatalf("name %q: %v", name, err)
		}
		got := takeReceived(srv)
		if env := rcpts.take(); len(env) != 1 || env[0] != addr || len(got) != 1 {
			t.Fatalf("name %q: RCPT TO %q and %d messages, want %s and 1", name, env, len(got), addr)
		}
		msg, to := readTo(t, got[0])
		if len(to) != 1 || to[0].Address != addr || to[0].Name != templates.OneLine(name) {
			t.Fatalf("name %q: To %q parses as %q, want %q <%s>", name, msg.Header.Get("To"), to,
				templates.OneLine(name), addr)
		}
		for _, h := range []string{"Cc", "Bcc"} {
			if v, ok := msg.Header[h]; ok {
				t.Errorf("name %q added a %s header: %q", name, h, v)
			}
		}
	})
}

// A contact's address is taken as the directory has it, or refused for
// good (the entry goes dead, the error names the address) when it is not
// one bare address.
func TestRecipientAddress(t *testing.T) {
	m, snd, srv, rcpts := mailerAndSink(t)
	for _, tc := range []struct {
		addr string
		want string // "" when refused
	}{
		{"zed@example.net", "zed@example.net"},
		{"  zed@example.net\t", "zed@example.net"},
		{"zed+contacts@example.net", "zed+contacts@example.net"},
		{"<zed@example.net>", "zed@example.net"},
		{"Zed <zed@example.net>", ""},
		{"zed@example.net (Zed)", ""},
		{"zed", ""},
		{"", ""},
		{"zed@example.net, eve@example.org", ""},
		{"zed@example.net\r\nBcc: eve@example.org", ""},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := sendTo(m, snd, "Zed", tc.addr)
			got, env := takeReceived(srv), rcpts.take()
			if tc.want == "" {
				if !isPermanent(err) || !strings.Contains(err.Error(), "recipient address") || len(got) != 0 {
					t.Fatalf("sendTo(%q) = %v with %d messages sent; want a permanent error about the recipient address and none",
						tc.addr, err, len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(env) != 1 || env[0] != tc.want || len(got) != 1 {
				t.Fatalf("RCPT TO %q and %d messages, want %s and 1", env, len(got), tc.want)
			}
			if _, to := readTo(t, got[0]); len(to) != 1 || to[0].Address != tc.want || to[0].Name != "Zed" {
				t.Errorf("To = %q, want Zed <%s>", to, tc.want)
			}
		})
	}
}

// smtp.from's display name is written by the same rules: quotes, commas
// and non-ASCII letters come back as configured.
func TestFromDisplayName(t *testing.T) {
	for _, name := range []string{`Contacts`, `Example, Inc. "Contacts"`, `Équipe des contacts 📇`, `a\b <c@d>`} {
		t.Run(name, func(t *testing.T) {
			srv := startSink(t, "")
			cfg := testConfig(srv.port())
			cfg.SMTP.From = (&mail.Address{Name: name, Address: "contacts@example.com"}).String()
			m := newMailer(t, newStore(t, redistest.Mini(t)), cfg, 1)
			snd := newSender(cfg.SMTP, 5*time.Second, nil, nil)
			t.Cleanup(snd.close)
			if err := sendTo(m, snd, "Zed", "zed@example.net"); err != nil {
				t.Fatal(err)
			}
			msg, _ := readTo(t, srv.received()[0])
			from, err := mail.ParseAddressList(msg.Header.Get("From"))
			if err != nil || len(from) != 1 || from[0].Name != name || from[0].Address != "contacts@example.com" {
				t.Errorf("From %q parses as %q, %v; want %q <contacts@example.com>", msg.Header.Get("From"), from, err, name)
			}
		})
	}
}

// hostileYAML adds a contact whose name is made to break addresses and
// pages, and a service whose tech contact becomes that contact.
const hostileYAML = `contacts:
  - {nic: zd1-ovh, email: zed@example.net, name: 'Zed "><img src=x>', language: en}
`

// A contact named like an HTML injection is asked for approval like any
// other: the email reaches its address, and the name is shown, not run.
func TestHostileNameGetsEmail(t *testing.T) {
	s := newStore(t, redistest.Mini(t))
	if _, err := s.Import(context.Background(), []byte(hostileYAML)); err != nil {
		t.Fatal(err)
	}
	srv := startSink(t, "")
	rcpts := recordRcpts(srv)
	if _, err := s.Create(context.Background(), workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
		Changes: map[string]string{"tech": "zd1-ovh"}}, workflow.API); err != nil {
		t.Fatal(err)
	}
	start(t, newMailer(t, s, testConfig(srv.port()), 1))
	waitDrained(t, s, 10*time.Second)
	if n := len(deadRefs(t, s)); n != 0 {
		t.Errorf("%d dead entries, want none", n)
	}
	env := strings.Join(rcpts.take(), " ")
	if !strings.Contains(env, "zed@example.net") {
		t.Fatalf("RCPT TO %s: no email to zed@example.net", env)
	}
	for _, raw := range srv.received() {
		p := parse(t, raw)
		if p.to != "zed@example.net" {
			continue
		}
		if _, to := readTo(t, raw); to[0].Name != `Zed "><img src=x>` {
			t.Errorf("To display name = %q", to[0].Name)
		}
		if p.h.Get("X-Contactd-Kind") != "validation" || strings.Contains(p.html, "<img src=x>") {
			t.Errorf("email of kind %q to Zed, HTML part:\n%s", p.h.Get("X-Contactd-Kind"), p.html)
		}
		return
	}
	t.Fatalf("no message received with To zed@example.net")
}

// Any display name, one line or not (smtp.from's is not reduced by
// templates.OneLine), is written so that net/mail reads back exactly that
// name and address.
func FuzzFormatAddress(f *testing.F) {
	for _, name := range []string{`Zed "><img src=x>`, "Zoë \\ Ünïcødé", "tab\there", "  spaced  out  ", "🦊"} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !utf8.ValidString(name) {
			t.Skip("not UTF-8")
		}
		in := &mail.Address{Name: name, Address: "contacts@example.com"}
		s := formatAddress(in)
		got, err := mail.ParseAddress(strings.ReplaceAll(s, "\r\n ", " "))
		if err != nil || got.Name != name || got.Address != in.Address {
			t.Fatalf("name %q written %q, read back as %+v, %v", name, s, got, err)
		}
		// Lines stay within RFC 5322's limit for any name up to a few
		// hundred bytes (an ASCII name is one quoted string, not folded).
		for _, line := range strings.Split(s, "\r\n") {
			if len(name) <= 400 && len(line) > 998-len("From: ") {
				t.Errorf("name %q: line of %d characters", name, len(line))
			}
		}
	})
}
