package inbox

import (
	"context"
	"testing"

	"contactd/config"
	"contactd/internal/redistest"
	"contactd/workflow"
)

func newActor(t *testing.T, w *world) *actor {
	cfg := config.Default()
	cfg.IMAP.ReplyAddress = "contacts@example.com"
	return &actor{store: w.store, cfg: cfg, log: testLogger(t)}
}

// A token that differs from the one of the email the reply answers is
// a conflict: nothing is decided on either request.
func TestActTokenAgainstReference(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		w := newWorld(t, b, 2)
		raw := "In-Reply-To: <" + w.sent(t, 1) + ">\r\n" + reply(0, w.tokens[0], "accept", "c1@example.com")
		o, err := newActor(t, w).act(context.Background(), Read([]byte(raw), "contacts@example.com"), "test")
		if err != nil || o != Rejected {
			t.Fatalf("act = %q, %v; want rejected", o, err)
		}
		for i := range 2 {
			if r := w.request(t, i); historyCount(r, "accepted") != 0 {
				t.Errorf("request %d accepted through a reply naming two tokens", i)
			}
		}
		if nu := outboxOf(t, w, "not_understood"); len(nu) != 1 || nu[0].Reason != ReasonTwoTokens {
			t.Errorf("not_understood = %+v, want one for %s", nu, ReasonTwoTokens)
		}
	})
}

// The same reply with a matching reference is acted on.
func TestActTokenMatchingReference(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		w := newWorld(t, b, 1)
		raw := "In-Reply-To: <" + w.sent(t, 0) + ">\r\n" + reply(0, w.tokens[0], "accept", "c0@example.com")
		o, err := newActor(t, w).act(context.Background(), Read([]byte(raw), "contacts@example.com"), "test")
		if err != nil || o != Processed {
			t.Fatalf("act = %q, %v; want processed", o, err)
		}
		if got := w.request(t, 0).Status; got != workflow.Applied {
			t.Errorf("request is %s, want applied", got)
		}
	})
}
