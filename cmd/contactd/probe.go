package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"contactd/config"
	"contactd/inbox"
	"contactd/mailer"
	"contactd/workflow"
)

// probeTimeout is how long each dependency has to answer config check
// --probe.
const probeTimeout = 10 * time.Second

// probe is one dependency config check --probe logs in to.
type probe struct {
	name, addr string
	// secrets are the configured passwords, never to be printed.
	secrets []string
	// try logs in and out, returning what a success says.
	try func(ctx context.Context) (string, error)
}

// probes lists Redis, SMTP and IMAP as cfg configures them.
func probes(cfg config.Config) []probe {
	r, s, i := cfg.Redis, cfg.SMTP, cfg.IMAP
	redisAddr := strings.Join(r.Addrs, ",")
	if redisAddr == "" {
		redisAddr = r.Addr
	}
	if r.Embedded {
		redisAddr = "embedded"
	}
	login := func(user string) string {
		if user == "" {
			return "connected"
		}
		return "logged in as " + user
	}
	return []probe{
		{"redis", redisAddr, []string{r.Password, r.SentinelPassword}, func(ctx context.Context) (string, error) {
			return pingRedis(ctx, cfg)
		}},
		{"smtp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), []string{s.Password}, func(ctx context.Context) (string, error) {
			return login(s.Username), mailer.Probe(ctx, s, probeTimeout)
		}},
		{"imap", net.JoinHostPort(i.Host, strconv.Itoa(i.Port)), []string{i.Password}, func(ctx context.Context) (string, error) {
			return login(i.Username), inbox.Probe(ctx, cfg, probeTimeout)
		}},
	}
}

// pingRedis opens the store of cfg, pings its server and reads its
// eviction policy, which must be noeviction. The client's own error is
// kept (refused, timed out, WRONGPASS...): the store's would only say the
// store is unreachable.
func pingRedis(ctx context.Context, cfg config.Config) (string, error) {
	b, err := openBackend(cfg)
	if err != nil {
		return "", err
	}
	defer b.Close()
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return "", err
	}
	policy, err := evictionPolicy(ctx, b.rdb)
	switch {
	case err != nil:
		return "PONG, maxmemory-policy not known (" + err.Error() + "); it must be noeviction", nil
	case policy != "noeviction":
		return "", fmt.Errorf("PONG, but maxmemory-policy is %s, not noeviction: %s", policy, evictionLoss)
	}
	return "PONG, maxmemory-policy noeviction", nil
}

// run tries p and returns one line saying what answered, and whether it
// was a success.
func (p probe) run(ctx context.Context) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	start := time.Now()
	said, err := p.try(ctx)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		return fmt.Sprintf("%s %s: failed after %s: %s", p.name, p.addr, took, p.hide(err.Error())), false
	}
	return fmt.Sprintf("%s %s: ok (%s in %s)", p.name, p.addr, said, took), true
}

// hide replaces any configured secret found in msg.
func (p probe) hide(msg string) string {
	for _, s := range p.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[hidden]")
		}
	}
	return msg
}

// probeAll tries every dependency in turn and returns a line for each,
// and an unavailable error naming those that failed.
func probeAll(ctx context.Context, cfg config.Config) ([]string, error) {
	var lines, failed []string
	for _, p := range probes(cfg) {
		line, ok := p.run(ctx)
		lines = append(lines, line)
		if !ok {
			failed = append(failed, line)
		}
	}
	if len(failed) > 0 {
		return lines, workflow.Errorf(workflow.EUnavailable, "%s", strings.Join(failed, "; "))
	}
	return lines, nil
}
