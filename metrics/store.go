package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultRefresh is how often a Refresher reads the figures that live in
// Redis, unless told otherwise.
const DefaultRefresh = 15 * time.Second

// OutboxCounts are the outbox entries by state, across shards.
type OutboxCounts struct {
	Ready, Claimed, Dead int64
}

// storeFigures is the collector of the figures read from Redis: it serves
// what the Refresher last read, from memory, and never fails. Before a
// Refresher runs it exports nothing.
type storeFigures struct {
	up, refreshed, requests, outbox, dead *prometheus.Desc

	mu       sync.Mutex
	running  bool
	redisUp  bool
	lastGood time.Time
	byStatus map[string]int64 // nil until read
	entries  *OutboxCounts    // nil until read, or when not read at all
}

func newStoreFigures() *storeFigures {
	return &storeFigures{
		up: prometheus.NewDesc("contactd_redis_up",
			"1 when Redis answered the last PING of the metrics refresher, else 0.", nil, nil),
		refreshed: prometheus.NewDesc("contactd_store_last_refresh_timestamp_seconds",
			"When the figures read from Redis (requests, outbox) were last read successfully (unix time); they are served from memory in between.", nil, nil),
		requests: prometheus.NewDesc("contactd_requests",
			"Change requests, by status (kept by the transitions, not counted), as last read from Redis.", []string{"status"}, nil),
		outbox: prometheus.NewDesc("contactd_outbox_entries",
			"Outbox entries, by state (ready: waiting to be sent; claimed: being sent; dead: given up), as last read from Redis.", []string{"state"}, nil),
		dead: prometheus.NewDesc("contactd_outbox_dead",
			"Outbox entries given up (dead), across shards, as last read from Redis.", nil, nil),
	}
}

// Describe sends every description, exported or not.
func (f *storeFigures) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{f.up, f.refreshed, f.requests, f.outbox, f.dead} {
		ch <- d
	}
}

// Collect sends the figures last read; nothing reaches Redis.
func (f *storeFigures) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(f.up, boolFloat(f.redisUp))
	var last float64
	if !f.lastGood.IsZero() {
		last = float64(f.lastGood.UnixMilli()) / 1000
	}
	gauge(f.refreshed, last)
	for status, n := range f.byStatus {
		gauge(f.requests, float64(n), status)
	}
	if e := f.entries; e != nil {
		gauge(f.outbox, float64(e.Ready), "ready")
		gauge(f.outbox, float64(e.Claimed), "claimed")
		gauge(f.outbox, float64(e.Dead), "dead")
		gauge(f.dead, float64(e.Dead))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// RefreshParams configure a Refresher. Metrics, Ping and Requests are
// required.
type RefreshParams struct {
	Metrics *Metrics
	// Every is the time between two reads (default DefaultRefresh).
	Every time.Duration
	// Timeout bounds one round of reads (default 5s).
	Timeout time.Duration
	// Ping says whether Redis answers.
	Ping func(ctx context.Context) error
	// Requests reads the requests by status.
	Requests func(ctx context.Context) (map[string]int64, error)
	// Outbox reads the outbox entries by state; nil in a process that
	// runs no mailer, which then exports no outbox figures.
	Outbox func(ctx context.Context) (OutboxCounts, error)
	// Now is the clock of the refresh time (default time.Now).
	Now func() time.Time
	// Logger receives the reads that fail while Redis answers (a bug, not
	// an outage: the outage itself is the Redis tracker's to log).
	Logger *slog.Logger
}

// Refresher reads the figures that live in Redis on an interval, for the
// registry to serve from memory: /metrics answers at once and in full
// while Redis is down, with contactd_redis_up at 0 and the last figures
// read, dated by contactd_store_last_refresh_timestamp_seconds.
type Refresher struct {
	p RefreshParams
	f *storeFigures
}

// NewRefresher returns a Refresher of p.Metrics; Run starts it.
func NewRefresher(p RefreshParams) *Refresher {
	if p.Every <= 0 {
		p.Every = DefaultRefresh
	}
	if p.Timeout <= 0 {
		p.Timeout = 5 * time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	f := p.Metrics.store
	f.mu.Lock()
	f.running = true
	f.mu.Unlock()
	return &Refresher{p: p, f: f}
}

// Run reads the figures at once, then every interval, until ctx ends; it
// returns nil then.
func (r *Refresher) Run(ctx context.Context) error {
	t := time.NewTicker(r.p.Every)
	defer t.Stop()
	for {
		r.Refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh reads every figure once. When Redis does not answer the PING,
// contactd_redis_up drops to 0 and the figures keep their last values;
// a figure whose read fails keeps its last value too.
func (r *Refresher) Refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.p.Timeout)
	defer cancel()
	if err := r.p.Ping(ctx); err != nil {
		r.set(func(f *storeFigures) { f.redisUp = false })
		return
	}
	r.set(func(f *storeFigures) { f.redisUp = true })
	ok := true
	if m, err := r.p.Requests(ctx); err != nil {
		ok = r.failed(ctx, "requests", err)
	} else {
		r.set(func(f *storeFigures) { f.byStatus = m })
	}
	if r.p.Outbox != nil {
		if c, err := r.p.Outbox(ctx); err != nil {
			ok = r.failed(ctx, "outbox", err)
		} else {
			r.set(func(f *storeFigures) { f.entries = &c })
		}
	}
	if ok {
		now := r.p.Now()
		r.set(func(f *storeFigures) { f.lastGood = now })
	}
}

// failed logs a read that failed while Redis still answers, and returns
// false.
func (r *Refresher) failed(ctx context.Context, what string, err error) bool {
	if r.p.Ping(ctx) == nil {
		r.p.Logger.Warn("metrics: cannot read a figure from Redis; the last one is served", "figure", what, "err", err)
	}
	return false
}

func (r *Refresher) set(f func(*storeFigures)) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	f(r.f)
}

// Dead returns the dead outbox entries last read, and whether they were
// read at all, for /readyz: it never reaches Redis.
func (r *Refresher) Dead() (int64, bool) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	if r.f.entries == nil {
		return 0, false
	}
	return r.f.entries.Dead, true
}
