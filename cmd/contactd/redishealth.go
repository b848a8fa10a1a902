package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"contactd/internal/outage"
)

// redisHealth is a go-redis hook that reports every command's outcome to
// the daemon's one Redis tracker: a command that could not reach the
// server is a failure, any answer (an error reply included) a success.
// Every component's use of Redis (the web server's as much as the
// mailer's) so starts and ends the same outage, logged once per process.
type redisHealth struct{ t *outage.Tracker }

// DialHook leaves dialling alone: a failed dial fails the command.
func (h redisHealth) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook notes the outcome of one command.
func (h redisHealth) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.note(err)
		return err
	}
}

// ProcessPipelineHook notes the outcome of a pipeline or transaction.
func (h redisHealth) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.note(err)
		return err
	}
}

func (h redisHealth) note(err error) {
	switch {
	case unreachable(err):
		h.t.Fail(err)
	case err == nil || isReply(err):
		h.t.OK()
	}
}

// unreachable tells an error that says the server could not be reached
// or could not serve (refused, timed out, connection lost, cluster or
// master down, still loading), from an ordinary error reply or the
// caller's own cancellation.
func unreachable(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, redis.ErrClosed):
		return false
	case isReply(err):
		for _, p := range []string{"CLUSTERDOWN", "MASTERDOWN", "LOADING", "TRYAGAIN"} {
			if strings.HasPrefix(err.Error(), p) {
				return true
			}
		}
		return false
	}
	return true
}

// isReply tells an error the server answered (redis.Nil among them).
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// redisLogger takes go-redis's own messages into the daemon's log. A
// failed dial is an outage's failure, told to the tracker (which logs
// the outage's start, its progress every interval and its end) instead
// of a line each time; the Sentinel's news (a new master, a sentinel
// found) are information; any other message is a warning, each one at
// most once per interval with the number of repeats it stands for.
type redisLogger struct {
	log   *slog.Logger
	t     *outage.Tracker // nil in a command that is not the daemon
	every time.Duration

	mu   sync.Mutex
	seen map[string]*repeat
}

// repeat is when a message was last logged, and how often it came since.
type repeat struct {
	at     time.Time
	missed int
}

func newRedisLogger(log *slog.Logger, t *outage.Tracker, every time.Duration) *redisLogger {
	return &redisLogger{log: log.With("component", "redis"), t: t, every: every, seen: map[string]*repeat{}}
}

// Printf logs one go-redis message.
func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	switch {
	case strings.Contains(format, "failed to dial"):
		err := lastError(v)
		if l.t != nil {
			l.t.Fail(err)
			return
		}
		l.log.DebugContext(ctx, msg)
	case strings.HasPrefix(msg, "sentinel: new master"), strings.HasPrefix(msg, "sentinel: selected"),
		strings.HasPrefix(msg, "sentinel: discovered"):
		l.log.InfoContext(ctx, msg)
	default:
		if n, ok := l.due(format); ok {
			if n > 0 {
				l.log.WarnContext(ctx, msg, "repeats", n)
				return
			}
			l.log.WarnContext(ctx, msg)
		}
	}
}

// due reports whether a message of this format may be logged now, and
// how many of it were held back since the last one.
func (l *redisLogger) due(format string) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	r := l.seen[format]
	if r == nil {
		l.seen[format] = &repeat{at: now}
		return 0, true
	}
	if now.Sub(r.at) < l.every {
		r.missed++
		return 0, false
	}
	n := r.missed
	r.at, r.missed = now, 0
	return n, true
}

// lastError is the error among a message's arguments.
func lastError(v []any) error {
	for i := len(v) - 1; i >= 0; i-- {
		if err, ok := v[i].(error); ok {
			return err
		}
	}
	return errors.New(fmt.Sprint(v...))
}

// routeRedisLog sends go-redis's messages to log, failed dials to the
// tracker t when there is one. go-redis has one logger per process: the
// last call wins.
func routeRedisLog(log *slog.Logger, t *outage.Tracker) {
	redis.SetLogger(newRedisLogger(log, t, 30*time.Second))
}
