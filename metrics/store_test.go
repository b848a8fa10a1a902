package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"contactd/metrics"
)

// fakeRedis answers the refresher's reads, or fails them all.
type fakeRedis struct {
	down     bool
	requests map[string]int64
	outbox   metrics.OutboxCounts
}

var errDown = errors.New("dial tcp: connection refused")

func (f *fakeRedis) ping(context.Context) error {
	if f.down {
		return errDown
	}
	return nil
}

func (f *fakeRedis) readRequests(context.Context) (map[string]int64, error) {
	if f.down {
		return nil, errDown
	}
	return f.requests, nil
}

func (f *fakeRedis) readOutbox(context.Context) (metrics.OutboxCounts, error) {
	if f.down {
		return metrics.OutboxCounts{}, errDown
	}
	return f.outbox, nil
}

// The refresher's figures are served as last read, with the time of that
// read, and contactd_redis_up follows the last PING.
func TestRefresherServesTheLastFigures(t *testing.T) {
	met := metrics.New(metrics.HTTP, metrics.Mailer)
	if n, err := testutil.GatherAndCount(met.Registry, "contactd_redis_up", "contactd_requests"); err != nil || n != 0 {
		t.Fatalf("before any refresh: %d series, %v; want none", n, err)
	}
	redis := &fakeRedis{requests: map[string]int64{"pending": 3, "applied": 7}, outbox: metrics.OutboxCounts{Ready: 2, Dead: 1}}
	now := time.Unix(1772442000, 0)
	r := metrics.NewRefresher(metrics.RefreshParams{Metrics: met, Ping: redis.ping, Requests: redis.readRequests,
		Outbox: redis.readOutbox, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	r.Refresh(context.Background())
	want := `
# HELP contactd_outbox_dead Outbox entries given up (dead), across shards, as last read from Redis.
# TYPE contactd_outbox_dead gauge
contactd_outbox_dead 1
# HELP contactd_redis_up 1 when Redis answered the last PING of the metrics refresher, else 0.
# TYPE contactd_redis_up gauge
contactd_redis_up 1
# HELP contactd_requests Change requests, by status (kept by the transitions, not counted), as last read from Redis.
# TYPE contactd_requests gauge
contactd_requests{status="applied"} 7
contactd_requests{status="pending"} 3
# HELP contactd_store_last_refresh_timestamp_seconds When the figures read from Redis (requests, outbox) were last read successfully (unix time); they are served from memory in between.
# TYPE contactd_store_last_refresh_timestamp_seconds gauge
contactd_store_last_refresh_timestamp_seconds 1.772442e+09
`
	names := []string{"contactd_outbox_dead", "contactd_redis_up", "contactd_requests", "contactd_store_last_refresh_timestamp_seconds"}
	if err := testutil.GatherAndCompare(met.Registry, strings.NewReader(want), names...); err != nil {
		t.Errorf("after a refresh: %v", err)
	}

	redis.down, redis.requests = true, nil
	now = now.Add(time.Minute)
	r.Refresh(context.Background())
	down := strings.Replace(want, "\ncontactd_redis_up 1\n", "\ncontactd_redis_up 0\n", 1)
	if err := testutil.GatherAndCompare(met.Registry, strings.NewReader(down), names...); err != nil {
		t.Errorf("with Redis down: %v", err)
	}
	if n, ok := r.Dead(); !ok || n != 1 {
		t.Errorf("Dead() = %d, %v with Redis down; want the last read, 1", n, ok)
	}
}

// A process without the mailer exports no outbox figures, whatever it
// could read.
func TestNoOutboxFiguresWithoutTheMailer(t *testing.T) {
	met := metrics.New(metrics.HTTP)
	redis := &fakeRedis{requests: map[string]int64{"pending": 1}}
	metrics.NewRefresher(metrics.RefreshParams{Metrics: met, Ping: redis.ping, Requests: redis.readRequests,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Refresh(context.Background())
	if n, _ := testutil.GatherAndCount(met.Registry, "contactd_outbox_entries", "contactd_outbox_dead"); n != 0 {
		t.Errorf("an http-only process exports %d outbox series", n)
	}
	if n, _ := testutil.GatherAndCount(met.Registry, "contactd_requests"); n != 1 {
		t.Errorf("an http-only process exports %d request series, want 1", n)
	}
}
