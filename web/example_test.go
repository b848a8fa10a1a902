package web_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"contactd/config"
	"contactd/web"
	"contactd/workflow"

	"github.com/redis/go-redis/v9"
)

// ExampleNew shows how the daemon wires the HTTP side: a store, the
// configuration, and the clocks of the last good poll and send.
func ExampleNew() {
	cfg := config.Default()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr})
	store, err := workflow.NewStore(rdb, workflow.Options{
		KeyPrefix: cfg.Redis.KeyPrefix, NICPattern: cfg.Workflow.NICPattern,
		RequestTTL: cfg.Workflow.RequestTTL.D(), RemindAfter: cfg.Workflow.RemindAfter.D(),
		MaxReminders: cfg.Workflow.MaxReminders, ReportWindow: cfg.Workflow.ReportWindow.D(),
	})
	if err != nil {
		log.Error("store", "err", err)
		return
	}
	var lastPoll, lastSend time.Time // kept up to date by the inbox and the mailer
	srv, err := web.New(web.Params{Store: store, Config: cfg, Logger: log,
		LastPoll: func() time.Time { return lastPoll }, LastSend: func() time.Time { return lastSend }})
	if err != nil {
		log.Error("web", "err", err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		log.Error("listen", "err", err)
		return
	}
	if err := srv.Run(ctx, ln); err != nil { // returns after a graceful shutdown
		log.Error("web", "err", err)
	}
}
