package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"contactd/config"
	"contactd/inbox"
	"contactd/mailer"
	"contactd/metrics"
	"contactd/scheduler"
	"contactd/web"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus"
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
}

// daemonOptions are the command line's choices.
type daemonOptions struct {
	components   map[string]bool
	templatesDir string
	// listener, when set, is used instead of listening on http.listen.
	listener net.Listener
}

// newDaemon builds the components the options name; the HTTP listener is
// opened at once, so its address is known (http.listen may use port 0).
func newDaemon(cfg config.Config, opt daemonOptions, log *slog.Logger) (*Daemon, error) {
	b, err := openBackend(cfg)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, b: b}
	if err := d.build(opt); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) build(opt daemonOptions) error {
	st, cfg, log, met := d.b.store, d.cfg, d.log, d.b.metrics
	register := met.Register
	register(metrics.StateGauge("contactd_requests", "Change requests, by status (kept by the transitions, not counted).",
		"status", func(ctx context.Context) (map[string]int64, error) {
			m, err := st.CountByStatus(ctx)
			out := map[string]int64{}
			for k, v := range m {
				out[string(k)] = v
			}
			return out, err
		}))
	register(metrics.BuildInfo(version))
	register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "contactd_redis_up",
		Help: "1 when Redis answered a PING at this scrape, else 0."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if st.Ping(ctx) != nil {
			return 0
		}
		return 1
	}))
	if opt.components["mailer"] {
		set, err := templateSet(opt.templatesDir, cfg)
		if err != nil {
			return err
		}
		if d.mail, err = mailer.New(mailer.Params{Store: st, Config: cfg, Templates: set, Metrics: met,
			Logger: log.With("component", "mailer")}); err != nil {
			return err
		}
		register(d.mail.DeadGauge())
		register(d.mail.OutboxGauge())
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
			Logger: log.With("component", "scheduler"),
			Jobs:   []scheduler.Job{scheduler.SweepJob(st, log.With("component", "scheduler"), sweepLimit)}})
		if err != nil {
			return err
		}
	}
	if opt.components["http"] {
		p := web.Params{Store: st, Config: cfg, Metrics: met, Logger: log.With("component", "http")}
		if d.in != nil {
			p.LastPoll = d.in.LastPoll
		}
		if d.mail != nil {
			p.LastSend = d.mail.LastSend
			p.DeadLetters = d.mail.DeadCount
		}
		var err error
		if d.web, err = web.New(p); err != nil {
			return err
		}
		if d.ln = opt.listener; d.ln == nil {
			if d.ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
				return fmt.Errorf("http.listen: %w", err)
			}
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
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := map[string]chan struct{}{}
	for _, c := range parts {
		ch := make(chan struct{})
		done[c.name] = ch
		go func() {
			defer close(ch)
			supervise(sctx, d.log, c)
		}()
	}
	d.log.Info("contactd running", "http", d.Addr(), "components", len(parts))
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

// Close releases the listener and the store.
func (d *Daemon) Close() {
	if d.ln != nil {
		_ = d.ln.Close()
	}
	d.b.Close()
}
