package inbox

import (
	"context"
	"fmt"
	"runtime/debug"
)

// handle reads one claimed message and acts on it. Nothing a message
// holds can stop the reader: a panic while reading or acting is
// recovered here, counted with the claim (by every reader and across
// restarts), and the message is tried again; once maxAttempts attempts
// have failed it is set aside in the rejected mailbox, unanswered.
func (r *Reader) handle(ctx context.Context, m *fetched) handled {
	h := handled{uid: m.uid, claim: m.claim}
	if m.claim.Failures() >= maxAttempts {
		return r.setAside(h, m, m.claim.Failures())
	}
	o, crash, err := r.try(ctx, m)
	switch {
	case crash != nil:
		r.met.Panics.WithLabelValues("inbox").Inc()
		attempt := m.claim.Failures() + 1
		r.log.Error("acting on a message panicked", "uid", m.uid, "message_id", m.messageID,
			"attempt", attempt, "panic", crash.value, "stack", crash.stack)
		if attempt >= maxAttempts {
			return r.setAside(h, m, attempt)
		}
		r.keep(ctx, m, true)
		return handled{uid: m.uid, left: leftFailed}
	case err != nil:
		if ctx.Err() == nil {
			r.log.Warn("message left for a later poll", "uid", m.uid, "message_id", m.messageID, "err", err)
		}
		r.keep(ctx, m, false)
		return handled{uid: m.uid, left: leftError}
	}
	h.outcome = o
	return h
}

// crash is a panic recovered.
type crash struct {
	value string
	stack string
}

// try reads and acts on a message, turning a panic into a crash.
func (r *Reader) try(ctx context.Context, m *fetched) (o Outcome, c *crash, err error) {
	defer func() {
		if v := recover(); v != nil {
			c = &crash{value: fmt.Sprint(v), stack: string(debug.Stack())}
		}
	}()
	o, err = r.act.act(ctx, r.read(m), r.messageName(m))
	return o, nil, err
}

// read reads a fetched message: only its header when it is over
// inbox.max_message_bytes (the rest was not fetched).
func (r *Reader) read(m *fetched) *Reply {
	if m.size > r.p.Config.Inbox.MaxMessageBytes {
		return ReadHeader(m.raw)
	}
	return Read(m.raw, r.p.Config.IMAP.ReplyAddress)
}

// messageName names a message for the store (workflow.Reply.Message):
// by its Message-ID, else by its place in the mailbox.
func (r *Reader) messageName(m *fetched) string {
	if m.messageID != "" {
		return "mid:" + m.messageID
	}
	return r.uidID(m.uid)
}

// keep leaves the claim of a message that could not be acted on to the
// next attempt; failed counts this attempt as failed.
func (r *Reader) keep(ctx context.Context, m *fetched, failed bool) {
	if err := r.claims.Keep(ctx, m.claim, failed); err != nil {
		// The claim lapses after the lease and is taken over then.
		r.log.Warn("claim not kept: the message is read again once its lease lapses", "uid", m.uid, "err", err)
	}
}

// setAside files a message whose attempts all failed as rejected, without
// acting on it or answering it.
func (r *Reader) setAside(h handled, m *fetched, attempts int) handled {
	r.met.PoisonMessages.Inc()
	r.log.Error("message set aside: acting on it failed every time", "uid", m.uid, "message_id", m.messageID,
		"attempts", attempts, "mailbox", r.mailbox(Rejected))
	h.outcome, h.poison = Rejected, true
	return h
}
