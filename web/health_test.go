package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/web"

	"contactd/metrics"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestHealthz(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	w := e.do("GET", "/healthz", "")
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != "ok" {
		t.Errorf("healthz = %d %q, want 200 ok", w.Code, w.Body)
	}
	if w := e.do("POST", "/healthz", ""); w.Code != 405 {
		t.Errorf("POST /healthz = %d, want 405", w.Code)
	}
}

func TestReadyz(t *testing.T) {
	b := redistest.Mini(t)
	var lastPoll time.Time
	e := newEnv(t, b, func(p *web.Params) {
		p.LastPoll = func() time.Time { return lastPoll }
		p.LastSend = func() time.Time { return p.Now().Add(-90 * time.Second) }
		p.DeadLetters = func(context.Context) (int64, error) { return 3, nil }
	})
	read := func() (int, map[string]any) {
		w := e.do("GET", "/readyz", "")
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("readyz body %q: %v", w.Body, err)
		}
		return w.Code, body
	}
	code, body := read()
	if code != 200 || body["status"] != "ready" || body["redis"] != "ok" {
		t.Errorf("readyz = %d %v, want 200 ready", code, body)
	}
	if body["last_poll_age_seconds"] != nil || body["last_send_age_seconds"] != 90.0 || body["dead_letters"] != 3.0 {
		t.Errorf("readyz ages = %v, want poll null, send 90, dead_letters 3", body)
	}
	lastPoll = e.clock.Now().Add(-1500 * time.Millisecond)
	if _, body = read(); body["last_poll_age_seconds"] != 1.5 {
		t.Errorf("last_poll_age_seconds = %v, want 1.5", body["last_poll_age_seconds"])
	}
	b.Mini.Close()
	if code, body = read(); code != 503 || body["status"] != "unavailable" || body["redis"] != "unreachable" {
		t.Errorf("readyz with Redis down = %d %v, want 503 unavailable", code, body)
	}
	if w := e.do("GET", "/healthz", ""); w.Code != 200 {
		t.Errorf("healthz with Redis down = %d, want 200", w.Code)
	}
}

func TestMetricsByRoute(t *testing.T) {
	met := metrics.New()
	e := newEnv(t, redistest.Mini(t), func(p *web.Params) { p.Metrics = met })
	e.do("GET", "/v/nope", "")
	e.do("GET", "/v/nope-again", "")
	if got := histogramCount(t, met, "/v/{token}", "404"); got != 2 {
		t.Errorf("observations of /v/{token} 404 grew by %d, want 2", got)
	}
	w := e.do("GET", "/metrics", "")
	if w.Code != 200 {
		t.Fatalf("metrics = %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{`contactd_http_request_duration_seconds_count{code="404",route="/v/{token}"}`, "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "nope") {
		t.Error("/metrics shows a path, not a route pattern")
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx, ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("healthz over TCP = %d %q", res.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after graceful shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if res, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		res.Body.Close()
		t.Error("still serving after Run returned")
	}
}

func TestNewRefusesBadParams(t *testing.T) {
	e := newEnv(t, redistest.Mini(t))
	if _, err := web.New(web.Params{}); err == nil {
		t.Error("New without a store succeeded")
	}
	p := web.Params{Store: e.store}
	p.Config.HTTP.BaseURL = "not a url"
	if _, err := web.New(p); err == nil || !strings.Contains(err.Error(), "http.base_url") {
		t.Errorf("New with a bad base URL = %v, want an error naming http.base_url", err)
	}
}

// histogramCount reads how many latencies were observed for a route and code.
func histogramCount(t *testing.T, met *metrics.Metrics, route, code string) uint64 {
	t.Helper()
	o, err := met.HTTPSeconds.GetMetricWithLabelValues(route, code)
	if err != nil {
		t.Fatal(err)
	}
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
