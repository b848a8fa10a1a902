package mailer

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// A Reply-To that cannot be written fails the email without its token
// reaching the log or the dead entry kept in Redis.
func TestBadReplyAddressKeepsTokenSecret(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	srv := startSink(t, "")
	cfg := testConfig(srv.port())
	cfg.IMAP.ReplyAddress = "contacts@@example.com"
	cfg.SMTP.MaxAttempts = 2
	var logs bytes.Buffer
	m := newMailer(t, s, cfg, 1, func(p *Params) { p.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	if _, err := s.Create(context.Background(), workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
		Changes: map[string]string{"billing": "ad1-ovh"}}, workflow.API); err != nil {
		t.Fatal(err)
	}
	stop := start(t, m)
	waitDrained(t, s, 10*time.Second)
	stop()
	if len(deadRefs(t, s)) != 1 {
		t.Fatalf("dead entries %v, want the validation email", deadRefs(t, s))
	}
	token := regexp.MustCompile(`[a-z2-7]{33}`)
	if raw := rawEntry(t, s); token.MatchString(raw) || !strings.Contains(raw, "imap.reply_address") {
		t.Errorf("dead entry = %s; want the key named and no token", raw)
	}
	if token.Match(logs.Bytes()) {
		t.Errorf("a token reached the log:\n%s", logs.String())
	}
}
