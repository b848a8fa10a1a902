// Package redistest gives tests a Redis to run against: always an
// in-process miniredis, and also a real redis-server when the test command
// started one (CONTACTD_TEST_REDIS=host:port).
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// EnvAddr names the environment variable holding a real server's address.
const EnvAddr = "CONTACTD_TEST_REDIS"

// EnvCluster names the environment variable listing the nodes of a real
// Redis Cluster, comma-separated.
const EnvCluster = "CONTACTD_TEST_REDIS_CLUSTER"

// Backend is a Redis for one test: a client and a key prefix of its own.
type Backend struct {
	Name   string
	Client redis.UniversalClient
	Prefix string
	// Mini is the in-process server, nil for a real one.
	Mini *miniredis.Miniredis
	// Addrs are the real server's (or Cluster nodes') addresses.
	Addrs []string
}

// Mini starts an in-process miniredis for t.
func Mini(t testing.TB) Backend {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return Backend{Name: "miniredis", Client: c, Prefix: "contactd", Mini: m, Addrs: []string{m.Addr()}}
}

// Real connects to the redis-server of the test command, or skips t with a
// loud message when there is none. Its keys live under a fresh prefix that
// is deleted at the end of the test.
func Real(t testing.TB) Backend {
	t.Helper()
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		t.Skipf("SKIPPED: no real Redis: set %s=host:port (scripts/test.sh starts one)", EnvAddr)
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("%s=%s: %v", EnvAddr, addr, err)
	}
	prefix := freshPrefix()
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return Backend{Name: "redis-server", Client: c, Prefix: prefix, Addrs: []string{addr}}
}

// Cluster connects to the Redis Cluster of the test command, or skips t
// loudly when there is none. Keys live under a fresh prefix deleted at the
// end of the test.
func Cluster(t testing.TB) Backend {
	t.Helper()
	addrs := os.Getenv(EnvCluster)
	if addrs == "" {
		t.Skipf("SKIPPED: no Redis Cluster: set %s=host:port,... (scripts/test.sh starts one)", EnvCluster)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("%s=%s: %v", EnvCluster, addrs, err)
	}
	prefix := freshPrefix()
	t.Cleanup(func() {
		_ = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			iter := node.Scan(ctx, 0, prefix+":*", 1000).Iterator()
			for iter.Next(ctx) {
				node.Del(ctx, iter.Val())
			}
			return nil
		})
		_ = c.Close()
	})
	return Backend{Name: "redis-cluster", Client: c, Prefix: prefix, Addrs: strings.Split(addrs, ",")}
}

func freshPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}

// Each runs f as a subtest against miniredis, the real server and the
// real Cluster.
func Each(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { f(t, Mini(t)) })
	t.Run("redis-server", func(t *testing.T) { f(t, Real(t)) })
	t.Run("redis-cluster", func(t *testing.T) { f(t, Cluster(t)) })
}

// Keys lists the backend's keys under its prefix, from every node of a
// Cluster.
func (b Backend) Keys(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	var out []string
	collect := func(ctx context.Context, c *redis.Client) error {
		keys, err := c.Keys(ctx, b.Prefix+":*").Result()
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return err
	}
	var err error
	if cc, ok := b.Client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, collect)
	} else if c, ok := b.Client.(*redis.Client); ok {
		err = collect(ctx, c)
	}
	sort.Strings(out)
	return out, err
}

// RoundTrips is a client hook counting the requests sent to Redis: one per
// command, one per pipeline. Add it with Client.AddHook.
type RoundTrips struct{ n atomic.Int64 }

// N returns the count so far.
func (h *RoundTrips) N() int64 { return h.n.Load() }

// Reset sets the count to zero and returns what it was.
func (h *RoundTrips) Reset() int64 { return h.n.Swap(0) }

// DialHook passes dials through.
func (h *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts one round trip per command.
func (h *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}

// ProcessPipelineHook counts one round trip per pipeline.
func (h *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// CommandStats reads INFO commandstats of rdb: calls per command, the
// commands scripts run included (Redis counts each of them).
func CommandStats(t testing.TB, rdb redis.UniversalClient) map[string]int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}
