package inbox

import (
	"log/slog"
	"time"
)

// outage logs the times the server cannot be used: once when it starts,
// again every so often while it lasts, and once when it ends. Only the
// reader's loop calls it.
type outage struct {
	log   *slog.Logger
	every time.Duration
	since time.Time // zero while the server is reachable
	said  time.Time // when the outage was last logged
}

// failed notes that a connection failed or was lost.
func (o *outage) failed(now time.Time, err error) {
	if o.since.IsZero() {
		o.since, o.said = now, now
		o.log.Warn("imap unreachable", "err", err)
		return
	}
	if now.Sub(o.said) >= o.every {
		o.said = now
		o.log.Warn("imap still unreachable", "for", now.Sub(o.since).Round(time.Millisecond).String(), "err", err)
	}
}

// recovered notes that the mailbox was reached again.
func (o *outage) recovered(now time.Time) {
	if o.since.IsZero() {
		return
	}
	o.log.Info("imap reachable again", "after", now.Sub(o.since).Round(time.Millisecond).String())
	o.since = time.Time{}
}
