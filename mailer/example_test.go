package mailer_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"

	"contactd/config"
	"contactd/mailer"
	"contactd/metrics"
	"contactd/templates"
	"contactd/workflow"

	"github.com/redis/go-redis/v9"
)

// The daemon wires the mailer to the store, the configuration and the
// templates, exposes its dead-entry gauge, and runs it until a signal.
func ExampleNew() {
	cfg, err := config.Load("config.yaml")
	if err != nil {
		slog.Error("config", "err", err)
		return
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr})
	store, err := workflow.NewStore(rdb, workflow.Options{KeyPrefix: cfg.Redis.KeyPrefix,
		NICPattern: cfg.Workflow.NICPattern, RequestTTL: cfg.Workflow.RequestTTL.D(),
		RemindAfter: cfg.Workflow.RemindAfter.D(), MaxReminders: cfg.Workflow.MaxReminders,
		ReportWindow: cfg.Workflow.ReportWindow.D()})
	if err != nil {
		slog.Error("store", "err", err)
		return
	}
	set, err := templates.Load("") // or a directory of overrides
	if err != nil {
		slog.Error("templates", "err", err)
		return
	}
	met := metrics.New() // served at /metrics by the daemon's web.Server
	m, err := mailer.New(mailer.Params{Store: store, Config: cfg, Templates: set, Logger: slog.Default(), Workers: 2,
		Metrics: met})
	if err != nil {
		slog.Error("mailer", "err", err)
		return
	}
	met.Register(m.OutboxGauge())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_ = m.Run(ctx) // returns once ctx ends, with claims handed back
}
