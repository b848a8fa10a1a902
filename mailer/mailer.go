// Package mailer delivers contactd's outbox: it claims the emails the
// workflow queued in Redis, renders each from the request's current state
// in the recipient's language, sends it over SMTP and records it, retrying
// with backoff and keeping as dead what can never be sent. Entries of kind
// "event" are published to the events stream and the webhook instead.
//
// Claims are leases: an entry moves from the ready set to the claimed set
// with the time its claim lapses, in one Lua script, so two daemons never
// take the same entry, and one killed mid-send loses nothing: its claims
// lapse and the next claim round puts them back in the ready set.
//
// The daemon wires it so:
//
//	m, err := mailer.New(mailer.Params{Store: store, Config: cfg, Templates: set, Logger: log})
//	if err != nil { ... }
//	go m.Run(ctx) // returns when ctx is cancelled, claims handed back
package mailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"contactd/config"
	"contactd/metrics"
	"contactd/templates"
	"contactd/workflow"

	gomail "github.com/wneessen/go-mail"
)

// Params are what a Mailer needs. Store, Config and Templates are
// required; every other field has a default.
type Params struct {
	Store     *workflow.Store
	Config    config.Config
	Templates *templates.Set
	Logger    *slog.Logger
	// Workers is the number of emails sent at once, each worker keeping
	// its own SMTP connection (default 2).
	Workers int
	// Now is the clock (default: the store's).
	Now func() time.Time
	// HTTPClient posts events to the webhook (default: 10s timeout).
	HTTPClient *http.Client
	// Timeout bounds each SMTP exchange and the dial (default 30s).
	Timeout time.Duration
	// Lease is how long a claim lasts before another daemon may take the
	// entry again; it must exceed the time one email takes (default 5m).
	Lease time.Duration
	// RetryBase and RetryMax bound the backoff between attempts of one
	// entry: RetryBase doubled at each attempt, at most RetryMax, with
	// jitter (defaults 30s and 1h).
	RetryBase, RetryMax time.Duration
	// Poll is the longest wait between two looks at an idle outbox
	// (default 1s).
	Poll time.Duration
}

// Mailer sends the outbox. Create it with New and start it with Run.
type Mailer struct {
	store  *workflow.Store
	cfg    config.Config
	set    *templates.Set
	log    *slog.Logger
	box    outbox
	from   *mail.Address
	domain string
	dkim   *gomail.DKIMSigner
	http   *http.Client
	p      Params
	kick   chan struct{}
	last   atomic.Int64 // unix ns of the last good send
}

// New checks the parameters and returns a Mailer ready to Run.
func New(p Params) (*Mailer, error) {
	if p.Store == nil {
		return nil, errors.New("mailer: no store")
	}
	if p.Templates == nil {
		return nil, errors.New("mailer: no templates")
	}
	from, err := mail.ParseAddress(p.Config.SMTP.From)
	if err != nil {
		return nil, fmt.Errorf("mailer: smtp.from: %w", err)
	}
	signer, err := loadDKIM(p.Config.SMTP.DKIM)
	if err != nil {
		return nil, err
	}
	defaults(&p)
	return &Mailer{
		store: p.Store, cfg: p.Config, set: p.Templates, log: p.Logger.With("component", "mailer"),
		box: outbox{rdb: p.Store.Redis(), keys: p.Store.Keys()}, from: from,
		domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:], dkim: signer,
		http: p.HTTPClient, p: p, kick: make(chan struct{}, 1),
	}, nil
}

func defaults(p *Params) {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Workers < 1 {
		p.Workers = 2
	}
	if p.Now == nil {
		p.Now = p.Store.Now
	}
	if p.HTTPClient == nil {
		p.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&p.Timeout, 30*time.Second)
	set(&p.Lease, 5*time.Minute)
	set(&p.RetryBase, 30*time.Second)
	set(&p.RetryMax, time.Hour)
	set(&p.Poll, time.Second)
	if p.Config.SMTP.MaxAttempts < 1 {
		p.Config.SMTP.MaxAttempts = 1
	}
}

func (m *Mailer) now() time.Time { return m.p.Now() }

// Kick makes the mailer look at the outbox now rather than at its next
// poll; the workflow's callers may use it after queueing emails.
func (m *Mailer) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// LastSend returns when an email was last sent successfully (the zero time
// if none yet), for /readyz.
func (m *Mailer) LastSend() time.Time {
	if v := m.last.Load(); v != 0 {
		return time.Unix(0, v)
	}
	return time.Time{}
}

// DeadCount returns how many outbox entries were given up, across shards.
func (m *Mailer) DeadCount(ctx context.Context) (int64, error) { return m.box.deadCount(ctx) }

// Run sends the outbox until ctx is cancelled. The emails being sent at
// that moment are finished (within the SMTP timeout); claimed entries not
// yet started are handed back. Redis or SMTP going away is logged and
// retried with capped backoff; Run only returns when ctx ends.
func (m *Mailer) Run(ctx context.Context) error {
	jobs := make(chan *entry)
	var wg sync.WaitGroup
	for i := 0; i < m.p.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.work(ctx, jobs)
		}()
	}
	m.dispatch(ctx, jobs)
	close(jobs)
	wg.Wait()
	return nil
}

// dispatch claims due entries shard by shard and hands them to the
// workers, waiting when the outbox is idle.
func (m *Mailer) dispatch(ctx context.Context, jobs chan<- *entry) {
	fails := 0
	for ctx.Err() == nil {
		found, next, err := m.claimRound(ctx, jobs)
		if err != nil {
			fails++
			d := capped(fails, 100*time.Millisecond, 30*time.Second)
			m.log.Warn("cannot claim outbox entries; retrying", "err", err, "retry_in", d)
			m.sleep(ctx, d)
			continue
		}
		fails = 0
		if found {
			continue
		}
		wait := m.p.Poll
		if next >= 0 {
			if d := time.Duration(next-m.now().UnixMilli()) * time.Millisecond; d < wait {
				wait = max(d, time.Millisecond)
			}
		}
		m.sleep(ctx, wait)
	}
}

// claimRound claims a batch from every shard. It reports whether it found
// any entry and the earliest due time (ms) of what is left (-1 if none).
func (m *Mailer) claimRound(ctx context.Context, jobs chan<- *entry) (bool, int64, error) {
	found, earliest := false, int64(-1)
	for shard := 0; shard < workflow.Shards && ctx.Err() == nil; shard++ {
		now := m.now().UnixMilli()
		batch, next, err := m.box.claim(ctx, shard, now, m.p.Lease.Milliseconds(), m.p.Workers)
		if err != nil {
			return found, earliest, err
		}
		if next >= 0 && (earliest < 0 || next < earliest) {
			earliest = next
		}
		for i, e := range batch {
			found = true
			select {
			case jobs <- e:
			case <-ctx.Done():
				m.handBack(batch[i:])
				return found, earliest, nil
			}
		}
	}
	return found, earliest, nil
}

// handBack returns claimed entries to the ready set at shutdown.
func (m *Mailer) handBack(es []*entry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, e := range es {
		if err := m.box.release(ctx, e, m.now().UnixMilli()); err != nil {
			m.log.Warn("cannot hand back an outbox entry; its claim will lapse", "outbox_id", e.ref(), "err", err)
		}
	}
}

func (m *Mailer) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-m.kick:
	}
}

// work sends the entries handed to one worker over its own connection.
func (m *Mailer) work(ctx context.Context, jobs <-chan *entry) {
	s := newSender(m.cfg.SMTP, m.p.Timeout, m.dkim)
	defer s.close()
	for e := range jobs {
		// An entry started is finished even if ctx ends meanwhile.
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.p.Lease)
		m.handle(jctx, s, e)
		cancel()
	}
}

// handle delivers one entry and records the outcome in the outbox.
func (m *Mailer) handle(ctx context.Context, s *sender, e *entry) {
	e.Attempts++
	err := m.deliver(ctx, s, e)
	log := m.log.With("request_id", e.Request, "outbox_id", e.ref(), "kind", e.Kind, "attempt", e.Attempts)
	switch {
	case err == nil:
		m.settle(ctx, log, e, "sent", func() error { return m.box.ack(ctx, e) })
		if e.Kind != "event" {
			m.last.Store(m.now().UnixNano())
		}
	case errors.Is(err, errNotDue):
		log.Info("email no longer due; dropped")
		m.settle(ctx, log, e, "skipped", func() error { return m.box.ack(ctx, e) })
	case isPermanent(err) || e.Attempts >= m.cfg.SMTP.MaxAttempts:
		e.LastError = err.Error()
		log.Error("delivery given up; entry kept as dead", "err", err)
		m.settle(ctx, log, e, "dead", func() error { return m.box.dead(ctx, e, m.now().UnixMilli()) })
		m.undeliverable(ctx, log, e, err)
	default:
		e.LastError = err.Error()
		d := m.backoff(e.Attempts)
		log.Warn("delivery failed; will retry", "err", err, "retry_in", d)
		m.settle(ctx, log, e, "retry", func() error { return m.box.retry(ctx, e, m.now().Add(d).UnixMilli()) })
	}
}

// settle records an outcome in Redis, trying a few times: if Redis stays
// away the claim lapses and the entry is tried again later.
func (m *Mailer) settle(ctx context.Context, log *slog.Logger, e *entry, result string, write func() error) {
	kind := e.Kind
	if kind == "" {
		kind = "unknown"
	}
	metrics.Emails.WithLabelValues(kind, result).Inc()
	for i := 1; ; i++ {
		err := write()
		if err == nil {
			return
		}
		if i == 5 || ctx.Err() != nil {
			log.Error("cannot record the outcome in the outbox; the entry will be tried again when its claim lapses",
				"result", result, "err", err)
			return
		}
		time.Sleep(capped(i, 100*time.Millisecond, 2*time.Second))
	}
}

// undeliverable tells the workflow that an approver's address was refused
// for good, so the requester hears of it and reminders stop.
func (m *Mailer) undeliverable(ctx context.Context, log *slog.Logger, e *entry, err error) {
	var se *SendError
	if !templates.TokenKinds[e.Kind] || !errors.As(err, &se) || !se.Recipient {
		return
	}
	if err := m.store.MarkUndeliverable(ctx, e.Request, e.NIC); err != nil {
		log.Warn("cannot mark the approver undeliverable", "err", err)
	}
}

// deliver sends one entry: an email, or an event.
func (m *Mailer) deliver(ctx context.Context, s *sender, e *entry) error {
	if e.Kind == "" {
		return permanent(errors.New(e.LastError))
	}
	if e.Kind == "event" {
		return m.publish(ctx, e)
	}
	l, err := m.compose(ctx, e)
	if err != nil {
		return err
	}
	rendered, err := m.set.Render(l.data)
	if err != nil {
		return permanent(err)
	}
	msg, id, err := m.buildMsg(l, e, rendered)
	if err != nil {
		return err
	}
	if err := s.send(ctx, msg); err != nil {
		return err
	}
	m.remember(ctx, e, l, id)
	return nil
}

// remember writes the sent email's Message-ID, so that a reply quoting it
// is matched to its request, approver and token.
func (m *Mailer) remember(ctx context.Context, e *entry, l *letter, id string) {
	if l.request == "" {
		return
	}
	fields := map[string]any{"r": l.request, "n": l.nic, "k": e.Kind}
	if l.token != "" {
		fields["h"] = workflow.HashToken(l.token)
	}
	ttl := m.cfg.Workflow.RequestTTL.D()
	if e.Kind == "informed" && m.cfg.Workflow.ReportWindow.D() > ttl {
		ttl = m.cfg.Workflow.ReportWindow.D()
	}
	key := m.store.Keys().SentMessage(id)
	pipe := m.box.rdb.Pipeline()
	pipe.HSet(ctx, key, fields)
	pipe.Expire(ctx, key, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		m.log.Warn("email sent but its Message-ID not recorded; replies to it will be matched by token only",
			"request_id", e.Request, "outbox_id", e.ref(), "err", err)
	}
}

// backoff is RetryBase doubled per attempt, capped at RetryMax, with the
// upper half jittered so that retries of many entries spread out.
func (m *Mailer) backoff(attempt int) time.Duration {
	d := capped(attempt, m.p.RetryBase, m.p.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// capped is base·2^(n-1), at most limit.
func capped(n int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
