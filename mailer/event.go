package mailer

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"contactd/workflow"
)

// SignatureHeader carries the webhook body's HMAC-SHA256 under
// events.webhook_secret, as "sha256=<hex>".
const SignatureHeader = "X-Contactd-Signature"

// Sign returns the value of SignatureHeader for body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// publish appends a finished (or disputed) request to the events stream,
// with the fields event, request (the id) and json (the request as the
// API shows it), then POSTs the same JSON to events.webhook_url when set.
// A webhook that does not answer 2xx is retried like an email; the stream
// entry is written once.
func (m *Mailer) publish(ctx context.Context, e *workflow.OutboxEntry) error {
	req, err := m.store.EventRequest(ctx, &e.Message)
	if workflow.ErrorCode(err) == workflow.ENotFound {
		return errNotDue
	}
	if err != nil {
		return err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return permanent(err)
	}
	if !e.Published {
		if err := m.store.PublishEvent(ctx, e.Ref(), e.Event, req.ID, body); err != nil {
			return fmt.Errorf("mailer: events stream: %w", err)
		}
		e.Published = true
	}
	if m.cfg.Events.WebhookURL == "" {
		return nil
	}
	return m.post(ctx, body)
}

func (m *Mailer) post(ctx context.Context, body []byte) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, m.cfg.Events.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("mailer: events.webhook_url: %w", err))
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(SignatureHeader, Sign(m.cfg.Events.WebhookSecret, body))
	resp, err := m.http.Do(r)
	if err != nil {
		err = fmt.Errorf("mailer: webhook: %w", err)
		m.webhook.Fail(err)
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := fmt.Errorf("mailer: webhook answered %s", resp.Status)
		m.webhook.Fail(err)
		return err
	}
	m.webhook.OK()
	return nil
}
