package inbox

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// session is one connection to the IMAP server. Every exchange with the
// server runs under a deadline: a server that does not answer in time
// (stopped, or behind a NAT or firewall that dropped the connection
// without a word) has its connection closed, which ends the exchange
// with an error, and the reader connects again.
type session struct {
	c       *imapclient.Client
	timeout time.Duration
	// ctx ends when the connection is given up: the reader stopping, or
	// an exchange past its deadline (the cause says which).
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   func() bool
}

// exchange runs f, one exchange with the server named what, and gives
// the connection up when f has not returned within the timeout.
func (s *session) exchange(what string, f func() error) error {
	t := time.AfterFunc(s.timeout, func() {
		s.cancel(fmt.Errorf("inbox: %s: no answer from the server within %s", what, s.timeout))
	})
	err := f()
	if !t.Stop() {
		return context.Cause(s.ctx)
	}
	if err != nil {
		if cause := context.Cause(s.ctx); cause != nil && s.ctx.Err() != nil {
			return cause
		}
		return fmt.Errorf("inbox: %s: %w", what, err)
	}
	return nil
}

// close ends the session and its connection.
func (s *session) close() {
	s.cancel(context.Canceled)
	s.stop()
	if s.c != nil {
		_ = s.c.Close()
	}
}

// dial opens a session with imap.host:imap.port as imap.tls says: the
// TCP connection, the TLS handshake and the greeting each under the
// deadline, and the connection closed as soon as ctx ends.
func (r *Reader) dial(ctx context.Context, opts *imapclient.Options) (*session, error) {
	cfg := r.p.Config.IMAP
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	sctx, cancel := context.WithCancelCause(ctx)
	s := &session{timeout: r.p.Timeout, ctx: sctx, cancel: cancel, stop: func() bool { return false }}
	d := &net.Dialer{Timeout: r.p.Timeout, KeepAlive: 15 * time.Second}
	conn, err := d.DialContext(sctx, "tcp", addr)
	if err != nil {
		cancel(err)
		return nil, fmt.Errorf("inbox: connect to %s: %w", addr, err)
	}
	// From here on, giving the session up closes the connection, which
	// unblocks whatever waits on it.
	s.stop = context.AfterFunc(sctx, func() { _ = conn.Close() })
	if err := r.greet(s, conn, opts); err != nil {
		s.close()
		return nil, fmt.Errorf("inbox: connect to %s: %w", addr, err)
	}
	return s, nil
}

// greet sets up TLS as imap.tls says and waits for the server's greeting.
func (r *Reader) greet(s *session, conn net.Conn, opts *imapclient.Options) error {
	cfg := r.p.Config.IMAP
	switch cfg.TLS {
	case "none":
		s.c = imapclient.New(conn, opts)
	case "starttls":
		return s.exchange("starttls", func() error {
			c, err := imapclient.NewStartTLS(conn, opts)
			s.c = c
			return err
		})
	default:
		tlsConfig := opts.TLSConfig.Clone()
		if tlsConfig.NextProtos == nil {
			tlsConfig.NextProtos = []string{"imap"}
		}
		tc := tls.Client(conn, tlsConfig)
		if err := s.exchange("tls handshake", func() error { return tc.HandshakeContext(s.ctx) }); err != nil {
			return err
		}
		s.c = imapclient.New(tc, opts)
	}
	return s.exchange("greeting", s.c.WaitGreeting)
}
