package mailer

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// verifyStandardWebhook checks a delivery as the receivers of the
// Standard Webhooks specification do: the three headers present, the
// timestamp within five minutes of now, and one of the space-separated
// "v1,<signature>" values equal, in constant time, to the base64
// HMAC-SHA256 of "{id}.{timestamp}.{body}" under the key (the base64 that
// follows "whsec_", or else the secret's bytes).
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not Unix seconds", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s is %v away from now", ts, d)
	}
	key := []byte(secret)
	if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if key, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return err
		}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, versioned := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(versioned, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no signature of %q matches", sigs)
}

// delivery is one POST the webhook received.
type delivery struct {
	header http.Header
	body   []byte
	err    error // what verification said
}

// An event is posted signed as the Standard Webhooks specification says,
// with a plain secret and with a whsec_ one; its webhook-id stays the same
// on every retry, each attempt is signed with its own timestamp, and the
// older X-Contactd-Signature header is still there.
func TestWebhookStandardSignature(t *testing.T) {
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	for _, secret := range []string{"s3cret with spaces", "whsec_" + base64.StdEncoding.EncodeToString(raw)} {
		t.Run(secret[:5], func(t *testing.T) {
			b := redistest.Mini(t)
			ctx := context.Background()
			s := newStore(t, b)
			var mu sync.Mutex
			var got []delivery
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				defer mu.Unlock()
				got = append(got, delivery{r.Header.Clone(), body, verifyStandardWebhook(secret, r.Header, body, time.Now())})
				if len(got) == 1 {
					http.Error(w, "not now", http.StatusServiceUnavailable)
				}
			}))
			t.Cleanup(hook.Close)
			srv := startSink(t, "")
			cfg := testConfig(srv.port())
			cfg.Events.WebhookURL, cfg.Events.WebhookSecret = hook.URL, secret
			r, err := s.Create(ctx, workflow.Ask{Service: "example.org", Requester: "ad1-ovh",
				Changes: map[string]string{"billing": "ad1-ovh"}}, workflow.API)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Cancel(ctx, r.ID, "ad1-ovh", workflow.API); err != nil {
				t.Fatal(err)
			}
			start(t, newMailer(t, s, cfg, 1))
			waitDrained(t, s, 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 2 {
				t.Fatalf("the webhook was called %d times, want 2 (one refusal, one retry)", len(got))
			}
			for i, d := range got {
				if d.err != nil {
					t.Errorf("attempt %d: Standard Webhooks verification: %v", i+1, d.err)
				}
				if old := d.header.Get(SignatureHeader); old != Sign(secret, d.body) {
					t.Errorf("attempt %d: %s = %q, want %q", i+1, SignatureHeader, old, Sign(secret, d.body))
				}
			}
			id := got[0].header.Get("webhook-id")
			if again := got[1].header.Get("webhook-id"); id != again || !strings.HasPrefix(id, r.ID+".cancelled.") {
				t.Errorf("webhook-id %q then %q: want one id, naming the request and its event", id, again)
			}
			// The signature covers the id and the time: another id, or the
			// same body at another time, does not verify.
			forged := got[1].header.Clone()
			forged.Set("webhook-id", id+"x")
			if verifyStandardWebhook(secret, forged, got[1].body, time.Now()) == nil {
				t.Error("a delivery verified under another webhook-id")
			}
			ts, _ := strconv.ParseInt(got[1].header.Get("webhook-timestamp"), 10, 64)
			forged = got[1].header.Clone()
			forged.Set("webhook-timestamp", strconv.FormatInt(ts+60, 10))
			if verifyStandardWebhook(secret, forged, got[1].body, time.Now()) == nil {
				t.Error("a delivery verified with its timestamp moved")
			}
		})
	}
}

// Two events of one request (two reports of "this wasn't me", say) have
// different ids; the id does not change with the attempt.
func TestWebhookIDPerEvent(t *testing.T) {
	a := &workflow.OutboxEntry{Message: workflow.Message{Kinds: []workflow.Kind{workflow.KindEvent}, Request: "r1", Event: "disputed"}, Shard: 3, ID: "17"}
	b := *a
	b.ID = "18"
	if WebhookID(a) == WebhookID(&b) {
		t.Errorf("two events share the webhook-id %q", WebhookID(a))
	}
	a.Attempts = 4
	if got := WebhookID(a); got != "r1.disputed.3-17" {
		t.Errorf("WebhookID = %q, want r1.disputed.3-17", got)
	}
}

func TestWebhookKey(t *testing.T) {
	if k, err := WebhookKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); err != nil || len(k) != 24 {
		t.Errorf("whsec_ key = %d bytes, %v; want the 24 bytes its base64 holds", len(k), err)
	}
	if k, _ := WebhookKey("plain"); string(k) != "plain" {
		t.Errorf("plain key = %q", k)
	}
	if _, err := WebhookKey("whsec_not base64!"); err == nil {
		t.Error("a whsec_ secret that is not base64 was accepted")
	}
}
