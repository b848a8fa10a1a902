package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"contactd/config"
	"contactd/internal/redistest"
	"contactd/metrics"
	"contactd/web"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// TestTokensNeverLogged drives every page path, including failures, and
// checks no token reaches the log.
func TestTokensNeverLogged(t *testing.T) {
	var logs syncBuffer
	b := redistest.Mini(t)
	e := newEnv(t, b, func(p *web.Params) {
		p.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tokN, tokA := e.token(r.ID, "nw1-ovh"), e.token(r.ID, "ad1-ovh")
	e.do("GET", "/v/"+tokN, "")
	e.form("/v/"+tokN, "decision=accept")
	e.form("/v/"+tokN, "decision=accept")
	e.form("/v/"+tokA, "decision=maybe")
	e.do("POST", "/v/"+tokA, "decision=accept", "Origin", "https://evil.example")
	e.form("/v/"+tokA, "decision=accept")
	rep := e.reportToken(r.ID, "te1-ovh")
	e.do("GET", "/r/"+rep, "")
	e.form("/r/"+rep, "report=1")
	r3 := e.create("overdue.org", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tok3 := e.token(r3.ID, "nw1-ovh")
	e.do("GET", "/v?code="+grouped(tok3), "")
	e.api("POST", "/api/v1/decisions", `{"token":"`+grouped(tok3)+`","decision":"accept","nic":"ad1-ovh"}`)
	e.api("POST", "/api/v1/decisions", `{"token":"`+grouped(tok3)+`","decision":"accept","nic":"nw1-ovh"}`)
	e.api("POST", "/api/v1/decisions", `{"token":"`+grouped(tok3)+`","decision":"accept"}`)
	r2 := e.create("hosting-9", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tok2 := e.token(r2.ID, "nw1-ovh")
	b.Mini.Close()
	e.api("POST", "/api/v1/decisions", `{"token":"`+tok2+`","decision":"decline"}`)
	e.do("GET", "/v/"+tok2, "")
	e.form("/v/"+tok2, "decision=decline")

	out := logs.String()
	if !strings.Contains(out, "decision recorded") || !strings.Contains(out, "change disputed") || !strings.Contains(out, "store unavailable") {
		t.Fatalf("the log lacks the expected lines:\n%s", out)
	}
	if !strings.Contains(out, "channel=api") {
		t.Fatalf("the log lacks the decision made by code:\n%s", out)
	}
	for _, tok := range []string{tokN, tokA, rep, tok2, tok3, workflow.HashToken(tokN), workflow.HashToken(tok2), workflow.HashToken(tok3)} {
		low := strings.ToLower(out)
		if strings.Contains(low, strings.ToLower(tok)) || strings.Contains(low, strings.ToLower(grouped(tok)[5:])) {
			t.Errorf("a token (or its hash) is in the log:\n%s", out)
		}
	}
}

// TestInternalErrorsSayNothing corrupts a stored request: the API and the
// page answer 500 with "internal error" and nothing more.
func TestInternalErrorsSayNothing(t *testing.T) {
	b := redistest.Mini(t)
	e := newEnv(t, b)
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tok := e.token(r.ID, "nw1-ovh")
	shard := strings.IndexByte("abcdefghijklmnopqrstuvwxyz234567", r.ID[0])
	key := workflow.Keys{Prefix: b.Prefix}.Request(shard, r.ID)
	if err := b.Client.HSet(context.Background(), key, "chg", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	w := e.api("GET", "/api/v1/requests/"+r.ID, "")
	if code, msg, _ := errorOf(t, w); w.Code != 500 || code != "internal" || msg != "internal error" {
		t.Errorf("corrupt request = %d %s %q, want 500 internal \"internal error\"", w.Code, code, msg)
	}
	w = e.do("GET", "/v/"+tok, "")
	if w.Code != 500 || strings.Contains(w.Body.String(), "json") || strings.Contains(w.Body.String(), r.ID) {
		t.Errorf("page on a corrupt request = %d:\n%s", w.Code, pageText(w.Body.String()))
	}
	checkPageHeaders(t, w)
}

// TestRecoversWhenRedisReturns checks the API answers 503 while Redis is
// away and serves again, by itself, once it is back.
func TestRecoversWhenRedisReturns(t *testing.T) {
	b := redistest.Mini(t)
	e := newEnv(t, b)
	b.Mini.Close()
	if w := e.api("GET", "/api/v1/contacts/ad1-ovh", ""); w.Code != 503 {
		t.Fatalf("with Redis down = %d, want 503", w.Code)
	}
	if w := e.do("GET", "/readyz", ""); w.Code != 503 {
		t.Fatalf("readyz with Redis down = %d, want 503", w.Code)
	}
	if err := b.Mini.Restart(); err != nil {
		t.Fatal(err)
	}
	if w := e.api("GET", "/api/v1/contacts/ad1-ovh", ""); w.Code != 200 {
		t.Errorf("after Redis returned = %d, want 200: %s", w.Code, w.Body)
	}
	if w := e.do("GET", "/readyz", ""); w.Code != 200 {
		t.Errorf("readyz after Redis returned = %d, want 200", w.Code)
	}
}

// panicky is a Redis client whose every call panics, standing in for a bug.
type panicky struct{ redis.UniversalClient }

// TestPanicAnswersInTheRouteShape checks a handler that panics still gets
// an answer: the JSON error on the API, the error page elsewhere, both 500
// with nothing of the cause, and the page headers.
func TestPanicAnswersInTheRouteShape(t *testing.T) {
	store, err := workflow.NewStore(panicky{}, workflow.Options{NICPattern: `^[a-z]{2}[0-9]+-ovh$`})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.HTTP.APITokens = []string{apiToken}
	met := metrics.New(metrics.HTTP)
	srv, err := web.New(web.Params{Store: store, Config: cfg, Metrics: met, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, h: srv.Handler()}
	w := e.api("GET", "/api/v1/contacts/ad1-ovh", "")
	if code, msg, _ := errorOf(t, w); w.Code != 500 || code != "internal" || msg != "internal error" {
		t.Errorf("API call that panics = %d %s %q, want 500 internal \"internal error\"", w.Code, code, msg)
	}
	checkPageHeaders(t, w)
	w = e.do("GET", "/v/"+strings.Repeat("a", workflow.TokenLen), "")
	if w.Code != 500 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || strings.Contains(w.Body.String(), "panic") {
		t.Errorf("page that panics = %d %q:\n%s", w.Code, w.Header().Get("Content-Type"), pageText(w.Body.String()))
	}
	checkPageHeaders(t, w)
	if n := testutil.ToFloat64(met.Panics.WithLabelValues("http")); n != 2 {
		t.Errorf("contactd_panics_recovered_total{component=\"http\"} = %v after two panics, want 2", n)
	}
}
