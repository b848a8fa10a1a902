package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/mailhub"
	"contactd/internal/redistest"
)

// process is one `contactd serve` in this test process: the components
// named, on an embedded Redis and in-process mail servers.
type process struct {
	t    *testing.T
	d    *Daemon
	cfg  config.Config
	hub  *mailhub.Hub
	base string
	logs *lockedBuffer
}

// startProcess runs a daemon of the components listed (as --components
// takes them), its Redis figures read every refresh, its configuration
// the demo's changed by tweak (when not nil). Its log is shown if the
// test fails.
func startProcess(t *testing.T, components string, refresh time.Duration, tweak func(*config.Config)) *process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hub, err := mailhub.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	hub.AddUser(demoMailbox, demoPassword)
	cfg, err := demoConfig(hub, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(&cfg)
	}
	comps, err := parseComponents(components)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	d, err := newDaemon(cfg, daemonOptions{components: comps, listener: ln, refreshEvery: refresh},
		newLogger(logs, "debug", "text"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		d.Close()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	return &process{t: t, d: d, cfg: cfg, hub: hub, base: cfg.HTTP.BaseURL, logs: logs}
}

// scrape reads /metrics, which must answer 200.
func (p *process) scrape() string {
	p.t.Helper()
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("/metrics answered %d:\n%s", resp.StatusCode, body)
	}
	return string(body)
}

// waitMetrics scrapes until every line in want shows, or fails.
func (p *process) waitMetrics(what string, want ...string) string {
	p.t.Helper()
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		body = p.scrape()
		if hasAll(body, want) {
			return body
		}
	}
	p.t.Fatalf("%s: /metrics never showed all of %q:\n%s", what, want, body)
	return ""
}

func hasAll(body string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(body, w) {
			return false
		}
	}
	return true
}

// metricValue returns the text of the value of the series line that
// starts with series, or "".
func metricValue(body, series string) string {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// While Redis is down, /metrics answers 200 in full: contactd_redis_up
// drops to 0, the figures read from Redis stay as last read with the
// time of that read, and the outage is logged by a process that runs
// nothing but the web component.
func TestMetricsDuringRedisOutage(t *testing.T) {
	p := startProcess(t, "http", 50*time.Millisecond, nil)
	body := p.waitMetrics("before the outage", "contactd_redis_up 1", `contactd_requests{status="pending"} 0`)
	refreshed := metricValue(body, "contactd_store_last_refresh_timestamp_seconds")
	if refreshed == "" || refreshed == "0" {
		t.Fatalf("contactd_store_last_refresh_timestamp_seconds = %q after a refresh", refreshed)
	}

	p.d.b.mini.Close()
	body = p.waitMetrics("during the outage", "contactd_redis_up 0")
	stale := metricValue(body, "contactd_store_last_refresh_timestamp_seconds")
	if !strings.Contains(body, `contactd_requests{status="pending"} 0`) {
		t.Errorf("the requests by status are gone during the outage:\n%s", body)
	}
	for i := 0; i < 5; i++ {
		body = p.scrape() // 200, or scrape fails the test
		if got := metricValue(body, "contactd_store_last_refresh_timestamp_seconds"); got != stale {
			t.Errorf("last refresh moved from %s to %s while Redis is down", stale, got)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.logs.String(), "redis unreachable: outage started"); {
		if time.Now().After(deadline) {
			t.Fatal("an http-only process did not log the Redis outage")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := p.d.b.mini.Restart(); err != nil {
		t.Fatal(err)
	}
	p.waitMetrics("after the outage", "contactd_redis_up 1")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.logs.String(), "redis reachable again: outage ended"); {
		if time.Now().After(deadline) {
			t.Fatal("the end of the Redis outage was not logged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := p.logs.String()
	if n := strings.Count(logs, "redis unreachable: outage started"); n != 1 {
		t.Errorf("the outage start was logged %d times, want once:\n%s", n, logs)
	}
	for _, flood := range []string{"failed to dial", "readiness: redis unreachable"} {
		if strings.Contains(logs, flood) {
			t.Errorf("the log has %q lines:\n%s", flood, logs)
		}
	}
}

// A scrape reads nothing from Redis: the figures are the refresher's,
// read on its own interval.
func TestScrapeDoesNotReachRedis(t *testing.T) {
	p := startProcess(t, "http,mailer", time.Hour, nil)
	p.waitMetrics("first refresh", "contactd_redis_up 1", `contactd_outbox_entries{state="ready"}`)
	var rt redistest.RoundTrips
	p.d.b.rdb.AddHook(&rt)
	for i := 0; i < 10; i++ {
		p.scrape()
	}
	if n := rt.N(); n != 0 {
		t.Errorf("ten scrapes sent %d commands to Redis, want none", n)
	}
}

// Each process exports the metrics of the components it runs, and its
// counters exist at 0 from the start.
func TestMetricsOfTheComponentsRun(t *testing.T) {
	tests := []struct {
		components string
		want, not  []string
	}{
		{"http",
			[]string{`contactd_transitions_total{event="applied"} 0`, `contactd_transitions_total{event="created"} 0`,
				`contactd_panics_recovered_total{component="http"} 0`, "contactd_redis_up 1",
				`contactd_requests{status="pending"} 0`, "contactd_build_info{"},
			[]string{"contactd_smtp_up", "contactd_imap_up", "contactd_last_poll_timestamp_seconds",
				"contactd_imap_poll_interval_seconds", "contactd_last_send_timestamp_seconds", "contactd_emails_total",
				"contactd_outbox_entries", "contactd_outbox_dead", "contactd_replies_total", "contactd_sweep_duration_seconds",
				`component="mailer"`}},
		{"mailer,inbox,scheduler",
			[]string{`contactd_emails_total{kind="validation",result="sent"} 0`, `contactd_emails_total{kind="informed",result="dead"} 0`,
				`contactd_event_deliveries_total{result="delivered"} 0`, `contactd_replies_total{outcome="processed"} 0`,
				`contactd_replies_total{outcome="ignored"} 0`, `contactd_panics_recovered_total{component="inbox"} 0`,
				`contactd_transitions_total{event="expired"} 0`, "contactd_smtp_up 1", "contactd_imap_poll_interval_seconds 1",
				`contactd_outbox_entries{state="dead"} 0`, "contactd_outbox_dead 0", `contactd_sweep_duration_seconds_count{sweep="requests"}`},
			[]string{"contactd_http_request_duration_seconds", `component="http"`}},
	}
	for _, tt := range tests {
		t.Run(tt.components, func(t *testing.T) {
			p := startProcess(t, tt.components, 50*time.Millisecond, nil)
			body := p.waitMetrics("refreshed", tt.want...)
			for _, n := range tt.not {
				if strings.Contains(body, n) {
					t.Errorf("a process of %s exports %s", tt.components, n)
				}
			}
		})
	}
}

// A process without the http component still answers /healthz, /readyz
// and /metrics, and nothing else.
func TestWorkerServesHealthOnly(t *testing.T) {
	p := startProcess(t, "mailer,inbox,scheduler", 50*time.Millisecond, nil)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v": 404, "/api/v1/requests": 404} {
		resp, err := http.Get(p.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s on a worker = %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// A worker whose http.listen is taken (a web process of the same
// configuration on the same machine) still runs, and says how to give it
// an address of its own; a web process in that case does not start.
func TestWorkerWithTakenAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := config.Default()
	cfg.Redis.Embedded = true
	cfg.HTTP.Listen = taken.Addr().String()
	logs := &lockedBuffer{}
	d, err := newDaemon(cfg, daemonOptions{components: map[string]bool{"scheduler": true}}, newLogger(logs, "info", "text"))
	if err != nil {
		t.Fatalf("a worker with its address taken did not start: %v", err)
	}
	d.Close()
	if d.Addr() != "" || !strings.Contains(logs.String(), "serve --listen ADDR") {
		t.Errorf("worker listens on %q; log:\n%s\nwant no listener and a warning naming --listen", d.Addr(), logs.String())
	}
	if _, err := newDaemon(cfg, daemonOptions{components: map[string]bool{"http": true}}, newLogger(io.Discard, "info", "text")); err == nil ||
		!strings.Contains(err.Error(), "http.listen") {
		t.Errorf("a web process with its address taken: %v, want an http.listen error", err)
	}
	if code, _, errs := cli(t, "serve", "--listen", "nowhere", "--config", writeConfig(t, "redis: {embedded: true}\n")); code != 2 ||
		!strings.Contains(errs, "--listen nowhere: must be host:port") {
		t.Errorf("serve --listen nowhere: exit %d, stderr %q; want 2 and the flag named", code, errs)
	}
}
