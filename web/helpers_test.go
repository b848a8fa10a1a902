package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/web"
	"contactd/workflow"
)

// clock is a settable clock shared by the store and the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const (
	apiToken = "test-api-token-0123456789"
	baseURL  = "https://contacts.example.test"
	ttl      = 336 * time.Hour
)

// seedYAML is the directory every test starts from.
const seedYAML = `contacts:
  - {nic: ad1-ovh, email: admin@example.com, name: Alice Admin, language: en}
  - {nic: te1-ovh, email: tech@example.com, name: Tom Tech, language: fr}
  - {nic: bi1-ovh, email: billing@example.com, name: Bob Billing}
  - {nic: nw1-ovh, email: new1@example.net, name: Nora New, language: fr}
  - {nic: nw2-ovh, email: new2@example.net, name: Ned New}
  - {nic: od1-ovh, email: overdue@example.net, name: Olga Overdue, payment_ok: false}
services:
  - {id: example.com, kind: domain, admin: ad1-ovh, tech: te1-ovh, billing: bi1-ovh}
  - {id: hosting-9, kind: hosting, admin: ad1-ovh, tech: nw2-ovh, billing: bi1-ovh}
  - {id: overdue.org, kind: domain, admin: ad1-ovh, tech: te1-ovh, billing: od1-ovh}
`

// env is a seeded store and the server in front of it.
type env struct {
	t     testing.TB
	b     redistest.Backend
	clock *clock
	store *workflow.Store
	srv   *web.Server
	h     http.Handler
}

func newEnv(t testing.TB, b redistest.Backend, mod ...func(*web.Params)) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	store, err := workflow.NewStore(b.Client, workflow.Options{
		KeyPrefix: b.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`, RequestTTL: ttl, RemindAfter: 48 * time.Hour,
		MaxReminders: 2, ReportWindow: 720 * time.Hour, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(context.Background(), []byte(seedYAML)); err != nil {
		t.Fatalf("import: %v", err)
	}
	cfg := config.Default()
	cfg.HTTP.BaseURL = baseURL
	cfg.HTTP.APITokens = []string{"another-token-abcdefghij", apiToken}
	p := web.Params{Store: store, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.Now}
	for _, f := range mod {
		f(&p)
	}
	srv, err := web.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, b: b, clock: c, store: store, srv: srv, h: srv.Handler()}
}

// do sends one request to the handler; header pairs follow the body.
func (e *env) do(method, path, body string, header ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return w
}

// api sends an authorised JSON call.
func (e *env) api(method, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	h := []string{"Authorization", "Bearer " + apiToken}
	if body != "" {
		h = append(h, "Content-Type", "application/json")
	}
	return e.do(method, path, body, h...)
}

// form posts a form the way the page's own browser tab does.
func (e *env) form(path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do("POST", path, body, "Content-Type", "application/x-www-form-urlencoded",
		"Origin", baseURL, "Sec-Fetch-Site", "same-origin")
}

// create makes a request through the store and returns it.
func (e *env) create(service, requester string, changes map[string]string) *workflow.Request {
	e.t.Helper()
	r, err := e.store.Create(context.Background(), workflow.Ask{Service: service, Requester: requester, Changes: changes}, workflow.API)
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
	return r
}

// token issues the token of the email queued to an approver, as the
// mailer does just before sending it: it works at once.
func (e *env) token(id, nic string) string {
	e.t.Helper()
	return outboxtest.Pending(e.t, e.store, func(en *workflow.OutboxEntry) bool {
		return en.Request == id && en.NIC == nic && en.Kind().CarriesToken()
	})
}

// deliver does what the mailer does for a new email to an approver: it
// queues a resend to them, issues its token and records it as accepted
// by the mail server, which revokes the approver's earlier tokens. It
// returns the new token.
func (e *env) deliver(id, nic string) string {
	e.t.Helper()
	if _, err := e.store.Resend(context.Background(), id, nic); err != nil {
		e.t.Fatalf("resend: %v", err)
	}
	toks := outboxtest.Deliver(e.t, e.store, outboxtest.Of(id, nic, workflow.KindResend))
	if toks["resend "+nic] == "" {
		e.t.Fatalf("no email to %s queued for %s", nic, id)
	}
	return toks["resend "+nic]
}

// reportToken issues the "this wasn't me" token of the informed email
// queued to nic about request id, as the mailer does.
func (e *env) reportToken(id, nic string) string {
	e.t.Helper()
	return outboxtest.Pending(e.t, e.store, outboxtest.Of(id, nic, workflow.KindInformed))
}

// get reads a request from the store.
func (e *env) get(id string) *workflow.Request {
	e.t.Helper()
	r, err := e.store.Get(context.Background(), id)
	if err != nil {
		e.t.Fatalf("get %s: %v", id, err)
	}
	return r
}

// snapshot returns every key of the test's prefix with its type and value.
func (e *env) snapshot() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	c := e.b.Client
	keys, err := e.b.Keys(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(keys)
	out := map[string]string{}
	for _, k := range keys {
		typ := c.Type(ctx, k).Val()
		var v any
		switch typ {
		case "string":
			v = c.Get(ctx, k).Val()
		case "hash":
			v = c.HGetAll(ctx, k).Val()
		case "set":
			m := c.SMembers(ctx, k).Val()
			sort.Strings(m)
			v = m
		case "zset":
			v = c.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "list":
			v = c.LRange(ctx, k, 0, -1).Val()
		case "stream":
			v = c.XRange(ctx, k, "-", "+").Val()
		}
		j, _ := json.Marshal(v)
		out[k] = typ + " " + string(j)
	}
	return out
}

// errorOf decodes an API error body, failing when it is not one.
func errorOf(t testing.TB, w *httptest.ResponseRecorder) (code, message, requestID string) {
	t.Helper()
	var b struct {
		Error *struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error == nil || b.Error.Code == "" {
		t.Fatalf("status %d: body is not a JSON error: %q", w.Code, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	return b.Error.Code, b.Error.Message, b.Error.RequestID
}

// checkPageHeaders checks the headers of SPEC section 5.
func checkPageHeaders(t testing.TB, w *httptest.ResponseRecorder) {
	t.Helper()
	h := w.Header()
	for k, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, part := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, part) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, part)
		}
	}
}
