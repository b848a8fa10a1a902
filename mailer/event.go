package mailer

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"contactd/workflow"
)

// SignatureHeader carries the webhook body's HMAC-SHA256 under
// events.webhook_secret, as "sha256=<hex>". It is kept beside the headers
// of the Standard Webhooks specification for receivers written before
// them.
const SignatureHeader = "X-Contactd-Signature"

// The headers of the Standard Webhooks specification.
const (
	// IDHeader names the event, the same on every retry of it, so that a
	// receiver can drop a delivery it has seen.
	IDHeader = "webhook-id"
	// TimestampHeader is when this attempt was signed, in Unix seconds,
	// so that a receiver can refuse an old delivery replayed.
	TimestampHeader = "webhook-timestamp"
	// StandardSignatureHeader is "v1,<base64 of HMAC-SHA256 of
	// "{id}.{timestamp}.{body}">".
	StandardSignatureHeader = "webhook-signature"
)

// Sign returns the value of SignatureHeader for body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// WebhookKey is the HMAC key of events.webhook_secret for the Standard
// Webhooks signature: the bytes that follow "whsec_", base64-decoded, or
// else the secret's own bytes.
func WebhookKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("mailer: events.webhook_secret: what follows whsec_ is not base64: %w", err)
	}
	return key, nil
}

// SignStandard returns the value of StandardSignatureHeader for the event
// id sent at ts with body, under key (see WebhookKey).
func SignStandard(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// WebhookID is the webhook-id of the event entry e: its request, its
// event and its place in the outbox, the same on every retry of that
// entry and different for each event, two reports of "this wasn't me" on
// one request included.
func WebhookID(e *workflow.OutboxEntry) string {
	return e.Request + "." + e.Event + "." + strings.ReplaceAll(e.Ref(), "/", "-")
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
	return m.post(ctx, WebhookID(e), body)
}

// post sends one attempt of the event id, signed both ways.
func (m *Mailer) post(ctx context.Context, id string, body []byte) error {
	secret := m.cfg.Events.WebhookSecret
	key, err := WebhookKey(secret)
	if err != nil {
		return permanent(err)
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, m.cfg.Events.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("mailer: events.webhook_url: %w", err))
	}
	ts := m.now()
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(IDHeader, id)
	r.Header.Set(TimestampHeader, strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set(StandardSignatureHeader, SignStandard(key, id, ts, body))
	r.Header.Set(SignatureHeader, Sign(secret, body))
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
