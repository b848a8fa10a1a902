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
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
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

	"github.com/prometheus/client_golang/prometheus"
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
	// TLSConfig, when set, is used for smtp.tls tls and starttls (a
	// private CA, say); by default the system roots verify smtp.host.
	TLSConfig *tls.Config
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
	// smtpDown is set while no worker can connect; dialFails counts the
	// failed connections in a row. While down, approvers' emails wait
	// without a token being issued for them.
	smtpDown  atomic.Bool
	dialFails atomic.Int64
}

// errSMTPDown puts an approver's email back while the server is
// unreachable, before its token is issued: a token and a history line
// per attempt would mean nothing while no email can leave.
var errSMTPDown = errors.New("mailer: smtp server unreachable")

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
	m := &Mailer{
		store: p.Store, cfg: p.Config, set: p.Templates, log: p.Logger,
		box: outbox{rdb: p.Store.Redis(), keys: p.Store.Keys()}, from: from,
		domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:], dkim: signer,
		http: p.HTTPClient, p: p, kick: make(chan struct{}, 1),
	}
	// Until a connection has succeeded, the server counts as down: the
	// first approver's email probes it before any token is issued.
	m.smtpDown.Store(true)
	return m, nil
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

// DeadGauge returns a gauge of the dead outbox entries, read from Redis at
// each scrape, for the daemon to register in metrics.Registry.
func (m *Mailer) DeadGauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "contactd_outbox_dead", Help: "Outbox entries given up (dead), across shards.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := m.DeadCount(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
}

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

// dispatch finds the shards with due entries, drains them into the
// workers, and waits when the outbox is idle.
func (m *Mailer) dispatch(ctx context.Context, jobs chan<- *entry) {
	fails := 0
	for ctx.Err() == nil {
		shards, next, err := m.box.scan(ctx, m.now().UnixMilli())
		for _, sh := range shards {
			if err = m.drainShard(ctx, sh, jobs); err != nil {
				break
			}
		}
		if err != nil {
			fails++
			d := capped(fails, 100*time.Millisecond, 30*time.Second)
			m.log.Warn("cannot claim outbox entries; retrying", "err", err, "retry_in", d)
			m.sleep(ctx, d)
			continue
		}
		fails = 0
		if len(shards) > 0 {
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

// drainShard claims a shard's due entries, a few at a time so that none
// waits long under a claim, and hands them to the workers.
func (m *Mailer) drainShard(ctx context.Context, shard int, jobs chan<- *entry) error {
	for ctx.Err() == nil {
		batch, _, err := m.box.claim(ctx, shard, m.now().UnixMilli(), m.p.Lease.Milliseconds(), m.batch())
		if err != nil {
			return err
		}
		for i, e := range batch {
			select {
			case jobs <- e:
			case <-ctx.Done():
				m.handBack(batch[i:])
				return nil
			}
		}
		if len(batch) < m.batch() {
			return nil
		}
	}
	return nil
}

// batch is how many entries one claim takes: enough to keep every worker
// busy for a while, few enough that none waits near its lease.
func (m *Mailer) batch() int { return 4 * m.p.Workers }

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

// job is one entry on its way through a worker: prepared (rendered, token
// issued), sent, then concluded in the outbox.
type job struct {
	e   *entry
	msg *gomail.Msg // nil for an event, or when preparing failed
	rec sentRecord
	err error
	// unsent is set for an email prepared but not sent when the mailer
	// stops: it goes back to the ready set.
	unsent bool
}

// work sends the entries handed to one worker over its own connection.
// Each worker is a short pipeline: while one email is on the wire, the
// next is read from Redis and rendered, and the previous one's outcome is
// written, so that Redis round trips do not add to SMTP ones. An entry
// started is finished even if ctx ends meanwhile.
func (m *Mailer) work(ctx context.Context, jobs <-chan *entry) {
	bg := context.WithoutCancel(ctx)
	s := newSender(m.cfg.SMTP, m.p.Timeout, m.dkim, m.p.TLSConfig)
	defer s.close()
	ready := make(chan *job, 1)
	go func() {
		defer close(ready)
		for e := range jobs {
			ready <- m.prepare(bg, e)
		}
	}()
	done := make(chan *job, 4)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := range done {
			m.conclude(bg, j)
		}
	}()
	for j := range ready {
		switch {
		case errors.Is(j.err, errSMTPDown):
			m.probe(bg, s)
		case j.err == nil && j.msg != nil && ctx.Err() != nil:
			j.unsent = true
		case j.err == nil && j.msg != nil:
			sctx, cancel := context.WithTimeout(bg, m.p.Lease/2)
			j.err = s.send(sctx, j.msg)
			cancel()
			m.noteConnection(j.err)
		}
		done <- j
	}
	close(done)
	wg.Wait()
}

// probe tries to connect while the server is thought down.
func (m *Mailer) probe(ctx context.Context, s *sender) {
	ctx, cancel := context.WithTimeout(ctx, m.p.Timeout)
	defer cancel()
	m.noteConnection(s.connect(ctx))
}

// noteConnection tracks whether the server can be reached.
func (m *Mailer) noteConnection(err error) {
	if isDial(err) {
		m.dialFails.Add(1)
		m.smtpDown.Store(true)
		return
	}
	m.dialFails.Store(0)
	m.smtpDown.Store(false)
}

// prepare does everything before the SMTP exchange: for an email, read
// the request and the directory, issue the token, render and build the
// message; for an event, publish it.
func (m *Mailer) prepare(ctx context.Context, e *entry) *job {
	j := &job{e: e}
	if templates.TokenKinds[e.Kind] && m.smtpDown.Load() {
		j.err = errSMTPDown
		return j
	}
	e.Attempts++
	switch {
	case e.Kind == "":
		j.err = permanent(errors.New(e.LastError))
	case e.Kind == "event":
		j.err = m.publish(ctx, e)
	default:
		j.msg, j.rec, j.err = m.build(ctx, e)
	}
	return j
}

// build composes, renders and writes the email of e.
func (m *Mailer) build(ctx context.Context, e *entry) (*gomail.Msg, sentRecord, error) {
	l, err := m.compose(ctx, e)
	if err != nil {
		return nil, sentRecord{}, err
	}
	rendered, err := m.set.Render(l.data)
	if err != nil {
		return nil, sentRecord{}, permanent(err)
	}
	msg, id, err := m.buildMsg(l, e, rendered)
	if err != nil {
		return nil, sentRecord{}, err
	}
	return msg, m.record(e, l, id), nil
}

// conclude records the outcome of a job in the outbox.
func (m *Mailer) conclude(ctx context.Context, j *job) {
	e, err := j.e, j.err
	log := m.log.With("request_id", e.Request, "outbox_id", e.ref(), "kind", e.Kind, "attempt", e.Attempts)
	switch {
	case j.unsent:
		m.handBack([]*entry{e})
	case err == nil:
		m.settle(ctx, log, e, "sent", func() error { return m.box.ackSent(ctx, e, j.rec.key, j.rec.fields, j.rec.ttl) })
		switch e.Kind {
		case "validation", "reminder", "resend":
			if err := m.store.RecordSent(ctx, e.Request, e.NIC, e.Kind); err != nil {
				log.Warn("could not write the email in the request's history", "err", err)
			}
		}
		if e.Kind != "event" {
			m.last.Store(m.now().UnixNano())
		}
	case errors.Is(err, errSMTPDown) || isDial(err):
		if isDial(err) {
			e.Attempts-- // the server's fault, not the email's
			log.Warn("cannot connect to the SMTP server; will retry", "err", err)
		}
		d := time.Duration(0)
		if m.smtpDown.Load() {
			d = m.backoffCapped(int(m.dialFails.Load()), min(m.p.RetryMax, 5*time.Minute))
		}
		m.settle(ctx, log, e, "retry", func() error { return m.box.retry(ctx, e, m.now().Add(d).UnixMilli()) })
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

// sentRecord is what is written once an email is sent: its Message-ID's
// HASH (no key for an event or an email outside any request).
type sentRecord struct {
	key    string
	fields map[string]any
	ttl    time.Duration
}

// record describes the sent email by its Message-ID, so that a reply
// quoting it is matched to its request, approver and token.
func (m *Mailer) record(e *entry, l *letter, id string) sentRecord {
	if l.request == "" || l.nic == "" {
		return sentRecord{} // no approver or contact to match a reply to
	}
	fields := map[string]any{"r": l.request, "n": l.nic, "k": e.Kind}
	if l.token != "" {
		fields["h"] = workflow.HashToken(l.token)
	}
	ttl := m.cfg.Workflow.RequestTTL.D()
	if e.Kind == "informed" && m.cfg.Workflow.ReportWindow.D() > ttl {
		ttl = m.cfg.Workflow.ReportWindow.D()
	}
	return sentRecord{key: m.store.Keys().SentMessage(id), fields: fields, ttl: ttl}
}

// backoff is RetryBase doubled per attempt, capped at RetryMax, with the
// upper half jittered so that retries of many entries spread out.
func (m *Mailer) backoff(attempt int) time.Duration {
	return m.backoffCapped(attempt, m.p.RetryMax)
}

func (m *Mailer) backoffCapped(attempt int, limit time.Duration) time.Duration {
	d := capped(attempt, m.p.RetryBase, limit)
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
