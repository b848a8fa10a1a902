package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"contactd/metrics"
)

// newLogger builds the slog logger of log.level and log.format.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// component is one part of the daemon that runs until its context ends.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// supervise runs c until ctx ends. When it fails or panics it is started
// again after a pause that doubles up to a minute, so one part's trouble
// (a mail server down, a bug on one message) never stops the others. A
// panic is counted in contactd_panics_recovered_total.
func supervise(ctx context.Context, log *slog.Logger, met *metrics.Metrics, c component) {
	pause := time.Second
	for {
		started := time.Now()
		err := runSafely(ctx, c)
		if errors.As(err, new(panicked)) {
			met.Panics.WithLabelValues(c.name).Inc()
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > 5*time.Minute {
			pause = time.Second
		}
		log.Error("component stopped; restarting", "component", c.name, "err", err, "in", pause.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Minute)
	}
}

// panicked is the error of a component that panicked.
type panicked string

func (p panicked) Error() string { return string(p) }

func runSafely(ctx context.Context, c component) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicked(fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	if err = c.run(ctx); err == nil && ctx.Err() == nil {
		err = fmt.Errorf("%s returned while the daemon runs", c.name)
	}
	return err
}

// parseComponents reads --components.
func parseComponents(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case "http", "mailer", "inbox", "scheduler":
			out[name] = true
		case "":
		default:
			return nil, usageError{fmt.Sprintf("--components: unknown component %q (use http, mailer, inbox, scheduler)", name)}
		}
	}
	if len(out) == 0 {
		return nil, usageError{"--components: name at least one of http, mailer, inbox, scheduler"}
	}
	return out, nil
}
