package inbox

import (
	"log/slog"
	"time"
)

// outage logs the times the mailbox cannot be read: once when it starts,
// again every so often while it lasts, and once when it ends, each line
// saying for how long. Only the reader's loop calls it.
type outage struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time
	down  bool
	since time.Time // when the outage started
	said  time.Time // when it was last logged
	fails int
}

// Fail notes that a connection failed or was lost.
func (o *outage) Fail(err error) {
	now := o.now()
	o.fails++
	if !o.down {
		o.down, o.since, o.said = true, now, now
		o.log.Warn("imap unreachable: outage started", "dependency", "imap", "err", err)
		return
	}
	if now.Sub(o.said) >= o.every {
		o.said = now
		o.log.Warn("imap still unreachable", "dependency", "imap", "err", err,
			"down_for", now.Sub(o.since).Round(time.Second).String(), "failures", o.fails)
	}
}

// OK notes that the mailbox was read again, ending an outage under way.
func (o *outage) OK() {
	if !o.down {
		return
	}
	o.log.Info("imap reachable again: outage ended", "dependency", "imap",
		"down_for", o.now().Sub(o.since).Round(time.Millisecond).String(), "failures", o.fails)
	o.down, o.fails = false, 0
}
