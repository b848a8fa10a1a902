package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"contactd/internal/outage"
)

// lockedBuffer is a log buffer safe for the goroutines of go-redis.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Redis going away and coming back, with the client's commands failing
// over and over meanwhile, is one outage: a line when it starts, one when
// it ends with its length, and none of go-redis's own "failed to dial"
// lines in between.
func TestRedisOutageIsLoggedOnceNotPerDial(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	tr := outage.New("redis", log.With("component", "redis"), time.Minute)
	routeRedisLog(log, tr)
	t.Cleanup(func() { routeRedisLog(slog.New(slog.DiscardHandler), nil) })

	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	rdb.AddHook(redisHealth{tr})
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	m.Close()
	for i := 0; i < 20; i++ {
		if rdb.Ping(ctx).Err() == nil {
			t.Fatal("a ping succeeded with Redis stopped")
		}
	}
	if !tr.Down() {
		t.Fatal("20 failed commands did not start an outage")
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(ctx).Err() != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the pool may still hold a broken connection
	}
	if tr.Down() {
		t.Fatalf("Redis is back but the outage did not end; log:\n%s", buf.String())
	}
	out := buf.String()
	if n := strings.Count(out, "redis unreachable: outage started"); n != 1 {
		t.Errorf("outage start logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "redis reachable again: outage ended"); n != 1 || !strings.Contains(out, `"down_for"`) {
		t.Errorf("outage end logged %d times (want once, with down_for):\n%s", n, out)
	}
	if strings.Contains(out, "failed to dial") || strings.Contains(out, "connection pool") {
		t.Errorf("go-redis's own dial errors reached the log:\n%s", out)
	}
	if lines := strings.Count(out, "\n"); lines != 2 {
		t.Errorf("%d lines logged for one outage, want 2:\n%s", lines, out)
	}
}

// go-redis's messages: a failed dial feeds the tracker (or, in a command
// that has none, stays at debug level); the Sentinel naming a new master
// is information; anything else is a warning, repeated at most once an
// interval.
func TestRedisLoggerLevels(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tr := outage.New("redis", log, time.Minute)
	l := newRedisLogger(log, tr, time.Minute)
	ctx := context.Background()
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	l.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 5, dialErr)
	l.Printf(ctx, "sentinel: new master=%q addr=%q", "mymaster", "10.0.0.2:6379")
	for i := 0; i < 5; i++ {
		l.Printf(ctx, "sentinel: Sentinels master=%q failed: %s", "mymaster", "i/o timeout")
	}
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="redis unreachable: outage started" dependency=redis err="dial tcp: connect: connection refused"`,
		`level=INFO msg="sentinel: new master=\"mymaster\" addr=\"10.0.0.2:6379\"" component=redis`,
		`level=WARN msg="sentinel: Sentinels master=\"mymaster\" failed: i/o timeout" component=redis`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "Sentinels master"); n != 1 {
		t.Errorf("a message repeated five times within the interval was logged %d times, want once", n)
	}

	var quiet lockedBuffer
	cli := newRedisLogger(slog.New(slog.NewTextHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelWarn})), nil, time.Minute)
	cli.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v", 5, dialErr)
	if quiet.String() != "" {
		t.Errorf("a command without a tracker logged a failed dial as a warning: %s", quiet.String())
	}
}

func TestUnreachable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{context.Canceled, false},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), false},
		{redis.ErrClosed, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{io.EOF, true},
		{errors.New("redis: connection pool timeout"), true},
		{redisReply("NOSCRIPT No matching script"), false},
		{redisReply("WRONGTYPE Operation against a key"), false},
		{redisReply("CLUSTERDOWN The cluster is down"), true},
		{redisReply("LOADING Redis is loading the dataset in memory"), true},
	} {
		if got := unreachable(tt.err); got != tt.want {
			t.Errorf("unreachable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// redisReply is an error reply of the server, as go-redis types it.
type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}
