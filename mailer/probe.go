package mailer

import (
	"context"
	"time"

	"contactd/config"
)

// Probe opens a connection to the SMTP server of cfg the way the mailer
// does (TLS as smtp.tls says, then a login when smtp.username is set),
// says QUIT and closes it. It sends no email. Each step has timeout to
// answer. The error says which step failed; it never quotes a password or
// a token.
func Probe(ctx context.Context, cfg config.SMTP, timeout time.Duration) error {
	s := newSender(cfg, timeout, nil, nil)
	if err := s.dial(ctx); err != nil {
		return err
	}
	s.close()
	return nil
}
