package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"

	"contactd/internal/redistest"
)

// writeConfig writes body as a config file and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCheckRefuses(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"empty file", "", "error: config: config: the file is empty"},
		{"duplicate key", "smtp: {port: 25}\nsmtp: {port: 26}\n", "error: config: smtp: duplicate key (lines 1 and 2)"},
		{"cron serve would refuse", "schedule: {sweep: every 30s}\n", "error: config: schedule.sweep: must be a cron spec"},
		{"unset variable named with its key", "smtp: {password: '${CONTACTD_TEST_UNSET_VAR}'}\n",
			"error: config: smtp.password: ${CONTACTD_TEST_UNSET_VAR} is not set (line 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := cli(t, "config", "check", "--config", writeConfig(t, tt.body))
			if code != 1 || !strings.HasPrefix(errs, tt.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and stderr starting %q", code, out, errs, tt.want)
			}
		})
	}
}

func TestConfigCheckReportsEveryProblem(t *testing.T) {
	code, _, errs := cli(t, "config", "check", "--config", writeConfig(t, "schedule: {sweep: every 30s}\nlog: {level: loud}\nhttp: {listen: nowhere}\n"))
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, key := range []string{"schedule.sweep:", "log.level:", "http.listen:"} {
		if !strings.Contains(errs, key) {
			t.Errorf("stderr %q does not name %s", errs, key)
		}
	}
}

func TestConfigCheckWarns(t *testing.T) {
	body := "http: {base_url: 'http://contacts.example.com'}\nworkflow: {remind_after: 400h}\n"
	code, out, errs := cli(t, "config", "check", "--config", writeConfig(t, body))
	if code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 0", code, out, errs)
	}
	want := []string{
		"warning: http.api_tokens: empty",
		"warning: http.base_url: http://contacts.example.com is plain http",
		"warning: workflow.remind_after: 400h0m0s is not less than workflow.request_ttl 336h0m0s",
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if len(lines) != len(want) {
		t.Fatalf("stderr has %d lines, want %d: %q", len(lines), len(want), errs)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
		}
	}
}

// jsonLog is a JSON slog logger writing into the returned buffer.
func jsonLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

// logLines decodes every JSON log line in buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestWarnEviction(t *testing.T) {
	policy := func(p string) func(c *server.Peer, cmd string, args []string) {
		return func(c *server.Peer, cmd string, args []string) {
			c.WriteLen(2)
			c.WriteBulk("maxmemory-policy")
			c.WriteBulk(p)
		}
	}
	tests := []struct {
		name   string
		config func(c *server.Peer, cmd string, args []string) // nil: CONFIG refused
		warn   bool
	}{
		{"evicting", policy("allkeys-lru"), true},
		{"noeviction", policy("noeviction"), false},
		{"CONFIG refused", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := miniredis.RunT(t)
			if tt.config != nil {
				if err := m.Server().Register("CONFIG", tt.config); err != nil {
					t.Fatal(err)
				}
			}
			rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2})
			defer rdb.Close()
			log, buf := jsonLog()
			warnEviction(context.Background(), rdb, log)
			lines := logLines(t, buf)
			if got := len(lines) == 1 && lines[0]["level"] == "WARN" && lines[0]["maxmemory_policy"] == "allkeys-lru"; got != tt.warn {
				t.Errorf("log %q: warned %v, want %v", buf, got, tt.warn)
			}
		})
	}
}

func TestWarnEvictionRealRedis(t *testing.T) {
	b := redistest.Real(t)
	log, buf := jsonLog()
	warnEviction(context.Background(), b.Client, log)
	policy, err := b.Client.ConfigGet(context.Background(), "maxmemory-policy").Result()
	if err != nil {
		t.Fatal(err)
	}
	if warned := strings.Contains(buf.String(), "noeviction"); warned != (policy["maxmemory-policy"] != "noeviction") {
		t.Errorf("policy %q, log %q", policy["maxmemory-policy"], buf)
	}
}

func TestRedisLogIsTheDaemonsLog(t *testing.T) {
	log, buf := jsonLog()
	routeRedisLog(log)
	t.Cleanup(func() { routeRedisLog(slog.New(slog.DiscardHandler)) })
	// Nothing listens on port 1: go-redis gives up dialing and says so
	// through its own logger.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err == nil {
		t.Fatal("a ping to port 1 succeeded")
	}
	lines := logLines(t, buf)
	if len(lines) == 0 {
		t.Fatal("go-redis logged nothing into the daemon's log")
	}
	for _, l := range lines {
		msg, _ := l["msg"].(string)
		if l["component"] != "redis" || l["level"] != "WARN" || strings.HasPrefix(msg, "redis: ") || msg == "" {
			t.Errorf("line %v: want a WARN of component redis without the \"redis: \" prefix", l)
		}
	}
}
