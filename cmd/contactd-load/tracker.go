package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"contactd/internal/smtpsink"
)

// rawKind marks the raw baseline's messages at the sink.
const rawKind = "raw"

// received is one email as its recipient got it.
type received struct {
	kind, rcpt  string
	link, token string
	at          time.Time
}

// mailbox holds the emails about one request, in order of arrival.
type mailbox struct {
	mu    sync.Mutex
	mails []received
	wake  chan struct{}
}

// tracker files every email the sink receives under its request.
type tracker struct {
	mu     sync.Mutex
	boxes  map[string]*mailbox
	emails int64 // contactd's emails
	bytes  int64 // their size
	raw    int64 // the raw baseline's messages
	faults []failure
}

func newTracker() *tracker { return &tracker{boxes: map[string]*mailbox{}} }

// handle is the sink's callback.
func (t *tracker) handle(m smtpsink.Message) {
	e, err := smtpsink.Parse(m.Data)
	if err == nil && e.Kind == rawKind {
		t.mu.Lock()
		t.raw++
		t.mu.Unlock()
		return
	}
	t.mu.Lock()
	t.emails++
	t.bytes += int64(len(m.Data))
	switch {
	case err != nil:
		t.faults = append(t.faults, failf(checkSink, "an email to %v could not be read: %v", m.To, err))
	case e.Request == "" || e.Kind == "":
		t.faults = append(t.faults, failf(checkSink, "an email to %v has no X-Contactd-Request or X-Contactd-Kind", m.To))
	case len(m.To) != 1:
		t.faults = append(t.faults, failf(checkSink, "the %s email about %s went to %d recipients, want 1", e.Kind, e.Request, len(m.To)))
	case e.Kind == "validation" && e.Token == "":
		t.faults = append(t.faults, failf(checkSink, "the validation email to %s about %s has no link", m.To[0], e.Request))
	}
	t.mu.Unlock()
	if err != nil || e.Request == "" || len(m.To) == 0 {
		return
	}
	b := t.box(e.Request)
	b.mu.Lock()
	b.mails = append(b.mails, received{kind: e.Kind, rcpt: strings.ToLower(m.To[0]), link: e.Link, token: e.Token, at: m.At})
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// box returns the mailbox of a request, made on first use (an email may
// arrive before the API has answered with its request's id).
func (t *tracker) box(id string) *mailbox {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.boxes[id]
	if b == nil {
		b = &mailbox{wake: make(chan struct{}, 1)}
		t.boxes[id] = b
	}
	return b
}

// counts returns the emails and their bytes so far, and the raw messages.
func (t *tracker) counts() (emails, bytes, raw int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.emails, t.bytes, t.raw
}

func (t *tracker) readFaults() []failure {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]failure(nil), t.faults...)
}

// snapshot is a copy of the emails so far.
func (b *mailbox) snapshot() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.mails...)
}

// wait waits until cond holds of the emails, or the deadline passes.
func (b *mailbox) wait(ctx context.Context, deadline time.Time, cond func([]received) bool) ([]received, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		ms := b.snapshot()
		if cond(ms) {
			return ms, nil
		}
		select {
		case <-b.wake:
		case <-timer.C:
			return ms, errTimeout
		case <-ctx.Done():
			return ms, ctx.Err()
		}
	}
}

var errTimeout = fmt.Errorf("timed out")

// want is an email expected: a kind to an address.
type want struct{ kind, rcpt string }

// has tells whether each wanted email is among ms.
func has(ms []received, ws ...want) bool {
	for _, w := range ws {
		if count(ms, w) == 0 {
			return false
		}
	}
	return true
}

func count(ms []received, w want) int {
	n := 0
	for _, m := range ms {
		if m.kind == w.kind && m.rcpt == w.rcpt {
			n++
		}
	}
	return n
}

// of returns the emails of one kind to one address, in order of arrival.
func of(ms []received, w want) []received {
	var out []received
	for _, m := range ms {
		if m.kind == w.kind && m.rcpt == w.rcpt {
			out = append(out, m)
		}
	}
	return out
}

// lastOf is when the last of the wanted emails arrived (the first copy
// of each).
func lastOf(ms []received, ws ...want) time.Time {
	var last time.Time
	for _, w := range ws {
		if c := of(ms, w); len(c) > 0 && c[0].at.After(last) {
			last = c[0].at
		}
	}
	return last
}
