// Package redistest gives tests a Redis to run against: always an
// in-process miniredis, and also a real redis-server when the test command
// started one (CONTACTD_TEST_REDIS=host:port).
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// EnvAddr names the environment variable holding a real server's address.
const EnvAddr = "CONTACTD_TEST_REDIS"

// Backend is a Redis for one test: a client and a key prefix of its own.
type Backend struct {
	Name   string
	Client redis.UniversalClient
	Prefix string
	// Mini is the in-process server, nil for a real one.
	Mini *miniredis.Miniredis
}

// Mini starts an in-process miniredis for t.
func Mini(t testing.TB) Backend {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return Backend{Name: "miniredis", Client: c, Prefix: "contactd", Mini: m}
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
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return Backend{Name: "redis-server", Client: c, Prefix: prefix}
}

// Each runs f as a subtest against miniredis and against the real server.
func Each(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { f(t, Mini(t)) })
	t.Run("redis-server", func(t *testing.T) { f(t, Real(t)) })
}
