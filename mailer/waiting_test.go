package mailer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"contactd/workflow"
)

// downOutbox is an outbox whose store cannot be reached.
type downOutbox struct{ Outbox }

func (downOutbox) ScanOutbox(context.Context) (*workflow.OutboxScan, error) {
	return nil, errors.New("dial tcp: connection refused")
}

// When Redis is down as well as the relay, the outage line says the
// number of emails waiting is unknown rather than printing a made-up one.
func TestEmailsWaitingUnknownWhileRedisIsDown(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Warn("smtp unreachable: outage started", "emails_waiting", emailsWaiting{ctx: context.Background(), store: downOutbox{}})
	if out := buf.String(); !strings.Contains(out, "emails_waiting=unknown") || strings.Contains(out, "emails_waiting=-1") {
		t.Errorf("log line %q: want emails_waiting=unknown", out)
	}
}
