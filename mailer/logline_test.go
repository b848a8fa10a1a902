package mailer

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// syncBuffer is a log destination several goroutines write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// An operator asked "did the approver get it?" greps one line per email:
// its kind and request, the recipient's domain, a hash of its Message-ID
// and the relay's answer; never the address, the token or the link.
func TestEmailSentLogLine(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, redistest.Mini(t))
	srv := startSink(t, "")
	var logs syncBuffer
	m := newMailer(t, s, testConfig(srv.port()), 1, func(p *Params) {
		p.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	r, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
		Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API)
	if err != nil {
		t.Fatal(err)
	}
	start(t, m)
	waitDrained(t, s, 10*time.Second)

	sent := map[string]string{} // Message-ID hash -> the email's raw text
	for _, raw := range srv.received() {
		sent[hashID(headerValue(raw, "Message-Id"))] = string(raw)
	}
	var seen int
	for _, line := range logs.lines() {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil || l["msg"] != "email sent" {
			continue
		}
		seen++
		raw, ok := sent[l["message_id_hash"].(string)]
		if !ok {
			t.Errorf("the line names no email the relay received: %s", line)
			continue
		}
		to := headerValue([]byte(raw), "To")
		if l["kind"] != "validation" || l["request_id"] != r.ID || !strings.HasSuffix(to, "@"+l["to_domain"].(string)+">") ||
			!strings.Contains(l["relay_reply"].(string), "queued") || l["duration"] == "" {
			t.Errorf("line %s for the email to %s", line, to)
		}
		tok := tokenRe.FindStringSubmatch(headerValue([]byte(raw), "Reply-To"))
		if tok == nil || strings.Contains(line, tok[1]) || strings.Contains(line, workflow.HashToken(tok[1])) ||
			strings.Contains(line, strings.Trim(to, "<>")) {
			t.Errorf("the line shows the token, its reference or the address: %s", line)
		}
	}
	if seen != 2 {
		t.Errorf("%d \"email sent\" lines for 2 emails:\n%s", seen, strings.Join(logs.lines(), "\n"))
	}
}
