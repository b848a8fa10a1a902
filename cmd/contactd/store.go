package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"contactd/config"
	"contactd/metrics"
	"contactd/workflow"
)

// backend is an open store and what must be closed with it.
type backend struct {
	// metrics are the collectors of the daemon built on this backend.
	metrics *metrics.Metrics
	cfg     config.Config
	store   *workflow.Store
	rdb     redis.UniversalClient
	mini    *miniredis.Miniredis
	stop    func()
}

func (b *backend) Close() {
	_ = b.rdb.Close()
	if b.mini != nil {
		b.stop()
		b.mini.Close()
	}
}

// expireInRealTime makes an in-process Redis expire keys as time passes,
// as a real server does (miniredis only does when told); the scheduler's
// leases and the mailer's claims depend on it.
func expireInRealTime(m *miniredis.Miniredis) (stop func()) {
	done := make(chan struct{})
	go func() {
		last := time.Now()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return func() { close(done) }
}

// newRedis connects to the Redis of the configuration: one server, a
// Cluster (several addrs) or Sentinel (addrs and master_name), or an
// in-process miniredis when embedded.
func newRedis(c config.Redis) (redis.UniversalClient, *miniredis.Miniredis, error) {
	opt := &redis.UniversalOptions{
		Addrs: c.Addrs, MasterName: c.MasterName, Username: c.Username, Password: c.Password, DB: c.DB,
		SentinelUsername: c.SentinelUsername, SentinelPassword: c.SentinelPassword,
	}
	if len(opt.Addrs) == 0 {
		opt.Addrs = []string{c.Addr}
	}
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, nil, err
	}
	opt.TLSConfig = tc
	var mini *miniredis.Miniredis
	if c.Embedded {
		mini = miniredis.NewMiniRedis()
		if err := mini.Start(); err != nil {
			return nil, nil, fmt.Errorf("embedded redis: %w", err)
		}
		opt = &redis.UniversalOptions{Addrs: []string{mini.Addr()}}
	}
	return redis.NewUniversalClient(opt), mini, nil
}

func storeOptions(cfg config.Config) workflow.Options {
	w := cfg.Workflow
	return workflow.Options{
		KeyPrefix: cfg.Redis.KeyPrefix, NICPattern: w.NICPattern, RequestTTL: w.RequestTTL.D(),
		RemindAfter: w.RemindAfter.D(), MaxReminders: w.MaxReminders, ReportWindow: w.ReportWindow.D(),
		MaxHandoverServices: w.MaxHandoverServices,
		DefaultLanguage:     w.DefaultLanguage,
	}
}

// openStore loads the configuration and opens its store.
func openStore(ctx context.Context, path string) (*backend, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	return openBackend(cfg)
}

func openBackend(cfg config.Config) (*backend, error) { return openBackendWith(cfg, metrics.New()) }

// openBackendWith opens the store of cfg, counting into met.
func openBackendWith(cfg config.Config, met *metrics.Metrics) (*backend, error) {
	rdb, mini, err := newRedis(cfg.Redis)
	if err != nil {
		return nil, err
	}
	opt := storeOptions(cfg)
	opt.Metrics = met
	st, err := workflow.NewStore(rdb, opt)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	b := &backend{cfg: cfg, store: st, rdb: rdb, mini: mini, metrics: met}
	if mini != nil {
		b.stop = expireInRealTime(mini)
	}
	return b, nil
}

// evictionLoss says what an evicting Redis loses.
const evictionLoss = "under memory pressure Redis drops keys, and with them tokens, requests and queued email"

// evictionPolicy reads Redis's maxmemory-policy; a server that refuses
// CONFIG (as managed services do) cannot say.
func evictionPolicy(ctx context.Context, rdb redis.UniversalClient) (string, error) {
	res, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return "", fmt.Errorf("CONFIG GET refused: %w", err)
	}
	p, ok := res["maxmemory-policy"]
	if !ok {
		return "", errors.New("CONFIG GET did not name it")
	}
	return p, nil
}

// warnEviction logs a warning when Redis may evict keys under memory
// pressure (maxmemory-policy other than noeviction). A server that
// refuses CONFIG is not an error: the policy is then not known.
func warnEviction(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := evictionPolicy(ctx, rdb)
	if err != nil {
		log.Debug("redis maxmemory-policy not known", "err", err)
		return
	}
	if p != "noeviction" {
		log.Warn("redis maxmemory-policy is not noeviction: "+evictionLoss, "maxmemory_policy", p)
	}
}
