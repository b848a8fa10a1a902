// Package mailer delivers contactd's outbox: it claims the entries the
// workflow queued, a batch at a time, reads what their emails show once
// for the whole batch, issues the tokens they carry, renders each email
// in the recipient's language, sends it over SMTP and records the batch's
// outcomes in one step, retrying with backoff and keeping as dead what can
// never be sent. Entries of kind event are published to the events stream
// and the webhook instead.
//
// Claims are short leases, owned and fenced: a heartbeat renews them
// while the work runs, and a mailer that lost a claim (it stalled past its
// lease and another daemon took the entry) neither sends nor records it.
// A daemon killed mid-send loses nothing and delays nothing for long: its
// claims lapse within the lease and any mailer takes the entries back.
// The relay's state is one for all emails: while it cannot be reached,
// nothing is claimed and a probe tries it again with capped backoff; when
// it answers, everything due goes out at once.
//
// Stopping never sends an email twice: no new SMTP transaction starts, one
// in progress is finished (within smtp.timeout) and recorded, and the
// entries not begun are handed back for the next start.
//
// The daemon wires it so:
//
//	m, err := mailer.New(mailer.Params{Store: store, Config: cfg, Templates: set, Logger: log})
//	if err != nil { ... }
//	go m.Run(ctx) // returns when ctx is cancelled and what was on the wire is recorded
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
	Heartbeat(ctx context.Context, entries []*workflow.OutboxEntry, lease time.Duration) ([]*workflow.OutboxEntry, error)
	Settle(ctx context.Context, batch []workflow.Settlement) ([]*workflow.OutboxEntry, error)
	IssueTokens(ctx context.Context, shard int, asks []*workflow.TokenAsk) error
	WatchOutbox(ctx context.Context, wake func(shard int)) error
	PublishEvent(ctx context.Context, entryRef, event, requestID string, body []byte) error
}

// Requests is what the mailer reads of requests and the directory to
// write an email.
type Requests interface {
	Get(ctx context.Context, id string) (*workflow.Request, error)
	ReadRequests(ctx context.Context, ids []string) (map[string]*workflow.Request, error)
	ReadHandovers(ctx context.Context, ids []string) (map[string]*workflow.Handover, error)
	RunJob(ctx context.Context, e *workflow.OutboxEntry) error
	Snapshot(m *workflow.Message) *workflow.Request
	EventRequest(ctx context.Context, m *workflow.Message) (*workflow.Request, error)
	ReadContacts(ctx context.Context, nics []string) (map[string]*workflow.Contact, error)
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
	// Timeout bounds each SMTP exchange and the dial (default: smtp.timeout,
	// else 30s).
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
	// relay follows the SMTP relay, redis the store.
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

// errLeaseLost stops an email whose claim this mailer no longer holds.
var errLeaseLost = errors.New("mailer: claim lost before sending")

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
	set(&p.Timeout, p.Config.SMTP.Timeout.D())
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

// StopTimeout is the longest Run takes to return once its context is
// cancelled: an SMTP transaction already begun is finished (within the
// SMTP timeout) and the outcomes are recorded (within 10 s).
func (m *Mailer) StopTimeout() time.Duration { return m.p.Timeout + 10*time.Second }

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

// Run sends the outbox until ctx is cancelled. Then no new SMTP
// transaction starts: the emails being sent are finished (within the SMTP
// timeout) and recorded, and the claimed entries not begun are handed
// back. Redis or SMTP going away is logged and retried with capped
// backoff; Run only returns when ctx ends (or it panics: its workers,
// heartbeat and recorder are stopped either way).
func (m *Mailer) Run(ctx context.Context) error {
	sendq := make(chan *job, m.p.Workers)
	doneq := make(chan *job, 4*m.batch())
	var workers, recorder, hb sync.WaitGroup
	recorder.Add(1)
	go func() {
		defer recorder.Done()
		m.record(doneq)
	}()
	for i := 0; i < m.p.Workers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			m.work(ctx, sendq, doneq)
		}()
	}
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	hb.Add(1)
	go func() {
		defer hb.Done()
		m.heartbeat(hbCtx)
	}()
	defer func() {
		close(sendq)
		workers.Wait()
		close(doneq)
		recorder.Wait()
		stopHeartbeat()
		hb.Wait()
		// Whatever a panic left claimed and unsettled is no longer
		// renewed: its claims lapse and any daemon takes it back.
		m.inflight.clear()
	}()
	go m.watch(ctx)
	m.dispatch(ctx, sendq, doneq)
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

// heartbeat renews the claims of the entries being worked on, and marks
// those whose claim was lost so that they are not sent.
func (m *Mailer) heartbeat(ctx context.Context) {
	t := time.NewTicker(m.p.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.renew(ctx)
	}
}

// renew is one heartbeat.
func (m *Mailer) renew(ctx context.Context) {
	var jobs []*job
	for _, j := range m.inflight.list() {
		if !j.lost.Load() {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return
	}
	es := make([]*workflow.OutboxEntry, len(jobs))
	for i, j := range jobs {
		es[i] = j.e
	}
	until := time.Now().Add(m.p.Lease)
	lost, err := m.store.Heartbeat(ctx, es, m.p.Lease)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("cannot renew outbox claims; another daemon may take them over", "entries", len(es), "err", err)
		}
		return
	}
	gone := map[*workflow.OutboxEntry]bool{}
	for _, e := range lost {
		gone[e] = true
	}
	for _, j := range jobs {
		if gone[j.e] {
			j.lost.Store(true)
		} else {
			j.leaseEnd.Store(until.UnixNano())
		}
	}
	if len(lost) > 0 {
		m.lostClaims(len(lost), "heartbeat")
	}
}

// lostClaims counts and logs claims found taken over by another daemon.
func (m *Mailer) lostClaims(n int, where string) {
	m.met.OutboxClaimsLost.Add(float64(n))
	m.log.Warn("outbox claims lost to another daemon (this one stalled past its lease); they are not sent or recorded here",
		"entries", n, "noticed_at", where)
}

// dispatch claims due entries, prepares them and hands them to the
// workers: from the shards a wake-up names, or from a scan of every
// shard at each poll. While the relay is down it claims nothing and
// probes it instead.
func (m *Mailer) dispatch(ctx context.Context, sendq chan<- *job, doneq chan<- *job) {
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
		busy, err := m.drain(ctx, shards, sendq, doneq, &next)
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

// drain claims the due entries of the shards, a batch at a time, prepares
// each batch and hands its jobs to the workers. It reports whether it
// claimed anything, and lowers next to the earliest due time it saw.
func (m *Mailer) drain(ctx context.Context, shards []int, sendq, doneq chan<- *job, next *time.Time) (bool, error) {
	busy := false
	for _, sh := range shards {
		for ctx.Err() == nil && !m.relay.Down() {
			room := m.inflight.room(ctx, m.maxInflight(), m.batch())
			if room == 0 {
				return busy, nil
			}
			batch, n, back, err := m.store.ClaimOutbox(ctx, sh, m.p.Lease, room)
			if err != nil {
				return busy, err
			}
			if back > 0 {
				m.met.OutboxTakenBack.Add(float64(back))
				m.log.Warn("took back outbox entries whose claim lapsed (their daemon stopped or stalled)", "shard", sh, "entries", back)
			}
			if !n.IsZero() && (next.IsZero() || n.Before(*next)) {
				*next = n
			}
			jobs := m.prepare(ctx, sh, batch)
			for i, j := range jobs {
				select {
				case sendq <- j:
				case <-ctx.Done():
					for _, j := range jobs[i:] {
						j.unsent = true
						doneq <- j
					}
					return busy, nil
				}
			}
			busy = busy || len(batch) > 0
			if len(batch) < room {
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

// maxInflight bounds the entries claimed and not yet recorded.
func (m *Mailer) maxInflight() int { return 4 * m.batch() }

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

// job is one claimed entry on its way: prepared (its emails written,
// their token issued), sent, then settled in the outbox.
type job struct {
	e *workflow.OutboxEntry
	// mails are the entry's emails still to send, in order; none for an
	// event, or when preparing failed.
	mails []*letter
	// token is the token the first email carries, if any (never logged).
	token string
	err   error
	// unsent is set for an entry not tried (the mailer stopped, the relay
	// went down): it goes back as it was.
	unsent bool
	// group is the jobs claimed with this one, recorded together.
	group *claimGroup
	// lost is set when the heartbeat found the claim taken over;
	// leaseEnd is when the claim was last known to lapse (unix ns).
	lost     atomic.Bool
	leaseEnd atomic.Int64
}

// leaseHolds reports whether the job's claim is still ours for long
// enough to start an SMTP transaction.
func (j *job) leaseHolds(margin time.Duration) bool {
	return !j.lost.Load() && time.Now().Add(margin).UnixNano() < j.leaseEnd.Load()
}

// inflight is the set of jobs claimed by this mailer and not yet settled.
type inflight struct {
	mu    sync.Mutex
	m     map[*job]bool
	freed chan struct{}
}

func (f *inflight) add(js ...*job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[*job]bool{}
	}
	for _, j := range js {
		f.m[j] = true
	}
}

func (f *inflight) remove(j *job) {
	f.mu.Lock()
	delete(f.m, j)
	ch := f.freed
	f.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (f *inflight) clear() {
	f.mu.Lock()
	clear(f.m)
	f.mu.Unlock()
}

func (f *inflight) list() []*job {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*job, 0, len(f.m))
	for j := range f.m {
		out = append(out, j)
	}
	return out
}

// room waits until fewer than limit jobs are in flight, and returns how
// many more may be claimed now (at most batch; 0 when ctx ended).
func (f *inflight) room(ctx context.Context, limit, batch int) int {
	for {
		f.mu.Lock()
		if f.freed == nil {
			f.freed = make(chan struct{}, 1)
		}
		n, ch := len(f.m), f.freed
		f.mu.Unlock()
		if n < limit {
			return min(batch, limit-n)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0
		}
	}
}

// work sends the jobs handed to one worker over its own connection, and
// publishes the events. A job taken after the mailer was told to stop is
// handed back untried; a job begun is finished even if the mailer stops
// meanwhile.
func (m *Mailer) work(ctx context.Context, sendq <-chan *job, doneq chan<- *job) {
	bg := context.WithoutCancel(ctx)
	s := newSender(m.cfg.SMTP, m.p.Timeout, m.dkim, m.p.TLSConfig)
	defer s.close()
	for j := range sendq {
		switch {
		case j.err != nil:
		case ctx.Err() != nil:
			j.unsent = true
		case j.e.Kind() == workflow.KindEvent:
			m.safely(j, func() { j.err = m.publish(bg, j.e) })
		case j.e.Kind() == workflow.KindJob:
			m.safely(j, func() { j.err = m.runJob(bg, j.e) })
		default:
			m.safely(j, func() { m.sendAll(bg, s, j, ctx.Done()) })
		}
		doneq <- j
	}
}

// sendAll sends the job's emails in order, stopping at the first failure,
// or before the next email when the mailer is stopping.
func (m *Mailer) sendAll(ctx context.Context, s *sender, j *job, stopping <-chan struct{}) {
	for len(j.mails) > 0 {
		if m.relay.Down() || closed(stopping) {
			j.unsent = true
			return
		}
		l := j.mails[0]
		if err := m.send(ctx, s, j, l, stopping); err != nil {
			if errors.Is(err, errStopping) {
				j.unsent = true
				return
			}
			j.err = err
			return
		}
		j.mails = j.mails[1:]
		j.e.Sent++
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// errStopping leaves an email not begun when the mailer stops.
var errStopping = errors.New("mailer: stopping before the transaction began")

// send hands one email to the relay, unless the mailer is stopping before
// the transaction begins, or the job's claim may have lapsed by the time
// the transaction or DATA would start.
func (m *Mailer) send(ctx context.Context, s *sender, j *job, l *letter, stopping <-chan struct{}) error {
	sctx, cancel := context.WithTimeout(ctx, 2*m.p.Timeout)
	defer cancel()
	margin := min(m.p.Lease/5, 2*time.Second)
	start := time.Now()
	began, stopped := false, false
	mayGoOn := func() bool {
		if !began {
			began = true
			if closed(stopping) {
				stopped = true
				return false
			}
		}
		return j.leaseHolds(margin)
	}
	reply, transacted, err := s.send(sctx, l.msg, mayGoOn)
	if transacted {
		m.met.SMTPSendSeconds.Observe(time.Since(start).Seconds())
	}
	switch {
	case stopped:
		return errStopping
	case errors.Is(err, errLeaseLost):
		return err
	case isDial(err):
		m.relayFailed(ctx, err)
		return err
	case err != nil:
		return err
	}
	m.relay.OK()
	now := m.now()
	m.last.Store(now.UnixNano())
	m.met.LastSend.Set(float64(now.Unix()))
	m.log.Info("email sent", "kind", string(l.kind), "request_id", j.e.Request, "handover_id", j.e.Handover,
		"outbox_id", j.e.Ref(), "to_domain", domainOf(l.to), "message_id_hash", hashID(l.messageID),
		"relay_reply", relayReply(reply), "duration", time.Since(start).Round(time.Millisecond).String())
	m.met.Emails.WithLabelValues(string(l.kind), "sent").Inc()
	return nil
}

// safely runs f for job j, turning a panic into a permanent failure of
// its entry (it goes dead with the panic as its reason), so that one
// poison entry cannot stop the daemon.
func (m *Mailer) safely(j *job, f func()) {
	defer func() {
		if r := recover(); r != nil {
			m.met.Panics.WithLabelValues("mailer").Inc()
			m.log.Error("panic while handling an outbox entry; entry given up", "outbox_id", j.e.Ref(),
				"kind", string(j.e.Kind()), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			j.err = permanent(fmt.Errorf("mailer: panic: %v", r))
		}
	}()
	f()
}

// record settles the jobs the workers finished. The jobs of one claim are
// settled together, in one script per shard, once all are done, or
// settleWait after the first of them finished (a slow email does not hold
// back the others' records for long).
func (m *Mailer) record(doneq <-chan *job) {
	groups := map[*claimGroup][]*job{}
	first := map[*claimGroup]time.Time{}
	tick := time.NewTicker(settleWait / 2)
	defer tick.Stop()
	flush := func(g *claimGroup) {
		m.settle(groups[g])
		delete(groups, g)
		delete(first, g)
	}
	for {
		select {
		case j, ok := <-doneq:
			if !ok {
				for g := range groups {
					flush(g)
				}
				return
			}
			g := j.group
			if _, seen := first[g]; !seen {
				first[g] = time.Now()
			}
			groups[g] = append(groups[g], j)
			if len(groups[g]) == g.size {
				flush(g)
			}
		case <-tick.C:
			for g, at := range first {
				if time.Since(at) >= settleWait {
					flush(g)
				}
			}
		}
	}
}

// settleWait is how long the record of a finished job may wait for the
// other jobs of its claim.
const settleWait = 100 * time.Millisecond

// claimGroup is the jobs of one claim.
type claimGroup struct{ size int }

// settle decides the outcome of finished jobs and writes them.
func (m *Mailer) settle(batch []*job) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sts []workflow.Settlement
	var undeliverable []*job
	for _, j := range batch {
		st, bounce := m.outcome(j)
		if st.Action != "" {
			sts = append(sts, st)
		}
		if bounce {
			undeliverable = append(undeliverable, j)
		}
	}
	for i := 1; len(sts) > 0; i++ {
		lost, err := m.store.Settle(ctx, sts)
		if err == nil {
			if len(lost) > 0 {
				m.lostClaims(len(lost), "settle")
			}
			break
		}
		if i == 5 || ctx.Err() != nil {
			m.log.Error("cannot record outcomes in the outbox; the entries will be tried again when their claims lapse",
				"entries", len(sts), "err", err)
			break
		}
		time.Sleep(capped(i, 100*time.Millisecond, 2*time.Second))
	}
	for _, j := range undeliverable {
		if err := m.store.MarkUndeliverable(ctx, j.e.Request, j.e.NIC); err != nil {
			m.log.Warn("cannot mark the approver undeliverable", "request_id", j.e.Request, "err", err)
		}
	}
	for _, j := range batch {
		m.inflight.remove(j)
	}
}

// outcome is what becomes of a finished job's entry, and whether its
// recipient's address was refused for good (an approver to mark
// undeliverable).
func (m *Mailer) outcome(j *job) (workflow.Settlement, bool) {
	e, err := j.e, j.err
	log := m.log.With("request_id", e.Request, "outbox_id", e.Ref(), "kind", string(e.Kind()), "attempt", e.Attempts)
	st := workflow.Settlement{Entry: e}
	switch {
	case j.lost.Load():
		// Another daemon holds it now (the heartbeat found out, and said
		// so): nothing to write here.
		return workflow.Settlement{}, false
	case errors.Is(err, errLeaseLost):
		m.lostClaims(1, "send")
		return workflow.Settlement{}, false
	case j.unsent || errors.Is(err, errRelayDown) || isDial(err):
		if isDial(err) {
			e.Attempts-- // the relay's fault, not the email's
		}
		st.Action = workflow.ActRelease
		if e.Sent > 0 {
			st.Action = workflow.ActRetry // keeps what was sent already
		}
		m.count(e, "waiting")
		return st, false
	case workflow.IsJobSettled(err):
		return workflow.Settlement{}, false
	case workflow.IsClaimLost(err):
		m.lostClaims(1, "job")
		return workflow.Settlement{}, false
	case err == nil:
		st.Action = workflow.ActSent
		if e.Kind() == workflow.KindEvent {
			m.met.Webhooks.WithLabelValues("delivered").Inc()
		}
		return st, false
	case errors.Is(err, errNotDue):
		log.Info("email no longer due; dropped")
		st.Action = workflow.ActDrop
		m.count(e, "skipped")
		return st, false
	case isPermanent(err) || e.Attempts >= m.cfg.SMTP.MaxAttempts:
		e.LastError = err.Error()
		log.Error("delivery given up; entry kept as dead", "err", err)
		st.Action = workflow.ActBury
		m.count(e, "dead")
		var se *SendError
		bounce := e.Kind().CarriesToken() && errors.As(err, &se) && se.Recipient
		return st, bounce
	default:
		e.LastError = err.Error()
		d := m.backoff(e.Attempts)
		log.Warn("delivery failed; will retry", "err", err, "retry_in", d.String())
		st.Action, st.At = workflow.ActRetry, m.now().Add(d)
		m.count(e, "retry")
		return st, false
	}
}

// runJob carries out a hand-over's job, logging what it did.
func (m *Mailer) runJob(ctx context.Context, e *workflow.OutboxEntry) error {
	start := time.Now()
	err := m.store.RunJob(ctx, e)
	switch {
	case workflow.IsJobSettled(err):
		m.log.Info("hand-over job done", "handover_id", e.Handover, "op", e.Op, "outbox_id", e.Ref(),
			"duration", time.Since(start).Round(time.Millisecond).String())
	case workflow.ErrorCode(err) == workflow.ENotFound:
		m.log.Warn("hand-over job names no hand-over; dropped", "handover_id", e.Handover, "outbox_id", e.Ref())
		return errNotDue
	}
	return err
}

// count counts an entry's outcome other than a sent email.
func (m *Mailer) count(e *workflow.OutboxEntry, result string) {
	switch kind := e.Kind(); kind {
	case workflow.KindEvent:
		m.met.Webhooks.WithLabelValues(result).Inc()
	case "":
		m.met.Emails.WithLabelValues("unknown", result).Inc()
	default:
		m.met.Emails.WithLabelValues(string(kind), result).Inc()
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
