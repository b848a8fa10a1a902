// Package oauth2cmd runs the command an operator configures to print an
// OAuth2 access token (smtp.oauth2_token_command,
// imap.oauth2_token_command), for XOAUTH2 logins to Gmail or Microsoft 365.
package oauth2cmd

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Token runs command with sh and returns what it prints, trimmed. key names
// the configuration key in errors. The token is a secret: it is neither
// logged nor kept, and errors never quote what the command printed.
func Token(ctx context.Context, key, command string, timeout time.Duration) (string, error) {
	if strings.TrimSpace(command) == "" {
		return "", fmt.Errorf("%s is empty", key)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	// A child the shell started may hold the output open after the time
	// is up; stop waiting for it soon after.
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s failed: %w", key, err)
	}
	tok := strings.TrimSpace(string(out))
	if tok == "" {
		return "", fmt.Errorf("%s printed no token", key)
	}
	return tok, nil
}
