package mailer

import (
	"context"
	"sync"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// frozen is a store whose heartbeat hangs until released: the daemon is
// stalled (a stopped virtual machine, a long pause) and renews nothing.
type frozen struct {
	*workflow.Store
	thaw chan struct{}
}

func (f frozen) Heartbeat(ctx context.Context, es []*workflow.OutboxEntry, lease time.Duration) ([]*workflow.OutboxEntry, error) {
	select {
	case <-f.thaw:
	case <-ctx.Done():
	}
	return f.Store.Heartbeat(ctx, es, lease)
}

// A mailer that stalls past its lease in the middle of a send loses its
// claim to another daemon, which sends the email; when it wakes up it
// neither sends nor records it: the email is received once, recorded
// once, and the stalled mailer counts the claim it lost.
func TestStalledMailerIsFenced(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b)
		srv := startSink(t, "")
		var once sync.Once
		srv.fault = func(stage string, n int, _ string) error {
			if stage == "mail" && n == 0 {
				once.Do(func() { time.Sleep(1500 * time.Millisecond) }) // the first daemon stalls here
			}
			return nil
		}
		r, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
			Changes: map[string]string{"tech": "ad1-ovh"}}, workflow.API) // one approver: one email
		if err != nil {
			t.Fatal(err)
		}
		thaw := make(chan struct{})
		stalled := newMailer(t, s, testConfig(srv.port()), 1, func(p *Params) {
			p.Store, p.Lease, p.Timeout = frozen{s, thaw}, 600*time.Millisecond, 5*time.Second
		})
		stopStalled := start(t, stalled)
		waitUntil(t, 5*time.Second, "the first daemon stalled in the middle of its send", func() bool {
			return srv.callsTo("mail") == 1
		})
		other := newMailer(t, s, testConfig(srv.port()), 1)
		start(t, other)
		waitUntil(t, 10*time.Second, "the email received and the outbox empty", func() bool {
			return len(srv.received()) >= 1 && pending(t, s) == 0
		})
		close(thaw)
		waitUntil(t, 5*time.Second, "the stalled daemon to notice its lost claim", func() bool {
			return testutil.ToFloat64(stalled.met.OutboxClaimsLost) >= 1
		})
		stopStalled()
		if n := len(srv.received()); n != 1 {
			t.Errorf("the email was received %d times, want once", n)
		}
		got, err := s.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := countSent(got); n != 1 {
			t.Errorf("history has %d sent events, want 1", n)
		}
	})
}

func countSent(r *workflow.Request) int {
	n := 0
	for _, e := range r.History {
		if e.Event == "sent" {
			n++
		}
	}
	return n
}
