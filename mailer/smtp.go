package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"os"
	"time"

	"contactd/config"
	"contactd/internal/oauth2cmd"

	"github.com/emersion/go-msgauth/dkim"
	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
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
	// stage is where the transaction failed: dial, MAIL FROM, RCPT TO or
	// DATA.
	stage string
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

// The stages of a mail transaction, as a SendError names them.
const (
	stageDial = "dial"
	stageMail = "MAIL FROM"
	stageRcpt = "RCPT TO"
	stageData = "DATA"
)

// failure types err, met at stage, by the server's reply code when there
// was one: 5xx is permanent, 4xx temporary; a failure with no reply (a
// dropped connection, a timeout) is temporary with code 0.
func failure(stage string, err error) *SendError {
	se := &SendError{stage: stage, Err: err}
	if stage != stageDial {
		se.Err = fmt.Errorf("%s: %w", stage, err)
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		se.Code = te.Code
		se.Permanent = te.Code >= 500 && te.Code < 600
		se.Recipient = se.Permanent && stage == stageRcpt
	}
	return se
}

// sender is one worker's connection to the SMTP server, dialled on first
// use and kept for the following emails. go-mail opens it (TLS, login);
// the mail transaction is the sender's own, so that the bytes sent are
// exactly the bytes signed.
type sender struct {
	cfg     config.SMTP
	timeout time.Duration
	sign    *dkim.SignOptions // nil without DKIM
	tls     *tls.Config
	conn    *smtp.Client
	// used is true once an email went through the current connection.
	used bool
}

// newSender returns a sender for cfg; key, from loadDKIM, may be nil.
func newSender(cfg config.SMTP, timeout time.Duration, key *gomail.DKIMSigner, tc *tls.Config) *sender {
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	return &sender{cfg: cfg, timeout: timeout, sign: signOptions(key, signedHeaders), tls: tc}
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
	if h, err := os.Hostname(); err == nil && h != "" {
		opts = append(opts, gomail.WithHELO(h))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("mailer: smtp client: %w", err)
	}
	conn, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return err
	}
	s.conn, s.used = conn, false
	return nil
}

// send writes msg, signs it when DKIM is configured and delivers it to
// the addresses of its To header. mayData is asked just before the
// transaction starts and again before DATA: when it says no, the
// transaction is abandoned (errLeaseLost) and nothing is sent. It returns
// the server's reply to the message (its queue id, often) and whether a
// transaction was attempted at all (false when no connection could be
// opened or mayData said no first).
func (s *sender) send(ctx context.Context, msg *gomail.Msg, mayData func() bool) (string, bool, error) {
	raw, err := s.write(msg)
	if err != nil {
		return "", false, err
	}
	from, rcpts, err := envelope(raw)
	if err != nil {
		return "", false, err
	}
	return s.deliver(ctx, from, rcpts, raw, mayData)
}

// write returns msg as sent: written by go-mail, with its DKIM-Signature
// field first when DKIM is configured. A message that cannot be written
// or signed never will be: the failure is permanent.
func (s *sender) write(msg *gomail.Msg) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, permanent(fmt.Errorf("mailer: writing the message: %w", err))
	}
	if s.sign == nil {
		return buf.Bytes(), nil
	}
	signed, err := signMessage(buf.Bytes(), s.sign)
	if err != nil {
		return nil, permanent(err)
	}
	return signed, nil
}

// envelope returns the SMTP envelope of a written message: the address
// of its From header, and those of its To header, each as <address>. The
// envelope is read from the bytes sent, so it names exactly whom the
// headers name.
func envelope(raw []byte) (string, []string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", nil, permanent(fmt.Errorf("mailer: reading the written message: %w", err))
	}
	from, err := msg.Header.AddressList("From")
	if err == nil && len(from) != 1 {
		err = fmt.Errorf("%d addresses", len(from))
	}
	if err != nil {
		return "", nil, permanent(fmt.Errorf("mailer: From of the written message: %w", err))
	}
	to, err := msg.Header.AddressList("To")
	if err == nil && len(to) == 0 {
		err = errors.New("no address")
	}
	if err != nil {
		return "", nil, permanent(fmt.Errorf("mailer: To of the written message: %w", err))
	}
	rcpts := make([]string, len(to))
	for i, a := range to {
		rcpts[i] = (&mail.Address{Address: a.Address}).String()
	}
	return (&mail.Address{Address: from[0].Address}).String(), rcpts, nil
}

// deliver sends raw, dialling first when there is no connection. A
// connection that had been idle and turns out closed at the first command
// is dialled again once at once: that is not a failed attempt.
func (s *sender) deliver(ctx context.Context, from string, rcpts []string, raw []byte, mayData func() bool) (string, bool, error) {
	for try := 0; ; try++ {
		if err := ctx.Err(); err != nil {
			return "", try > 0, &SendError{Err: fmt.Errorf("mailer: no time left to send: %w", err)}
		}
		if err := s.connect(ctx); err != nil {
			return "", try > 0, err
		}
		if mayData != nil && !mayData() {
			return "", try > 0, errLeaseLost
		}
		reused := s.used
		reply, se := s.transaction(ctx, from, rcpts, raw, mayData)
		if se == nil {
			s.used = true
			return reply, true, nil
		}
		if errors.Is(se, errLeaseLost) {
			return "", true, errLeaseLost
		}
		s.close()
		stale := se.stage == stageMail && se.Code == 0
		if !(reused && stale && try == 0) {
			return "", true, se
		}
	}
}

// transaction is one MAIL FROM, RCPT TO for each recipient, and DATA,
// within the sender's timeout (or ctx's deadline if sooner).
func (s *sender) transaction(ctx context.Context, from string, rcpts []string, raw []byte, mayData func() bool) (string, *SendError) {
	budget := s.timeout
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl))
	}
	if err := s.conn.UpdateDeadline(budget); err != nil {
		return "", failure(stageMail, err)
	}
	if err := s.conn.Mail(from); err != nil {
		return "", failure(stageMail, err)
	}
	for _, r := range rcpts {
		if err := s.conn.Rcpt(r); err != nil {
			return "", failure(stageRcpt, err)
		}
	}
	if mayData != nil && !mayData() {
		if err := s.conn.Reset(); err != nil {
			s.close()
		}
		return "", &SendError{Err: errLeaseLost, stage: stageData}
	}
	w, err := s.conn.Data()
	if err != nil {
		return "", failure(stageData, err)
	}
	if _, err := w.Write(raw); err != nil {
		_ = w.Close()
		return "", failure(stageData, err)
	}
	if err := w.Close(); err != nil {
		return "", failure(stageData, err)
	}
	reply := ""
	if dc, ok := w.(*smtp.DataCloser); ok {
		reply = dc.ServerResponse()
	}
	return reply, nil
}

// connect dials when there is no connection. Its failure is a temporary
// SendError with Dial set, whatever the server answered.
func (s *sender) connect(ctx context.Context) error {
	if s.conn != nil {
		return nil
	}
	if err := s.dial(ctx); err != nil {
		se := failure(stageDial, err)
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
	if s.conn == nil {
		return
	}
	if s.conn.UpdateDeadline(s.timeout) == nil {
		_ = s.conn.Quit()
	}
	_ = s.conn.Close()
	s.conn = nil
}

// signedHeaders are the header fields the DKIM signature covers. Those
// a reader sees or a reply is matched by are listed twice: the second
// instance, absent, is signed as empty, so a copy added on the way breaks
// the signature rather than showing a forged value beside the signed one.
// A field absent from a message (In-Reply-To of an email outside any
// request) is signed as absent.
var signedHeaders = []string{
	"From", "From", "To", "To", "Subject", "Subject", "Reply-To", "Reply-To",
	"Date", "Message-ID", "In-Reply-To", "References",
	"Auto-Submitted", "X-Auto-Response-Suppress", "X-Contactd-Request", "X-Contactd-Handover", "X-Contactd-Kind",
	"MIME-Version", "Content-Type",
}

// signOptions returns the DKIM signing options of key (nil for nil):
// relaxed canonicalization of header and body, the given header fields.
func signOptions(key *gomail.DKIMSigner, headers []string) *dkim.SignOptions {
	if key == nil {
		return nil
	}
	return &dkim.SignOptions{
		Domain: key.Domain, Selector: key.Selector, Signer: key.Signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: headers,
	}
}

// signMessage returns raw with a DKIM-Signature field first.
func signMessage(raw []byte, opts *dkim.SignOptions) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(raw) + 1024)
	if err := dkim.Sign(&out, bytes.NewReader(raw), opts); err != nil {
		return nil, fmt.Errorf("mailer: dkim signature: %w", err)
	}
	return out.Bytes(), nil
}

// loadDKIM reads the signing key of smtp.dkim, or returns nil when DKIM is
// not configured. go-mail's DKIMSigner only carries the domain, selector
// and key: messages are signed by go-msgauth (see signMessage), whose
// DKIM-Signature field stays valid however long the list of signed
// header fields grows. The key is tried on a small message here, so that
// a key that cannot sign stops the daemon at start, not each email.
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
	if err := signer.ValidateConfig(); err != nil {
		return nil, fmt.Errorf("mailer: smtp.dkim: %w", err)
	}
	probe := []byte("From: <dkim@" + d.Domain + ">\r\nSubject: key check\r\n\r\nkey check\r\n")
	if _, err := signMessage(probe, signOptions(signer, signedHeaders)); err != nil {
		return nil, fmt.Errorf("mailer: smtp.dkim: %w", err)
	}
	return signer, nil
}
