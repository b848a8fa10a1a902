package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"contactd/config"
	"contactd/inbox"
	"contactd/internal/outage"
	"contactd/mailer"
	"contactd/metrics"
	"contactd/scheduler"
	"contactd/web"
	"contactd/workflow"
)

// sweepLimit bounds the entries of each kind a sweep handles per shard and
// tick; what is left waits for the next tick.
const sweepLimit = 1000

// stopGrace bounds how long each stage of a shutdown may take.
const stopGrace = 10 * time.Second

// Daemon is `contactd serve`: the HTTP server, the mailer, the inbox reader
// and the scheduler sharing one store. Build it with newDaemon, then Run
// it; Close releases the store.
type Daemon struct {
	cfg  config.Config
	log  *slog.Logger
	b    *backend
	ln   net.Listener
	web  *web.Server
	mail *mailer.Mailer
	in   *inbox.Reader
	cron *scheduler.Scheduler
	// redis is the one tracker of Redis outages that every component's
	// commands report to (see redisHealth).
	redis *outage.Tracker
	// figures reads what /metrics shows of Redis, on an interval.
	figures *metrics.Refresher
	// runs names the components the daemon runs.
	runs []metrics.Component
}

// daemonOptions are the command line's choices.
type daemonOptions struct {
	components   map[string]bool
	templatesDir string
	// listener, when set, is used instead of listening on http.listen.
	listener net.Listener
	// refreshEvery is how often the figures /metrics shows of Redis are
	// read (default metrics.DefaultRefresh).
	refreshEvery time.Duration
	// outageEvery is how often an outage is logged while it lasts
	// (default 30s).
	outageEvery time.Duration
}

// metricComponents names the components opt runs, for their metrics.
func (opt daemonOptions) metricComponents() []metrics.Component {
	var out []metrics.Component
	for _, c := range metrics.Components {
		if opt.components[string(c)] {
			out = append(out, c)
		}
	}
	return out
}

// newDaemon builds the components the options name; the HTTP listener is
// opened at once, so its address is known (http.listen may use port 0).
func newDaemon(cfg config.Config, opt daemonOptions, log *slog.Logger) (*Daemon, error) {
	met := metrics.New(opt.metricComponents()...)
	b, err := openBackendWith(cfg, met)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, b: b, redis: outage.New("redis", log.With("component", "redis"), opt.outageEvery),
		runs: opt.metricComponents()}
	b.rdb.AddHook(redisHealth{d.redis})
	routeRedisLog(log, d.redis)
	if err := d.build(opt); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// vocabulary names the label values the daemon's counters start with:
// the lifecycle events the store counts, the email kinds and the reply
// outcomes.
func vocabulary() metrics.Vocabulary {
	events := []string{"created", string(workflow.ApprovalAccepted)}
	for _, st := range []workflow.Status{workflow.Approved, workflow.Applied, workflow.Declined, workflow.Expired,
		workflow.Cancelled, workflow.Failed} {
		events = append(events, string(st))
	}
	var kinds []string
	for _, k := range workflow.EmailKinds {
		kinds = append(kinds, string(k))
	}
	return metrics.Vocabulary{Events: events, Kinds: kinds,
		Outcomes: []string{string(inbox.Processed), string(inbox.Rejected), string(inbox.Ignored)}}
}

// newFigures returns the refresher of the figures /metrics shows of
// Redis: the requests by status, and the outbox when the mailer runs
// here.
func (d *Daemon) newFigures(every time.Duration) *metrics.Refresher {
	st := d.b.store
	p := metrics.RefreshParams{Metrics: d.b.metrics, Every: every, Ping: st.Ping,
		Logger: d.log.With("component", "metrics"),
		Requests: func(ctx context.Context) (map[string]int64, error) {
			m, err := st.CountByStatus(ctx)
			out := make(map[string]int64, len(m))
			for k, v := range m {
				out[string(k)] = v
			}
			return out, err
		}}
	if d.b.metrics.Runs(metrics.Mailer) {
		p.Outbox = func(ctx context.Context) (metrics.OutboxCounts, error) {
			sc, err := st.ScanOutbox(ctx)
			if err != nil {
				return metrics.OutboxCounts{}, err
			}
			return metrics.OutboxCounts{Ready: sc.Ready, Claimed: sc.Claimed, Dead: sc.Dead}, nil
		}
	}
	return metrics.NewRefresher(p)
}

func (d *Daemon) build(opt daemonOptions) error {
	st, cfg, log, met := d.b.store, d.cfg, d.log, d.b.metrics
	met.Register(metrics.BuildInfo(version))
	met.Seed(vocabulary())
	d.figures = d.newFigures(opt.refreshEvery)
	if opt.components["mailer"] {
		set, err := templateSet(opt.templatesDir, cfg)
		if err != nil {
			return err
		}
		if d.mail, err = mailer.New(mailer.Params{Store: st, Config: cfg, Templates: set, Metrics: met,
			Redis: d.redis, Logger: log.With("component", "mailer")}); err != nil {
			return err
		}
	}
	if opt.components["inbox"] {
		var err error
		if d.in, err = inbox.New(inbox.Params{Store: st, Config: cfg, Metrics: met, Logger: log.With("component", "inbox")}); err != nil {
			return err
		}
	}
	if opt.components["scheduler"] {
		var err error
		d.cron, err = scheduler.New(scheduler.Params{Locker: st, Spec: cfg.Schedule.Sweep, Metrics: met,
			Logger: log.With("component", "scheduler"), Redis: d.redis,
			Jobs: []scheduler.Job{scheduler.SweepJob(st, log.With("component", "scheduler"), sweepLimit)}})
		if err != nil {
			return err
		}
	}
	return d.buildWeb(opt)
}

// buildWeb makes the HTTP server and opens its listener. A process that
// runs no http component still serves /healthz, /readyz and /metrics
// there, so that every process is watched.
func (d *Daemon) buildWeb(opt daemonOptions) error {
	p := web.Params{Store: d.b.store, Config: d.cfg, Metrics: d.b.metrics, Logger: d.log.With("component", "http"),
		HealthOnly: !opt.components["http"]}
	if d.in != nil {
		p.LastPoll = d.in.LastPoll
	}
	if d.mail != nil {
		p.LastSend = d.mail.LastSend
		p.DeadLetters = d.deadLetters
	}
	var err error
	if d.web, err = web.New(p); err != nil {
		return err
	}
	if d.ln = opt.listener; d.ln == nil {
		if d.ln, err = net.Listen("tcp", d.cfg.HTTP.Listen); err != nil && p.HealthOnly {
			// Before workers served these routes, a web and a worker
			// process could share one configuration on one machine: keep
			// such a worker running, and say how to watch it.
			d.log.Warn("a process without the http component serves /healthz, /readyz and /metrics on http.listen, "+
				"which is taken (another contactd on this machine?); running without them: give this process an address "+
				"of its own with serve --listen ADDR", "http_listen", d.cfg.HTTP.Listen, "err", err)
			d.web, d.ln = nil, nil
			return nil
		} else if err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
	}
	return nil
}

// Addr is the address the HTTP server listens on, or "".
func (d *Daemon) Addr() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// Store is the daemon's store.
func (d *Daemon) Store() *workflow.Store { return d.b.store }

// Run runs every component until ctx ends, each restarted on its own
// failure, then stops them all at once: from that moment no new work
// starts (no request is served, no mail read, no sweep begun, no SMTP
// transaction started). Each component has its own bound to finish what
// it is doing: stopGrace, but the mailer's covers an email the relay is
// receiving (smtp.timeout) and its record; what was not begun stays in
// Redis for the next start. Run returns when all have stopped or their
// time is up.
func (d *Daemon) Run(ctx context.Context) error {
	var parts []component
	grace := map[string]time.Duration{}
	if d.web != nil {
		ln := d.ln
		parts = append(parts, component{"http", func(ctx context.Context) error {
			if ln == nil { // a restart after a failure: the server closed the old listener
				var err error
				if ln, err = net.Listen("tcp", d.cfg.HTTP.Listen); err != nil {
					return err
				}
			}
			err := d.web.Run(ctx, ln)
			ln = nil
			return err
		}})
	}
	if d.in != nil {
		parts = append(parts, component{"inbox", d.in.Run})
	}
	if d.cron != nil {
		parts = append(parts, component{"scheduler", d.cron.Run})
	}
	if d.mail != nil {
		parts = append(parts, component{"mailer", d.mail.Run})
		grace["mailer"] = d.mail.StopTimeout()
	}
	parts = append(parts, component{"metrics", d.figures.Run}, component{"redis watch", d.redis.Run})
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := map[string]chan struct{}{}
	for _, c := range parts {
		ch := make(chan struct{})
		done[c.name] = ch
		go func() {
			defer close(ch)
			supervise(sctx, d.log, d.b.metrics, c)
		}()
	}
	d.log.Info("contactd running", "http", d.Addr(), "components", d.runs)
	<-ctx.Done()
	d.log.Info("stopping")
	cancel()
	start := time.Now()
	for _, c := range parts {
		limit := stopGrace
		if g, ok := grace[c.name]; ok {
			limit = g
		}
		select {
		case <-done[c.name]:
		case <-time.After(limit - time.Since(start)):
			d.log.Warn("component did not stop in time", "component", c.name, "waited", limit.String())
		}
	}
	d.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// deadLetters is the number of dead outbox entries last read for the
// metrics, for /readyz: a health check does not scan the outbox.
func (d *Daemon) deadLetters(context.Context) (int64, error) {
	n, ok := d.figures.Dead()
	if !ok {
		return 0, workflow.Errorf(workflow.EUnavailable, "not read yet")
	}
	return n, nil
}

// Close releases the listener and the store.
func (d *Daemon) Close() {
	if d.ln != nil {
		_ = d.ln.Close()
	}
	d.b.Close()
}
