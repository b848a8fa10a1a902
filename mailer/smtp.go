package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"contactd/config"
	"contactd/internal/oauth2cmd"

	gomail "github.com/wneessen/go-mail"
)

// SendError is a failed delivery. Permanent is true when the server
// refused the email for good (a 5xx reply): it will not be tried again.
// Code is the server's reply code, 0 when there was none (a connection
// failure, a timeout).
type SendError struct {
	Code      int
	Permanent bool
	// Recipient is true when the server refused the recipient's address.
	Recipient bool
	// Dial is true when no connection could be opened (server down,
	// refused login): the email is not at fault, the attempt not counted.
	Dial bool
	Err  error
}

// Error says whether the failure is permanent, with the reply code.
func (e *SendError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("mailer: %s failure, code %d: %v", kind, e.Code, e.Err)
	}
	return fmt.Sprintf("mailer: %s failure: %v", kind, e.Err)
}

// Unwrap returns the underlying failure.
func (e *SendError) Unwrap() error { return e.Err }

// permanent marks err as not worth trying again.
func permanent(err error) error { return &SendError{Permanent: true, Err: err} }

// isPermanent reports whether err says the delivery can never succeed.
func isPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}

// classify turns a go-mail failure into a SendError.
func classify(err error) *SendError {
	var ge *gomail.SendError
	if errors.As(err, &ge) {
		code := ge.ErrorCode()
		return &SendError{Code: code, Permanent: code >= 500 && code < 600,
			Recipient: ge.Reason == gomail.ErrSMTPRcptTo && code >= 500, Err: err}
	}
	return &SendError{Err: err}
}

// sender is one worker's connection to the SMTP server, dialled on first
// use and kept for the following emails.
type sender struct {
	cfg     config.SMTP
	timeout time.Duration
	dkim    *gomail.DKIMSigner
	tls     *tls.Config
	client  *gomail.Client
	// used is true once an email went through the current connection.
	used bool
}

func newSender(cfg config.SMTP, timeout time.Duration, dkim *gomail.DKIMSigner, tc *tls.Config) *sender {
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	return &sender{cfg: cfg, timeout: timeout, dkim: dkim, tls: tc}
}

// dial opens the connection: TLS as smtp.tls says, then authentication
// when a username is set. With auth xoauth2 the access token is read from
// oauth2_token_command at each dial, so a refused token is replaced by
// the next connection.
func (s *sender) dial(ctx context.Context) error {
	opts := []gomail.Option{gomail.WithPort(s.cfg.Port), gomail.WithTimeout(s.timeout), gomail.WithoutNoop(),
		gomail.WithTLSConfig(s.tls)}
	switch s.cfg.TLS {
	case "tls":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		secret, auth := s.cfg.Password, gomail.SMTPAuthAutoDiscover
		if s.cfg.Auth == "xoauth2" {
			tok, err := oauth2cmd.Token(ctx, "smtp.oauth2_token_command", s.cfg.OAuth2TokenCommand, s.timeout)
			if err != nil {
				return err
			}
			secret, auth = tok, gomail.SMTPAuthXOAUTH2
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(secret))
	}
	if s.dkim != nil {
		opts = append(opts, gomail.WithAlwaysDKIMSign(s.dkim))
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		opts = append(opts, gomail.WithHELO(h))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("mailer: smtp client: %w", err)
	}
	if err := c.DialWithContext(ctx); err != nil {
		return err
	}
	s.client, s.used = c, false
	return nil
}

// send delivers msg, dialling first when there is no connection. A
// connection that had been idle and turns out closed at the first command
// is dialled again once at once: that is not a failed attempt.
func (s *sender) send(ctx context.Context, msg *gomail.Msg) error {
	for try := 0; ; try++ {
		if err := s.connect(ctx); err != nil {
			return err
		}
		reused := s.used
		err := s.client.Send(msg)
		if err == nil {
			s.used = true
			return nil
		}
		se := classify(err)
		s.close()
		var ge *gomail.SendError
		stale := errors.As(err, &ge) && ge.Reason == gomail.ErrSMTPMailFrom && se.Code == 0
		if !(reused && stale && try == 0) {
			return se
		}
	}
}

// connect dials when there is no connection. Its failure is a temporary
// SendError with Dial set, whatever the server answered.
func (s *sender) connect(ctx context.Context) error {
	if s.client != nil {
		return nil
	}
	if err := s.dial(ctx); err != nil {
		se := classify(err)
		se.Permanent, se.Recipient, se.Dial = false, false, true
		return se
	}
	return nil
}

// isDial reports whether err is a failure to connect.
func isDial(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Dial
}

// close ends the connection, politely when it can.
func (s *sender) close() {
	if s.client != nil {
		_ = s.client.Close()
		s.client = nil
	}
}

// loadDKIM reads the signing key of smtp.dkim, or returns nil when DKIM is
// not configured.
func loadDKIM(d config.DKIM) (*gomail.DKIMSigner, error) {
	if d.Domain == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(d.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("mailer: smtp.dkim.private_key_file: %w", err)
	}
	key, err := gomail.PrivKeyFromPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("mailer: smtp.dkim.private_key_file: %w", err)
	}
	signer := gomail.NewDKIMSigner(d.Domain, d.Selector, key)
	signer.HeaderCanonicalization(gomail.CanonicalizationRelaxed)
	signer.BodyCanonicalization(gomail.CanonicalizationRelaxed)
	// Reply-To carries the token: it is signed with the usual headers. (With
	// go-mail 0.8.1, listing In-Reply-To, References or X- headers here
	// yields signatures that do not verify; the test checks what is signed.)
	signer.SignHeaders("From", "To", "Reply-To", "Subject", "Date", "Message-ID", "Content-Type", "MIME-Version")
	if err := signer.ValidateConfig(); err != nil {
		return nil, fmt.Errorf("mailer: smtp.dkim: %w", err)
	}
	return signer, nil
}
