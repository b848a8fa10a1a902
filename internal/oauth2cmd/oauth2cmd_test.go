package oauth2cmd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"contactd/internal/oauth2cmd"
)

func TestToken(t *testing.T) {
	ctx := context.Background()
	if tok, err := oauth2cmd.Token(ctx, "imap.oauth2_token_command", "echo ' ya29.token '", time.Second); err != nil || tok != "ya29.token" {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	for cmd, want := range map[string]string{"": "is empty", "true": "printed no token", "exit 3": "failed", "sleep 5": "failed"} {
		_, err := oauth2cmd.Token(ctx, "smtp.oauth2_token_command", cmd, 200*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "smtp.oauth2_token_command "+want) {
			t.Errorf("Token(%q) error = %v, want it to say %q", cmd, err, want)
		}
	}
}
