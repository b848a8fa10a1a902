// Package mailhub is a small mail system in one process, for the demo and
// the end-to-end tests: an SMTP server that files every message it
// receives in its recipient's IMAP mailbox, and an IMAP server to read
// them. Plus-addressed recipients (local+tag@domain) land in local@domain.
package mailhub

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
)

// Message is one delivered message as a recipient's mailbox holds it.
type Message struct {
	From string
	To   string // the address as the sender wrote it
	Data []byte
	At   time.Time
}

// Hub is the running mail system.
type Hub struct {
	// SMTPAddr and IMAPAddr are the loopback addresses of the servers.
	SMTPAddr, IMAPAddr string

	mem  *imapmemserver.Server
	smtp *smtp.Server
	imap *imapserver.Server

	mu       sync.Mutex
	users    map[string]*imapmemserver.User
	messages map[string][]Message
	notify   chan struct{}
}

// Start runs both servers on 127.0.0.1 ports chosen by the system.
func Start() (*Hub, error) {
	h := &Hub{mem: imapmemserver.New(), users: map[string]*imapmemserver.User{},
		messages: map[string][]Message{}, notify: make(chan struct{})}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	il, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sl.Close()
		return nil, err
	}
	h.SMTPAddr, h.IMAPAddr = sl.Addr().String(), il.Addr().String()
	h.smtp = smtp.NewServer(backend{h})
	h.smtp.Domain = "localhost"
	h.smtp.AllowInsecureAuth = true
	h.smtp.ReadTimeout = time.Minute
	h.smtp.WriteTimeout = time.Minute
	h.imap = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return h.mem.NewSession(), nil, nil
		},
		InsecureAuth: true,
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
	})
	go func() { _ = h.smtp.Serve(sl) }()
	go func() { _ = h.imap.Serve(il) }()
	return h, nil
}

// Close stops both servers.
func (h *Hub) Close() {
	_ = h.smtp.Close()
	_ = h.imap.Close()
}

// mailbox returns the canonical mailbox address of a recipient: lower
// case, sub-address removed.
func mailbox(addr string) string {
	addr = strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>"))
	local, domain, ok := strings.Cut(addr, "@")
	if !ok {
		return addr
	}
	local, _, _ = strings.Cut(local, "+")
	return local + "@" + domain
}

// AddUser creates the IMAP account of an address (its login is the
// address) with an INBOX. Delivering to an unknown address creates it
// with an empty password.
func (h *Hub) AddUser(address, password string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addUserLocked(mailbox(address), password)
}

func (h *Hub) addUserLocked(box, password string) *imapmemserver.User {
	if u := h.users[box]; u != nil {
		return u
	}
	u := imapmemserver.NewUser(box, password)
	_ = u.Create("INBOX", nil)
	h.mem.AddUser(u)
	h.users[box] = u
	return u
}

// Deliver files a message in the INBOX of each recipient, as the SMTP
// server does; tests use it to send replies.
func (h *Hub) Deliver(from string, to []string, data []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, rcpt := range to {
		box := mailbox(rcpt)
		u := h.addUserLocked(box, "")
		if _, err := u.Append("INBOX", literal{bytes.NewReader(data), int64(len(data))}, &imap.AppendOptions{}); err != nil {
			return fmt.Errorf("mailhub: deliver to %s: %w", box, err)
		}
		h.messages[box] = append(h.messages[box], Message{From: from, To: rcpt, Data: data, At: time.Now()})
	}
	close(h.notify)
	h.notify = make(chan struct{})
	return nil
}

// Messages returns a copy of what was delivered to an address so far.
func (h *Hub) Messages(address string) []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Message(nil), h.messages[mailbox(address)]...)
}

// Wait waits until an address holds a message for which match is true and
// returns it, or fails after timeout.
func (h *Hub) Wait(address string, timeout time.Duration, match func(Message) bool) (Message, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		for _, m := range h.messages[mailbox(address)] {
			if match(m) {
				h.mu.Unlock()
				return m, nil
			}
		}
		ch := h.notify
		h.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return Message{}, fmt.Errorf("mailhub: no matching message for %s within %v", address, timeout)
		}
	}
}

type literal struct {
	io.Reader
	size int64
}

func (l literal) Size() int64 { return l.size }

type backend struct{ h *Hub }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{h: b.h}, nil }

// session accepts any sender and any recipient, with or without AUTH.
type session struct {
	h    *Hub
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !strings.Contains(to, "@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "bad recipient address"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(s.to) == 0 {
		return errors.New("no recipients")
	}
	return s.h.Deliver(s.from, s.to, data)
}
