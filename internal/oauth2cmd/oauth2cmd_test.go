package oauth2cmd_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
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

// A command whose child keeps its output open (a helper left running in
// the background) does not hold contactd up: Token returns soon after the
// shell has ended, well before the child would have closed the output.
func TestTokenDoesNotWaitForAChildHoldingTheOutput(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	t.Cleanup(func() { killChild(t, pidFile) })
	command := "sleep 60 & echo $! > " + pidFile + "; echo ya29.token"
	start := time.Now()
	tok, err := oauth2cmd.Token(context.Background(), "smtp.oauth2_token_command", command, 30*time.Second)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Token returned after %v, want well under the child's 60 s and the 30 s timeout", took)
	}
	if err != nil && !strings.Contains(err.Error(), "smtp.oauth2_token_command failed") {
		t.Errorf("Token error = %v, want it to name the key", err)
	}
	if err == nil && tok != "ya29.token" {
		t.Errorf("Token = %q, want ya29.token", tok)
	}
	if err != nil && strings.Contains(err.Error(), "ya29") {
		t.Errorf("the error %q quotes the token", err)
	}
}

// killChild ends the background child whose PID the command wrote.
func killChild(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Logf("no child PID: %v", err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Logf("child PID %q: %v", b, err)
		return
	}
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
