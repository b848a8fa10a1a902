// Package mailer delivers contactd's outbox: it claims the emails the
// workflow queued, renders each from the request's current state in the
// recipient's language, sends it over SMTP and records it, retrying with
// backoff and keeping as dead what can never be sent. Entries of kind
// event are published to the events stream and the webhook instead.
//
// Claims are short leases that a heartbeat renews while the work runs, so
// a daemon killed mid-send loses nothing and delays nothing for long: its
// claims lapse within the lease and any mailer takes the entries back.
// The relay's state is one for all emails: while it cannot be reached,
// nothing is claimed and a probe tries it again with capped backoff; when
// it answers, everything due goes out at once.
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
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"contactd/config"
	"contactd/internal/outage"
	"contactd/metrics"
	"contactd/templates"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus"
	gomail "github.com/wneessen/go-mail"
)

// Outbox is what the mailer needs of the outbox in the store.
type Outbox interface {
	ScanOutbox(ctx context.Context) (*workflow.OutboxScan, error)
	ClaimOutbox(ctx context.Context, shard int, lease time.Duration, limit int) ([]*workflow.OutboxEntry, time.Time, int, error)
	Heartbeat(ctx context.Context, entries []*workflow.OutboxEntry, lease time.Duration) error
	RecordSent(ctx context.Context, e *workflow.OutboxEntry, sent workflow.Sent) error
	RetryOutbox(ctx context.Context, e *workflow.OutboxEntry, when time.Time) error
	ReleaseOutbox(ctx context.Context, e *workflow.OutboxEntry) error
	BuryOutbox(ctx context.Context, e *workflow.OutboxEntry) error
	DropOutbox(ctx context.Context, e *workflow.OutboxEntry) error
	WatchOutbox(ctx context.Context, wake func(shard int)) error
	PublishEvent(ctx context.Context, event, requestID string, body []byte) error
}

// Requests is what the mailer reads and writes of requests to write an
// email.
type Requests interface {
	Get(ctx context.Context, id string) (*workflow.Request, error)
	Parties(ctx context.Context, r *workflow.Request, extra ...string) (*workflow.Service, map[string]*workflow.Contact, error)
	IssueToken(ctx context.Context, id, nic string, kind workflow.Kind) (string, string, error)
	IssueReportToken(ctx context.Context, id, nic string) (string, error)
	MarkUndeliverable(ctx context.Context, id, nic string) error
	Now() time.Time
}

// Store is the part of workflow.Store the mailer uses.
type Store interface {
	Outbox
	Requests
}

// Params are what a Mailer needs. Store, Config and Templates are
// required; every other field has a default.
type Params struct {
	Store     Store
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
	// Lease is how long a claim lasts without a heartbeat; the heartbeat
	// renews it every third of it. A stopped daemon's entries are taken
	// back within a lease (default 15s).
	Lease time.Duration
	// RetryBase and RetryMax bound the backoff between attempts of one
	// entry: RetryBase doubled at each attempt, at most RetryMax, with
	// jitter (defaults 30s and 1h).
	RetryBase, RetryMax time.Duration
	// ProbeMax caps the wait between two tries of an unreachable relay
	// (default 5s), so mail leaves within seconds of its return.
	ProbeMax time.Duration
	// Poll is the longest wait between two looks at the whole outbox; a
	// queued email wakes the mailers at once through Redis, so the poll
	// is only a safety net (default 5s).
	Poll time.Duration
	// OutageLogEvery is how often an outage is logged while it lasts
	// (default 30s).
	OutageLogEvery time.Duration
	// Metrics receives the mailer's counts (default: a registry of its own).
	Metrics *metrics.Metrics
	// Redis follows the store's outages; the daemon shares one among its
	// components (default: the mailer's own).
	Redis *outage.Tracker
}

// Mailer sends the outbox. Create it with New and start it with Run.
type Mailer struct {
	store  Store
	cfg    config.Config
	set    *templates.Set
	log    *slog.Logger
	from   *mail.Address
	domain string
	dkim   *gomail.DKIMSigner
	http   *http.Client
	p      Params
	met    *metrics.Metrics
	kick   chan struct{}
	last   atomic.Int64 // unix ns of the last good send
	// relay follows the SMTP relay, redis the store; inflight holds the
	// claimed entries the heartbeat renews.
	relay    *outage.Tracker
	redis    *outage.Tracker
	webhook  *outage.Tracker
	inflight inflight
	// wakeShards collects the shards named by wake-ups since the last
	// drain; -1 asks for a whole scan.
	wakeMu     sync.Mutex
	wakeShards map[int]bool
}

// errRelayDown puts an email back while the relay is unreachable, before
// its token is issued: it is not the email's fault.
var errRelayDown = errors.New("mailer: smtp relay unreachable")

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
		store: p.Store, cfg: p.Config, set: p.Templates, log: p.Logger, from: from,
		domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:], dkim: signer,
		http: p.HTTPClient, p: p, met: p.Metrics, kick: make(chan struct{}, 1), wakeShards: map[int]bool{},
		relay:   outage.New("smtp", p.Logger, p.OutageLogEvery),
		redis:   p.Redis,
		webhook: outage.New("webhook", p.Logger, p.OutageLogEvery),
	}
	m.relay.OnChange(func(up bool) {
		m.met.SMTPUp.Set(boolGauge(up))
		if up {
			m.Kick()
		}
	})
	m.met.SMTPUp.Set(1)
	return m, nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
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
	set(&p.Lease, 15*time.Second)
	set(&p.RetryBase, 30*time.Second)
	set(&p.RetryMax, time.Hour)
	set(&p.ProbeMax, 5*time.Second)
	set(&p.Poll, 5*time.Second)
	set(&p.OutageLogEvery, 30*time.Second)
	p.Metrics = metrics.Or(p.Metrics)
	if p.Redis == nil {
		p.Redis = outage.New("redis", p.Logger, p.OutageLogEvery)
	}
	if p.Config.SMTP.MaxAttempts < 1 {
		p.Config.SMTP.MaxAttempts = 1
	}
}

func (m *Mailer) now() time.Time { return m.p.Now() }

// Kick makes the mailer look at the whole outbox now rather than at its
// next poll.
func (m *Mailer) Kick() { m.wake(-1) }

// wake notes a shard to drain (-1: all) and wakes the dispatcher.
func (m *Mailer) wake(shard int) {
	m.wakeMu.Lock()
	m.wakeShards[shard] = true
	m.wakeMu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// woken returns and forgets the shards named since the last call.
func (m *Mailer) woken() (shards []int, all bool) {
	m.wakeMu.Lock()
	defer m.wakeMu.Unlock()
	for sh := range m.wakeShards {
		if sh < 0 {
			all = true
		} else {
			shards = append(shards, sh)
		}
	}
	clear(m.wakeShards)
	return shards, all
}

// LastSend returns when an email was last sent successfully (the zero time
// if none yet), for /readyz.
func (m *Mailer) LastSend() time.Time {
	if v := m.last.Load(); v != 0 {
		return time.Unix(0, v)
	}
	return time.Time{}
}

// RelayUp reports whether the SMTP relay is thought reachable.
func (m *Mailer) RelayUp() bool { return !m.relay.Down() }

// DeadCount returns how many outbox entries were given up, across shards.
func (m *Mailer) DeadCount(ctx context.Context) (int64, error) {
	sc, err := m.store.ScanOutbox(ctx)
	if err != nil {
		return 0, err
	}
	return sc.Dead, nil
}

// OutboxGauge returns a gauge of the outbox entries by state (ready,
// claimed, dead), read from Redis at each scrape, for the daemon to
// register in its metrics.Registry.
func (m *Mailer) OutboxGauge() prometheus.Collector {
	return metrics.StateGauge("contactd_outbox_entries",
		"Outbox entries, by state (ready: waiting to be sent; claimed: being sent; dead: given up).", "state",
		func(ctx context.Context) (map[string]int64, error) {
			sc, err := m.store.ScanOutbox(ctx)
			if err != nil {
				return nil, err
			}
			return map[string]int64{"ready": sc.Ready, "claimed": sc.Claimed, "dead": sc.Dead}, nil
		})
}

// DeadGauge returns a gauge of the dead outbox entries alone.
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
	jobs := make(chan *workflow.OutboxEntry)
	var wg sync.WaitGroup
	for i := 0; i < m.p.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.work(ctx, jobs)
		}()
	}
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	var hb sync.WaitGroup
	hb.Add(1)
	go func() {
		defer hb.Done()
		m.heartbeat(hbCtx)
	}()
	go m.watch(ctx)
	m.dispatch(ctx, jobs)
	close(jobs)
	wg.Wait()
	stopHeartbeat()
	hb.Wait()
	return nil
}

// watch subscribes to the wake-ups that every daemon's transitions
// publish, retrying while Redis is away. Once subscribed it asks for a
// whole scan: an email queued before the subscription woke nobody.
func (m *Mailer) watch(ctx context.Context) {
	for fails := 1; ctx.Err() == nil; fails++ {
		if err := m.store.WatchOutbox(ctx, m.wake); err == nil {
			m.Kick()
			return
		}
		sleepCtx(ctx, capped(fails, 100*time.Millisecond, 5*time.Second))
	}
}

// heartbeat renews the claims of the entries being worked on.
func (m *Mailer) heartbeat(ctx context.Context) {
	t := time.NewTicker(m.p.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		es := m.inflight.list()
		if len(es) == 0 {
			continue
		}
		if err := m.store.Heartbeat(ctx, es, m.p.Lease); err != nil && ctx.Err() == nil {
			m.log.Warn("cannot renew outbox claims; another daemon may take them over", "entries", len(es), "err", err)
		}
	}
}

// dispatch claims due entries and hands them to the workers: from the
// shards a wake-up names, or from a scan of every shard at each poll. While
// the relay is down it claims nothing and probes it instead.
func (m *Mailer) dispatch(ctx context.Context, jobs chan<- *workflow.OutboxEntry) {
	probe := newSender(m.cfg.SMTP, m.p.Timeout, m.dkim, m.p.TLSConfig)
	defer probe.close()
	nextScan := time.Time{}
	for ctx.Err() == nil {
		if m.relay.Down() {
			m.probe(ctx, probe)
			continue
		}
		shards, all := m.woken()
		var next time.Time
		if all || !time.Now().Before(nextScan) {
			sc, err := m.store.ScanOutbox(ctx)
			if err != nil {
				m.storeDown(ctx, err)
				continue
			}
			shards, next, nextScan = sc.Due, sc.Next, time.Now().Add(m.p.Poll)
		}
		busy, err := m.drain(ctx, shards, jobs, &next)
		if err != nil {
			m.storeDown(ctx, err)
			continue
		}
		m.redis.OK()
		if busy {
			continue
		}
		wait := time.Until(nextScan)
		if !next.IsZero() {
			wait = min(wait, next.Sub(m.now()))
		}
		m.sleep(ctx, max(wait, time.Millisecond))
	}
}

// drain claims the due entries of the shards and hands them to the
// workers. It reports whether it claimed anything, and lowers next to the
// earliest due time it saw.
func (m *Mailer) drain(ctx context.Context, shards []int, jobs chan<- *workflow.OutboxEntry, next *time.Time) (bool, error) {
	busy := false
	for _, sh := range shards {
		for ctx.Err() == nil && !m.relay.Down() {
			batch, n, back, err := m.store.ClaimOutbox(ctx, sh, m.p.Lease, m.batch())
			if err != nil {
				return busy, err
			}
			if back > 0 {
				m.met.OutboxTakenBack.Add(float64(back))
				m.log.Warn("took back outbox entries whose claim lapsed (their daemon stopped)", "shard", sh, "entries", back)
			}
			if !n.IsZero() && (next.IsZero() || n.Before(*next)) {
				*next = n
			}
			m.inflight.add(batch...)
			for i, e := range batch {
				select {
				case jobs <- e:
				case <-ctx.Done():
					m.handBack(batch[i:])
					return busy, nil
				}
			}
			busy = busy || len(batch) > 0
			if len(batch) < m.batch() {
				break
			}
		}
	}
	return busy, nil
}

// storeDown logs a failure to reach Redis and waits before trying again.
func (m *Mailer) storeDown(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	m.redis.Fail(err)
	m.sleep(ctx, capped(m.redis.Failures(), 100*time.Millisecond, 5*time.Second))
}

// probe tries the relay while it is down, waiting a capped backoff first.
func (m *Mailer) probe(ctx context.Context, s *sender) {
	sleepCtx(ctx, capped(m.relay.Failures(), 250*time.Millisecond, m.p.ProbeMax))
	if ctx.Err() != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, m.p.Timeout)
	defer cancel()
	s.close()
	if err := s.connect(pctx); err != nil {
		m.relayFailed(ctx, err)
		return
	}
	s.close()
	m.relay.OK()
}

// relayFailed records that the relay could not be reached, with the
// number of emails waiting (counted only when the outage is logged).
func (m *Mailer) relayFailed(ctx context.Context, err error) {
	m.relay.Fail(err, "emails_waiting", emailsWaiting{ctx: context.WithoutCancel(ctx), store: m.store})
}

// emailsWaiting is the number of ready and claimed outbox entries, read
// from the store when a log line shows it ("unknown" if the store cannot
// say, Redis being down too).
type emailsWaiting struct {
	ctx   context.Context
	store Outbox
}

// LogValue implements slog.LogValuer.
func (w emailsWaiting) LogValue() slog.Value {
	ctx, cancel := context.WithTimeout(w.ctx, 2*time.Second)
	defer cancel()
	sc, err := w.store.ScanOutbox(ctx)
	if err != nil {
		return slog.StringValue("unknown")
	}
	return slog.Int64Value(sc.Ready + sc.Claimed)
}

// batch is how many entries one claim takes.
func (m *Mailer) batch() int { return 4 * m.p.Workers }

// handBack returns claimed entries to the ready set.
func (m *Mailer) handBack(es []*workflow.OutboxEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, e := range es {
		m.inflight.remove(e)
		if err := m.store.ReleaseOutbox(ctx, e); err != nil && !workflow.IsClaimLost(err) {
			m.log.Warn("cannot hand back an outbox entry; its claim will lapse", "outbox_id", e.Ref(), "err", err)
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

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// inflight is the set of claimed entries of this mailer.
type inflight struct {
	mu sync.Mutex
	m  map[*workflow.OutboxEntry]bool
}

func (f *inflight) add(es ...*workflow.OutboxEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[*workflow.OutboxEntry]bool{}
	}
	for _, e := range es {
		f.m[e] = true
	}
}

func (f *inflight) remove(e *workflow.OutboxEntry) {
	f.mu.Lock()
	delete(f.m, e)
	f.mu.Unlock()
}

func (f *inflight) list() []*workflow.OutboxEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*workflow.OutboxEntry, 0, len(f.m))
	for e := range f.m {
		out = append(out, e)
	}
	return out
}

// job is one entry on its way through a worker: prepared (rendered, token
// issued), sent, then concluded in the outbox.
type job struct {
	e   *workflow.OutboxEntry
	msg *gomail.Msg // nil for an event, or when preparing failed
	rec workflow.Sent
	err error
	// unsent is set for an email prepared but not sent when the mailer
	// stops, or when the relay went down meanwhile: it goes back to ready.
	unsent bool
}

// work sends the entries handed to one worker over its own connection.
// Each worker is a short pipeline: while one email is on the wire, the
// next is read from Redis and rendered, and the previous one's outcome is
// written, so that Redis round trips do not add to SMTP ones. An entry
// started is finished even if ctx ends meanwhile.
func (m *Mailer) work(ctx context.Context, jobs <-chan *workflow.OutboxEntry) {
	bg := context.WithoutCancel(ctx)
	s := newSender(m.cfg.SMTP, m.p.Timeout, m.dkim, m.p.TLSConfig)
	defer s.close()
	ready := make(chan *job, 1)
	go func() {
		defer close(ready)
		for e := range jobs {
			ready <- m.safely(e, func() *job { return m.prepare(bg, e) })
		}
	}()
	done := make(chan *job, 4)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := range done {
			m.safely(j.e, func() *job { m.conclude(bg, j); return nil })
		}
	}()
	for j := range ready {
		switch {
		case errors.Is(j.err, errRelayDown):
		case j.err == nil && j.msg != nil && (ctx.Err() != nil || m.relay.Down()):
			j.unsent = true
		case j.err == nil && j.msg != nil:
			m.safely(j.e, func() *job { m.send(bg, s, j); return nil })
		}
		done <- j
	}
	close(done)
	wg.Wait()
}

// send hands one prepared email to the relay.
func (m *Mailer) send(ctx context.Context, s *sender, j *job) {
	sctx, cancel := context.WithTimeout(ctx, 2*m.p.Timeout)
	defer cancel()
	start := time.Now()
	j.err = s.send(sctx, j.msg)
	m.met.SMTPSendSeconds.Observe(time.Since(start).Seconds())
	if isDial(j.err) {
		m.relayFailed(ctx, j.err)
	} else if j.err == nil {
		m.relay.OK()
	}
}

// safely runs f for entry e, turning a panic into a permanent failure of
// that entry (it goes dead with the panic as its reason) so that one
// poison entry cannot stop the daemon.
func (m *Mailer) safely(e *workflow.OutboxEntry, f func() *job) (j *job) {
	defer func() {
		if r := recover(); r != nil {
			m.met.Panics.WithLabelValues("mailer").Inc()
			m.log.Error("panic while handling an outbox entry; entry given up", "outbox_id", e.Ref(),
				"kind", string(e.Kind), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			j = &job{e: e, err: permanent(fmt.Errorf("mailer: panic: %v", r))}
			e.LastError = j.err.Error()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := m.store.BuryOutbox(ctx, e); err != nil {
				m.log.Warn("cannot bury the entry; its claim will lapse", "outbox_id", e.Ref(), "err", err)
			}
			m.inflight.remove(e)
			j.unsent, j.err = false, errBuried
		}
	}()
	return f()
}

// errBuried marks a job already settled by safely.
var errBuried = errors.New("mailer: entry given up after a panic")

// prepare does everything before the SMTP exchange: for an email, read
// the request and the directory, issue the token, render and build the
// message; for an event, publish it.
func (m *Mailer) prepare(ctx context.Context, e *workflow.OutboxEntry) *job {
	j := &job{e: e}
	if e.Kind != workflow.KindEvent && m.relay.Down() {
		j.err = errRelayDown
		return j
	}
	e.Attempts++
	switch {
	case e.Unreadable || e.Kind == "":
		j.err = permanent(errors.New(e.LastError))
	case e.Kind == workflow.KindEvent:
		j.err = m.publish(ctx, e)
	default:
		j.msg, j.rec, j.err = m.build(ctx, e)
	}
	return j
}

// build composes, renders and writes the email of e.
func (m *Mailer) build(ctx context.Context, e *workflow.OutboxEntry) (*gomail.Msg, workflow.Sent, error) {
	l, err := m.compose(ctx, e)
	if err != nil {
		return nil, workflow.Sent{}, err
	}
	rendered, err := m.set.Render(l.data)
	if err != nil {
		return nil, workflow.Sent{}, permanent(err)
	}
	msg, id, err := m.buildMsg(l, e, rendered)
	if err != nil {
		return nil, workflow.Sent{}, err
	}
	return msg, m.record(e, l, id), nil
}

// conclude records the outcome of a job in the outbox.
func (m *Mailer) conclude(ctx context.Context, j *job) {
	e, err := j.e, j.err
	defer m.inflight.remove(e)
	log := m.log.With("request_id", e.Request, "outbox_id", e.Ref(), "kind", string(e.Kind), "attempt", e.Attempts)
	switch {
	case errors.Is(err, errBuried):
	case j.unsent || errors.Is(err, errRelayDown) || isDial(err):
		if !errors.Is(err, errRelayDown) && !j.unsent {
			e.Attempts-- // the relay's fault, not the email's
		}
		m.settle(ctx, log, e, "waiting", func() error { return m.store.ReleaseOutbox(ctx, e) })
	case err == nil:
		if e.Kind != workflow.KindEvent {
			m.last.Store(m.now().UnixNano())
			m.met.LastSend.Set(float64(m.now().Unix()))
		}
		m.settle(ctx, log, e, "sent", func() error { return m.store.RecordSent(ctx, e, j.rec) })
	case errors.Is(err, errNotDue):
		log.Info("email no longer due; dropped")
		m.settle(ctx, log, e, "skipped", func() error { return m.store.DropOutbox(ctx, e) })
	case isPermanent(err) || e.Attempts >= m.cfg.SMTP.MaxAttempts:
		e.LastError = err.Error()
		log.Error("delivery given up; entry kept as dead", "err", err)
		m.settle(ctx, log, e, "dead", func() error { return m.store.BuryOutbox(ctx, e) })
		m.undeliverable(ctx, log, e, err)
	default:
		e.LastError = err.Error()
		d := m.backoff(e.Attempts)
		log.Warn("delivery failed; will retry", "err", err, "retry_in", d.String())
		m.settle(ctx, log, e, "retry", func() error { return m.store.RetryOutbox(ctx, e, m.now().Add(d)) })
	}
}

// settle records an outcome in Redis, trying a few times: if Redis stays
// away the claim lapses and the entry is tried again later.
func (m *Mailer) settle(ctx context.Context, log *slog.Logger, e *workflow.OutboxEntry, result string, write func() error) {
	kind := string(e.Kind)
	switch {
	case e.Kind == workflow.KindEvent && result == "sent":
		m.met.Webhooks.WithLabelValues("delivered").Inc()
	case e.Kind == workflow.KindEvent:
		m.met.Webhooks.WithLabelValues(result).Inc()
	case kind == "":
		m.met.Emails.WithLabelValues("unknown", result).Inc()
	default:
		m.met.Emails.WithLabelValues(kind, result).Inc()
	}
	for i := 1; ; i++ {
		err := write()
		if err == nil {
			return
		}
		if workflow.IsClaimLost(err) {
			log.Warn("outbox entry was taken over by another daemon meanwhile (its claim lapsed)", "result", result)
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
func (m *Mailer) undeliverable(ctx context.Context, log *slog.Logger, e *workflow.OutboxEntry, err error) {
	var se *SendError
	if !e.Kind.CarriesToken() || !errors.As(err, &se) || !se.Recipient {
		return
	}
	if err := m.store.MarkUndeliverable(ctx, e.Request, e.NIC); err != nil {
		log.Warn("cannot mark the approver undeliverable", "err", err)
	}
}

// record describes the sent email by its Message-ID, so that a reply or a
// delivery report quoting it is matched to its request, approver and
// token.
func (m *Mailer) record(e *workflow.OutboxEntry, l *letter, id string) workflow.Sent {
	if l.request == "" || l.nic == "" {
		return workflow.Sent{} // no approver or contact to match a reply to
	}
	ttl := m.cfg.Workflow.RequestTTL.D()
	if e.Kind == workflow.KindInformed && m.cfg.Workflow.ReportWindow.D() > ttl {
		ttl = m.cfg.Workflow.ReportWindow.D()
	}
	return workflow.Sent{MessageID: id, TTL: ttl}
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
