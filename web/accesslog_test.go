package web_test

import (
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"contactd/internal/redistest"
	"contactd/web"
)

// accessLines returns the access log lines in a JSON log, decoded.
func accessLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "http request" {
			out = append(out, m)
		}
	}
	return out
}

func TestAccessLog(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, redistest.Mini(t), func(p *web.Params) {
		p.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tok := e.token(r.ID, "nw1-ovh")

	type call struct {
		method, path, requestID string
		auth                    bool
	}
	calls := []call{
		{"GET", "/v/" + tok, "proxy-42", false},
		{"GET", "/api/v1/requests/" + r.ID, "", true},
		{"GET", "/api/v1/requests/" + r.ID, "", false},
		{"DELETE", "/healthz", "", false},
		{"GET", "/no/such/page?token=" + tok, "with space", false},
		{"GET", "/r/" + tok, strings.Repeat("x", 129), false},
	}
	var echoed []string
	for _, c := range calls {
		h := []string{}
		if c.requestID != "" {
			h = append(h, "X-Request-Id", c.requestID)
		}
		if c.auth {
			h = append(h, "Authorization", "Bearer "+apiToken)
		}
		w := e.do(c.method, c.path, "", h...)
		echoed = append(echoed, w.Header().Get("X-Request-Id"))
	}

	lines := accessLines(t, logs.String())
	if len(lines) != len(calls) {
		t.Fatalf("%d access log lines for %d requests:\n%s", len(lines), len(calls), logs.String())
	}
	type entry struct{ Method, Route, Status string }
	var got []entry
	for _, l := range lines {
		got = append(got, entry{l["method"].(string), l["route"].(string), jsonNumber(l["status"])})
	}
	want := []entry{
		{"GET", "/v/{token}", "200"},
		{"GET", "/api/v1/requests/{id}", "200"},
		{"GET", "/api/v1/requests/{id}", "401"},
		{"DELETE", "/healthz", "405"},
		{"GET", "/", "404"},
		{"GET", "/r/{token}", "404"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("access log (-want +got):\n%s", diff)
	}

	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for i, l := range lines {
		id, _ := l["x_request_id"].(string)
		if id != echoed[i] {
			t.Errorf("request %d: logged id %q, response header %q", i, id, echoed[i])
		}
		if c := calls[i]; c.requestID == "proxy-42" {
			if id != "proxy-42" {
				t.Errorf("request %d: the proxy's id %q became %q", i, c.requestID, id)
			}
		} else if !generated.MatchString(id) {
			t.Errorf("request %d (sent id %q): id %q, want a generated one", i, c.requestID, id)
		}
		if d, ok := l["duration_seconds"].(float64); !ok || d < 0 || d > 10 {
			t.Errorf("request %d: duration_seconds %v", i, l["duration_seconds"])
		}
		if l["remote"] == "" || l["remote"] == nil {
			t.Errorf("request %d: no remote address", i)
		}
	}
	if echoed[1] == echoed[2] {
		t.Errorf("two requests were given the same id %q", echoed[1])
	}
	if strings.Contains(logs.String(), tok) {
		t.Errorf("a token reached the log:\n%s", logs.String())
	}
}

// jsonNumber writes a decoded JSON number as its decimal text.
func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
