package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
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
		{"redis port not a number", "redis: {addr: '127.0.0.1:notaport'}\n", `error: config: redis.addr: "127.0.0.1:notaport": the port`},
		{"redis cluster node without port", "redis: {addrs: [nohost]}\n", `error: config: redis.addrs[0]: "nohost" must be host:port`},
		{"imap host with spaces", "imap: {host: 'bad host name'}\n", `error: config: imap.host: "bad host name" is not a host name`},
		{"smtp host with spaces", "smtp: {host: 'bad host name'}\n", `error: config: smtp.host: "bad host name" is not a host name`},
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

// Without a configuration file, serve and config check say how to give
// one, not only that the file is not there.
func TestMissingConfigSaysWhatToDo(t *testing.T) {
	t.Setenv("CONTACTD_CONFIG", "")
	t.Chdir(t.TempDir())
	for _, args := range [][]string{{"serve"}, {"config", "check"}, {"request", "show", "r1"}} {
		code, out, errs := cli(t, args...)
		for _, want := range []string{"error: config: config.yaml: no such file", "--config FILE", "$CONTACTD_CONFIG",
			"cp config.example.yaml config.yaml"} {
			if !strings.Contains(errs, want) {
				t.Errorf("contactd %s: stderr %q lacks %q", strings.Join(args, " "), errs, want)
			}
		}
		if code != 1 || out != "" {
			t.Errorf("contactd %s: exit %d, stdout %q; want exit 1 and nothing on stdout", strings.Join(args, " "), code, out)
		}
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

func TestCommandHelp(t *testing.T) {
	tests := []struct {
		args  []string
		usage string
		flags []string
	}{
		{[]string{"serve", "--help"}, "usage: contactd serve --config FILE", []string{"--config FILE", "--components LIST", "--templates DIR", "--listen ADDR", "--pprof ADDR"}},
		{[]string{"demo", "-h"}, "usage: contactd demo", []string{"--listen ADDR", "--exit"}},
		{[]string{"config", "check", "--help"}, "usage: contactd config check --config FILE", []string{"--config FILE", "--probe"}},
		{[]string{"directory", "import", "--help"}, "usage: contactd directory import --config FILE DATA.yaml", []string{"--config FILE"}},
		{[]string{"request", "create", "--help"}, "usage: contactd request create",
			[]string{"--config FILE", "--service ID", "--requester NIC", "--admin NIC", "--tech NIC", "--billing NIC"}},
		{[]string{"request", "show", "-h"}, "usage: contactd request show --config FILE ID", []string{"--config FILE"}},
		{[]string{"request", "list", "--help"}, "usage: contactd request list", []string{"--config FILE", "--nic NIC", "--status STATUS"}},
		{[]string{"request", "resend", "x", "--help"}, "usage: contactd request resend", []string{"--config FILE", "--nic NIC"}},
		{[]string{"help", "request", "cancel"}, "usage: contactd request cancel", []string{"--config FILE", "--nic NIC"}},
		{[]string{"version", "--help"}, "usage: contactd version", nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := cli(t, tt.args...)
			if code != 0 || errs != "" || !strings.HasPrefix(out, tt.usage) {
				t.Fatalf("exit %d, stderr %q, stdout %q; want exit 0 and a usage starting %q", code, errs, out, tt.usage)
			}
			_, flagPart, _ := strings.Cut(out, "\nflags:\n")
			for _, f := range tt.flags {
				if !strings.Contains(flagPart, "  "+f+" ") {
					t.Errorf("flag %q not listed in:\n%s", f, flagPart)
				}
			}
			if n := strings.Count("\n"+flagPart, "\n  --"); n != len(tt.flags) {
				t.Errorf("%d flags listed, want %d:\n%s", n, len(tt.flags), flagPart)
			}
		})
	}
}

func TestGroupHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"serve", "demo", "config check", "directory import", "request create", "request show",
			"request list", "request resend", "request cancel", "version"}},
		{[]string{"help"}, []string{"serve", "request cancel", "version"}},
		{[]string{"request", "--help"}, []string{"request create", "request show", "request list", "request resend", "request cancel"}},
		{[]string{"config", "--help"}, []string{"config check"}},
		{[]string{"directory", "-h"}, []string{"directory import"}},
		{[]string{"help", "request"}, []string{"request create", "request cancel"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := cli(t, tt.args...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errs)
			}
			var listed []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "  ") {
					listed = append(listed, l)
				}
			}
			for _, w := range tt.want {
				found := false
				for _, l := range listed {
					found = found || strings.HasPrefix(l, "  "+w)
				}
				if !found {
					t.Errorf("%q not listed in:\n%s", w, out)
				}
			}
			if strings.Contains(strings.Join(tt.args, " "), "request") && len(listed) != len(tt.want) && len(tt.want) == 5 {
				t.Errorf("request help lists %d commands, want 5:\n%s", len(listed), out)
			}
		})
	}
}

func TestUnknownSubcommandShowsItsGroup(t *testing.T) {
	code, out, errs := cli(t, "request", "fly")
	if code != 2 || out != "" || !strings.HasPrefix(errs, "contactd: unknown command: request fly\n") ||
		!strings.Contains(errs, "  request create") || strings.Contains(errs, "  serve") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 and the request commands' usage", code, out, errs)
	}
}

func TestVersion(t *testing.T) {
	old := version
	version = "1.2.3-test"
	t.Cleanup(func() { version = old })
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errs := cli(t, args...)
		if code != 0 || errs != "" {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errs)
		}
		var got buildInfo
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%q: %v in %q", args, err, out)
		}
		if got.Version != "1.2.3-test" || got.Go != runtime.Version() {
			t.Errorf("%q: got %+v, want version 1.2.3-test and Go %s", args, got, runtime.Version())
		}
	}
	if code, _, _ := cli(t, "version", "extra"); code != 2 {
		t.Errorf("version with an argument: exit %d, want 2", code)
	}
}
