package inbox

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// login authenticates as imap.auth says: password (LOGIN, nothing when
// imap.username is empty) or xoauth2 with a fresh access token from
// imap.oauth2_token_command at every connection.
func (r *Reader) login(ctx context.Context, c *imapclient.Client) error {
	cfg := r.p.Config.IMAP
	switch cfg.Auth {
	case "xoauth2":
		token, err := oauth2Token(ctx, cfg.OAuth2TokenCommand)
		if err != nil {
			return err
		}
		if err := c.Authenticate(&xoauth2{user: cfg.Username, token: token}); err != nil {
			return fmt.Errorf("inbox: xoauth2 login as %s: %w", cfg.Username, err)
		}
	default:
		if cfg.Username == "" {
			return nil
		}
		if err := c.Login(cfg.Username, cfg.Password).Wait(); err != nil {
			return fmt.Errorf("inbox: login as %s: %w", cfg.Username, err)
		}
	}
	return nil
}

// oauth2Token runs the token command and returns what it prints.
func oauth2Token(ctx context.Context, command string) (string, error) {
	if command == "" {
		return "", errors.New("inbox: imap.oauth2_token_command is empty")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", command).Output()
	if err != nil {
		return "", fmt.Errorf("inbox: imap.oauth2_token_command: %w", err)
	}
	token := strings.TrimSpace(string(out))
	if token == "" {
		return "", errors.New("inbox: imap.oauth2_token_command printed no token")
	}
	return token, nil
}

// xoauth2 is the SASL XOAUTH2 mechanism of Gmail and Microsoft 365.
type xoauth2 struct{ user, token string }

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers the error challenge the server sends before refusing a
// token with an empty response, as the mechanism requires.
func (x *xoauth2) Next(challenge []byte) ([]byte, error) { return []byte{}, nil }
