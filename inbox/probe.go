package inbox

import (
	"context"
	"io"
	"log/slog"
	"time"

	"contactd/config"
)

// Probe connects to the IMAP server of cfg the way the reader does (TLS
// as imap.tls says, the greeting, then the login of imap.auth), logs out
// and closes the connection. It reads no mailbox. Each exchange has
// timeout to answer. The error says which step failed; it never quotes a
// password or a token.
func Probe(ctx context.Context, cfg config.Config, timeout time.Duration) error {
	r := &Reader{p: Params{Config: cfg, Timeout: timeout}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		kick: make(chan struct{}, 1)}
	s, err := r.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	return s.exchange("logout", func() error { return s.c.Logout().Wait() })
}
