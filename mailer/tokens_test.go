package mailer

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// receivedToken returns the token of the last email received by addr.
func receivedToken(t *testing.T, srv *sink, addr string) string {
	t.Helper()
	tok := ""
	for _, raw := range srv.received() {
		p := parse(t, raw)
		if p.to != addr {
			continue
		}
		if m := tokenRe.FindStringSubmatch(p.replyTo + "@"); m != nil {
			tok = m[1]
		}
	}
	if tok == "" {
		t.Fatalf("no email with a token reached %s", addr)
	}
	return tok
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
	}
}

// A resend that never reaches the approver (refused at DATA by a content
// filter, or given up after smtp.max_attempts) must not kill the link of
// the email the approver already holds.
func TestFailedResendKeepsEarlierLink(t *testing.T) {
	for _, c := range []struct {
		name  string
		reply *smtp.SMTPError
	}{
		{"refused at DATA", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "content rejected"}},
		{"attempts exhausted", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b redistest.Backend) {
				ctx := context.Background()
				s := newStore(t, b)
				srv := startSink(t, "")
				cfg := testConfig(srv.port())
				cfg.SMTP.MaxAttempts = 2
				start(t, newMailer(t, s, cfg, 1))
				r, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
					Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API)
				if err != nil {
					t.Fatal(err)
				}
				waitDrained(t, s, 10*time.Second)
				held := receivedToken(t, srv, "new1@example.net")

				var refused atomic.Int64
				srv.fault = func(stage string, _ int, _ string) error {
					if stage == "data" {
						refused.Add(1)
						return c.reply
					}
					return nil
				}
				if _, err := s.Resend(ctx, r.ID, "nw1-ovh"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the resend given up", 10*time.Second, func() bool { return len(deadRefs(t, s)) == 1 })
				if refused.Load() == 0 {
					t.Fatal("the resend never reached DATA")
				}
				if _, nic, err := s.LookupToken(ctx, held); err != nil || nic != "nw1-ovh" {
					t.Errorf("link of the email the approver holds = %q, %v; want it still working", nic, err)
				}
				got, _ := s.Get(ctx, r.ID)
				for _, e := range got.History {
					if e.Event == "resent" {
						t.Errorf("history says resent, but the email never left: %v", got.History)
					}
				}
				if _, err := s.Decide(ctx, held, workflow.Accept, workflow.Web); err != nil {
					t.Errorf("accept with the held link: %v", err)
				}
			})
		})
	}
}

// panicky is a store that panics reading one request, standing for a
// poison entry that trips a bug.
type panicky struct {
	*workflow.Store
	poison string
}

func (p panicky) Snapshot(m *workflow.Message) *workflow.Request {
	if m.Request == p.poison {
		panic("poison request")
	}
	return p.Store.Snapshot(m)
}

// A panic while handling one entry gives that entry up as dead, with the
// panic as its reason; the mailer goes on with the others.
func TestPanicBuriesEntryAndGoesOn(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	s := newStore(t, b)
	srv := startSink(t, "")
	poison, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
		Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API)
	if err != nil {
		t.Fatal(err)
	}
	m := newMailer(t, s, testConfig(srv.port()), 1, func(p *Params) { p.Store = panicky{s, poison.ID} })
	start(t, m)
	healthy, err := s.Create(ctx, workflow.Ask{Service: "example.org", Requester: "ad1-ovh",
		Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API)
	if err != nil {
		t.Fatal(err)
	}
	waitDrained(t, s, 10*time.Second)
	dead, err := s.ListOutbox(ctx, workflow.OutboxDead, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 {
		t.Fatalf("%d dead entries, want the 2 validation emails of the poison request", len(dead))
	}
	for _, e := range dead {
		if e.Request != poison.ID {
			t.Errorf("dead entry of request %s, want only the poison request's", e.Request)
		}
		if want := "panic: poison request"; !strings.Contains(e.LastError, want) {
			t.Errorf("dead entry's reason = %q, want it to say %q", e.LastError, want)
		}
	}
	got, _ := s.Get(ctx, healthy.ID)
	if n := countEvent(got, "sent"); n != 2 {
		t.Errorf("the healthy request has %d sent events, want 2: the mailer must go on", n)
	}
	if d := testutil.ToFloat64(m.met.Panics.WithLabelValues("mailer")); d != 2 {
		t.Errorf("contactd_panics_recovered_total{component=mailer} grew by %v, want 2", d)
	}
}

func countEvent(r *workflow.Request, event string) int {
	n := 0
	for _, e := range r.History {
		if e.Event == event {
			n++
		}
	}
	return n
}
