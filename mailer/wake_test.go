package mailer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// gatedStore holds the mailer's subscription to the wake-ups until open
// is closed, and counts its scans of the outbox.
type gatedStore struct {
	*workflow.Store
	open  chan struct{}
	scans atomic.Int64
}

func (g *gatedStore) WatchOutbox(ctx context.Context, wake func(shard int)) error {
	<-g.open
	return g.Store.WatchOutbox(ctx, wake)
}

func (g *gatedStore) ScanOutbox(ctx context.Context) (*workflow.OutboxScan, error) {
	g.scans.Add(1)
	return g.Store.ScanOutbox(ctx)
}

// TestEmailQueuedBeforeSubscription queues an email after the mailer's
// first scan of the outbox but before its subscription to the wake-ups is
// in place, so that the wake-up reaches nobody: the mailer must still send
// it at once, not at its next poll (an hour here).
func TestEmailQueuedBeforeSubscription(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend func(testing.TB) redistest.Backend
	}{
		{"miniredis", redistest.Mini},
		{"redis-server", redistest.Real},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, tc.backend(t))
			srv := startSink(t, "")
			g := &gatedStore{Store: s, open: make(chan struct{})}
			m := newMailer(t, s, testConfig(srv.port()), 1, func(p *Params) { p.Store, p.Poll = g, time.Hour })
			start(t, m)
			waitUntil(t, 5*time.Second, "the mailer's first scan", func() bool { return g.scans.Load() > 0 })
			r, err := s.Create(context.Background(), workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
				Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API)
			if err != nil {
				t.Fatal(err)
			}
			close(g.open)
			waitUntil(t, 3*time.Second, "both validation emails sent", func() bool { return len(validations(srv, []string{r.ID})) == 2 })
		})
	}
}
