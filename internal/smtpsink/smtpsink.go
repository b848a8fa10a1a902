// Package smtpsink is an SMTP server in the caller's process that accepts
// every message and hands it to a function, counting the connections
// open at once; and a reader of the headers and validation link of the
// emails contactd sends (SPEC section 3).
package smtpsink

import (
	"bytes"
	"io"
	"log"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
)

// Message is one message the sink accepted.
type Message struct {
	From string
	To   []string
	Data []byte
	// At is when its DATA ended, before the sink answered 250.
	At time.Time
}

// Sink is the running server.
type Sink struct {
	// Addr is its loopback host:port.
	Addr   string
	srv    *smtp.Server
	handle func(Message)

	mu             sync.Mutex
	sessions, peak int
}

// Start listens on a free loopback port and calls handle for every
// message, from the session's goroutine, before answering 250.
func Start(handle func(Message)) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{Addr: ln.Addr().String(), handle: handle}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "sink.invalid"
	s.srv.ReadTimeout, s.srv.WriteTimeout = time.Minute, time.Minute
	s.srv.MaxMessageBytes = 10 << 20
	// A client killed mid-session resets its connection: not worth a line.
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Port is the port the sink listens on.
func (s *Sink) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Close stops the server and closes its connections.
func (s *Sink) Close() error { return s.srv.Close() }

// Sessions is the number of connections open now.
func (s *Sink) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// ResetPeak sets the peak to the connections open now and returns the
// peak before.
func (s *Sink) ResetPeak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peak
	s.peak = s.sessions
	return p
}

// Peak is the largest number of connections open at once since the
// start or the last ResetPeak.
func (s *Sink) Peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// NewSession implements smtp.Backend.
func (s *Sink) NewSession(*smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.sessions++
	s.peak = max(s.peak, s.sessions)
	s.mu.Unlock()
	return &session{s: s}, nil
}

type session struct {
	s      *Sink
	from   string
	to     []string
	closed bool
}

func (x *session) Reset() { x.from, x.to = "", nil }

func (x *session) Logout() error {
	if !x.closed {
		x.closed = true
		x.s.mu.Lock()
		x.s.sessions--
		x.s.mu.Unlock()
	}
	return nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error { x.from = from; return nil }

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error { x.to = append(x.to, to); return nil }

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.handle(Message{From: x.from, To: x.to, Data: b, At: time.Now()})
	return nil
}

// Email is what a reader of contactd's emails needs of one.
type Email struct {
	// Kind and Request are the X-Contactd-Kind and X-Contactd-Request
	// headers.
	Kind, Request string
	MessageID     string
	// Link is the validation link ({base_url}/v/{token}) of the text
	// part, and Token its last segment (also the validation code); both
	// are read only from validation emails.
	Link, Token string
}

// linkRe finds a validation link in an email's text.
var linkRe = regexp.MustCompile(`https?://[^\s"<>]+/v/[a-z2-7]{16,}`)

// Parse reads an email's contactd headers and, for a validation email,
// the link of its text part (quoted-printable or base64 decoded).
func Parse(data []byte) (Email, error) {
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		return Email{}, err
	}
	defer mr.Close()
	h := mr.Header
	e := Email{Kind: h.Get("X-Contactd-Kind"), Request: h.Get("X-Contactd-Request"), MessageID: h.Get("Message-Id")}
	if e.Kind != "validation" {
		return e, nil
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return e, err
		}
		ih, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			continue
		}
		if ct, _, _ := ih.ContentType(); ct != "text/plain" {
			continue
		}
		text, err := io.ReadAll(p.Body)
		if err != nil {
			return e, err
		}
		e.Link = linkRe.FindString(string(text))
		e.Token = e.Link[strings.LastIndexByte(e.Link, '/')+1:]
		break
	}
	return e, nil
}
