package mailer

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// Two daemons sharing one Redis drain one outbox; no email goes out twice.
func TestTwoMailersSendEachOnce(t *testing.T) {
	b := redistest.Real(t)
	s := newStore(t, b)
	srv := startSink(t, "")
	ctx := context.Background()
	const n = 1000
	for i := 0; i < n; i++ {
		if err := s.Enqueue(ctx, workflow.Message{Kinds: []workflow.Kind{"not_understood"}, To: fmt.Sprintf("user%d@example.net", i),
			Reason: "no_token"}); err != nil {
			t.Fatal(err)
		}
	}
	entries := queued(t, s)
	if len(entries) != n {
		t.Fatalf("queued %d entries, want %d", len(entries), n)
	}
	cfg := testConfig(srv.port())
	a, c := newMailer(t, s, cfg, 4), newMailer(t, s, cfg, 4)
	start(t, a)
	start(t, c)
	waitDrained(t, s, 60*time.Second)
	checkOnce(t, s, srv, entries, 0)
	if got := len(srv.received()); got != n {
		t.Errorf("received %d emails, want %d", got, n)
	}
}

func TestEventsReachStreamAndWebhook(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b)
		srv := startSink(t, "")
		var mu sync.Mutex
		var bodies []string
		calls := 0
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls <= 2 {
				http.Error(w, "not now", http.StatusServiceUnavailable)
				return
			}
			if got, want := r.Header.Get(SignatureHeader), Sign("s3cret", body); got != want {
				t.Errorf("signature = %q, want %q", got, want)
			}
			bodies = append(bodies, string(body))
		}))
		t.Cleanup(hook.Close)
		cfg := testConfig(srv.port())
		cfg.Events.WebhookURL, cfg.Events.WebhookSecret = hook.URL, "s3cret"
		r, err := s.Create(ctx, workflow.Ask{Service: "example.org", Requester: "ad1-ovh",
			Changes: map[string]string{"billing": "ad1-ovh"}}, workflow.API)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Cancel(ctx, r.ID, "ad1-ovh", workflow.API); err != nil {
			t.Fatal(err)
		}
		m := newMailer(t, s, cfg, 2)
		start(t, m)
		waitDrained(t, s, 10*time.Second)
		mu.Lock()
		defer mu.Unlock()
		if calls != 3 || len(bodies) != 1 || !strings.Contains(bodies[0], `"status":"cancelled"`) ||
			!strings.Contains(bodies[0], `"id":"`+r.ID+`"`) {
			t.Errorf("webhook: %d calls, bodies %v; want 3 calls and the cancelled request once", calls, bodies)
		}
		ev, err := b.Client.XRange(ctx, workflow.Keys{Prefix: b.Prefix}.Events(), "-", "+").Result()
		if err != nil || len(ev) != 1 || ev[0].Values["event"] != "cancelled" || ev[0].Values["json"] != bodies[0] {
			t.Errorf("events stream = %v, %v; want the cancelled request once, as posted", ev, err)
		}
		// The validation emails queued before the cancel are no longer due:
		// only the cancelled notice went out.
		for _, raw := range srv.received() {
			if k := headerValue(raw, "X-Contactd-Kind"); k != "cancelled" {
				t.Errorf("a %s email was sent for a cancelled request", k)
			}
		}
		if got := len(srv.received()); got != 1 {
			t.Errorf("received %d emails, want the one cancelled notice", got)
		}
	})
}

func TestNoHeaderInjection(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	ctx := context.Background()
	r, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
		Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API)
	if err != nil {
		t.Fatal(err)
	}
	// The directory refuses such values; written straight into Redis, they
	// stand for whatever an older version or another tool left there.
	evil := "Alice\r\nBcc: victim@example.org\r\nX-Evil: 1"
	if err := b.Client.HSet(ctx, workflow.Keys{Prefix: b.Prefix}.Contact("ad1-ovh"), "name", evil).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Client.HSet(ctx, workflow.Keys{Prefix: b.Prefix}.Service(r.Service), "kind", "domain\r\nX-Evil: 2").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, workflow.Message{Kinds: []workflow.Kind{"not_understood"}, To: "x@example.net", Reason: "no_token\r\nBcc: victim@example.org",
		InReplyTo: "<a@b>\r\nBcc: victim@example.org"}); err != nil {
		t.Fatal(err)
	}
	srv := startSink(t, "")
	start(t, newMailer(t, s, testConfig(srv.port()), 1))
	waitDrained(t, s, 10*time.Second)
	if len(srv.received()) == 0 {
		t.Fatal("nothing received")
	}
	for _, raw := range srv.received() {
		head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
		for _, line := range strings.Split(head, "\r\n") {
			if strings.HasPrefix(strings.ToLower(line), "bcc:") || strings.HasPrefix(line, "X-Evil") {
				t.Errorf("injected header line %q in:\n%s", line, head)
			}
		}
		if got := srv.callsTo("rcpt"); got != len(srv.received()) {
			t.Errorf("%d RCPT for %d emails: a recipient was added", got, len(srv.received()))
		}
	}
}

func TestDeadGauge(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	m := newMailer(t, s, testConfig(1), 1)
	for _, sh := range []int{0, 5, 5} {
		b.Client.ZAdd(context.Background(), workflow.Keys{Prefix: b.Prefix}.OutboxDead(sh), redis.Z{Score: 1, Member: fmt.Sprint(sh, rand.Int())})
	}
	if got := testutil.ToFloat64(m.DeadGauge()); got != 3 {
		t.Errorf("dead gauge = %v, want 3", got)
	}
}
