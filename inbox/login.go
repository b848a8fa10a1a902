package inbox

import (
	"context"
	"time"

	"contactd/internal/oauth2cmd"
)

// login authenticates as imap.auth says: password (LOGIN, nothing when
// imap.username is empty) or xoauth2 with a fresh access token from
// imap.oauth2_token_command at every connection.
func (r *Reader) login(ctx context.Context, s *session) error {
	cfg := r.p.Config.IMAP
	switch cfg.Auth {
	case "xoauth2":
		token, err := oauth2cmd.Token(ctx, "imap.oauth2_token_command", cfg.OAuth2TokenCommand, 30*time.Second)
		if err != nil {
			return err
		}
		return s.exchange("xoauth2 login as "+cfg.Username, func() error {
			return s.c.Authenticate(&xoauth2{user: cfg.Username, token: token})
		})
	default:
		if cfg.Username == "" {
			return nil
		}
		return s.exchange("login as "+cfg.Username, func() error {
			return s.c.Login(cfg.Username, cfg.Password).Wait()
		})
	}
}

// xoauth2 is the SASL XOAUTH2 mechanism of Gmail and Microsoft 365.
type xoauth2 struct{ user, token string }

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers the error challenge the server sends before refusing a
// token with an empty response, as the mechanism requires.
func (x *xoauth2) Next(challenge []byte) ([]byte, error) { return []byte{}, nil }
