package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"contactd/metrics"
	"contactd/workflow"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// route is one method on one path pattern.
type route struct {
	Method  string
	Pattern string
	// API routes need a bearer token and answer errors in JSON.
	API     bool
	Handler http.HandlerFunc
}

// routeTable lists everything the server answers: with Params.HealthOnly,
// the operations routes alone. docs/openapi.yaml describes its API part;
// a test keeps the two in step.
func (s *Server) routeTable() []route {
	if s.p.HealthOnly {
		return s.opsRoutes()
	}
	return append([]route{
		{"GET", "/v", false, s.getCode},
		{"GET", "/v/{token}", false, s.getValidation},
		{"POST", "/v/{token}", false, s.postValidation},
		{"GET", "/r/{token}", false, s.getReport},
		{"POST", "/r/{token}", false, s.postReport},

		{"POST", "/api/v1/requests", true, s.createRequest},
		{"GET", "/api/v1/requests", true, s.listRequests},
		{"GET", "/api/v1/requests/{id}", true, s.getRequest},
		{"POST", "/api/v1/requests/{id}/resend", true, s.resendRequest},
		{"POST", "/api/v1/requests/{id}/cancel", true, s.cancelRequest},
		{"POST", "/api/v1/decisions", true, s.postDecision},
		{"POST", "/api/v1/handovers", true, s.createHandover},
		{"GET", "/api/v1/handovers/{id}", true, s.getHandover},
		{"POST", "/api/v1/handovers/{id}/resend", true, s.resendHandover},
		{"POST", "/api/v1/handovers/{id}/cancel", true, s.cancelHandover},
		{"GET", "/api/v1/contacts/{nic}/services", true, s.contactServices},
		{"GET", "/api/v1/contacts/{nic}", true, s.getContact},
		{"PUT", "/api/v1/contacts/{nic}", true, s.putContact},
		{"GET", "/api/v1/services/{id}", true, s.getService},
		{"PUT", "/api/v1/services/{id}", true, s.putService},
	}, s.opsRoutes()...)
}

// Routes lists "METHOD pattern" for every route the server answers, in
// the order of its table. docs/reference.md lists them; a test keeps the
// two in step.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.routeTable() {
		out = append(out, r.Method+" "+r.Pattern)
	}
	return out
}

// opsRoutes are the routes of the operator's tools: liveness, readiness
// and metrics, served by every process.
func (s *Server) opsRoutes() []route {
	return []route{
		{"GET", "/healthz", false, s.healthz},
		{"GET", "/readyz", false, s.readyz},
		{"GET", "/metrics", false, s.metricsHandler()},
	}
}

// metricsHandler is GET /metrics: the registry's collectors serve from
// memory (what lives in Redis is read by the daemon's metrics.Refresher,
// never here), and a collector that fails loses its own series, not the
// scrape.
func (s *Server) metricsHandler() http.HandlerFunc {
	return promhttp.HandlerFor(s.p.Metrics.Registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}).ServeHTTP
}

// routes builds the mux: one handler per pattern that dispatches on the
// method (so a wrong method gets 405 with Allow, in JSON on the API), and
// catch-alls answering 404 for everything else.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	byPattern := map[string]map[string]http.HandlerFunc{}
	api := map[string]bool{}
	var order []string
	for _, rt := range s.routeTable() {
		if byPattern[rt.Pattern] == nil {
			byPattern[rt.Pattern] = map[string]http.HandlerFunc{}
			order = append(order, rt.Pattern)
		}
		byPattern[rt.Pattern][rt.Method] = rt.Handler
		api[rt.Pattern] = rt.API
	}
	for _, p := range order {
		var h http.Handler = s.dispatch(byPattern[p], api[p])
		if api[p] {
			h = s.authed(h)
		}
		mux.Handle(p, s.instrument(h))
	}
	if !s.p.HealthOnly {
		mux.Handle("/api/", s.instrument(s.authed(http.HandlerFunc(s.apiNotFound))))
	}
	mux.Handle("/", s.instrument(http.HandlerFunc(s.pageNotFound)))
	return securityHeaders(mux)
}

// dispatch runs the handler of the request's method (HEAD runs GET's).
func (s *Server) dispatch(methods map[string]http.HandlerFunc, api bool) http.HandlerFunc {
	allowed := make([]string, 0, len(methods)+1)
	for m := range methods {
		allowed = append(allowed, m)
	}
	if methods["GET"] != nil {
		allowed = append(allowed, "HEAD")
	}
	sort.Strings(allowed)
	allow := strings.Join(allowed, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		m := r.Method
		if m == "HEAD" {
			m = "GET"
		}
		if h := methods[m]; h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Allow", allow)
		err := workflow.Errorf(eMethodNotAllowed, "%s is not allowed here; use %s", r.Method, allow)
		if api {
			s.apiError(w, r, err)
			return
		}
		s.pageError(w, r, err)
	}
}

func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	s.apiError(w, r, workflow.Errorf(workflow.ENotFound, "no such route: %s %s", r.Method, clip(r.URL.Path)))
}

func (s *Server) pageNotFound(w http.ResponseWriter, r *http.Request) {
	s.pageError(w, r, workflow.Errorf(workflow.ENotFound, "no such page"))
}

// hashTokens keeps the API tokens as SHA-256 sums, so that comparing them
// takes the same time whatever their length.
func hashTokens(tokens []string) [][32]byte {
	out := make([][32]byte, 0, len(tokens))
	for _, t := range tokens {
		if t != "" {
			out = append(out, sha256.Sum256([]byte(t)))
		}
	}
	return out
}

// authed lets through only calls bearing one of http.api_tokens; every
// token is compared, in constant time.
func (s *Server) authed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		ok := 0
		for _, t := range s.tokens {
			ok |= subtle.ConstantTimeCompare(sum[:], t[:])
		}
		if ok != 1 || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="contactd"`)
			s.apiError(w, r, workflow.Errorf(eUnauthorized, "a valid API token is required: Authorization: Bearer <token>"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// csp allows nothing but the page's own inline style and forms posting
// back to the same origin.
var csp = "default-src 'none'; style-src '" + styleHash + "'; img-src 'none'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers of SPEC section 5 on every answer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument observes each call's latency by route pattern and status,
// and turns a panic into a 500 instead of a dropped connection.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.p.Metrics.Panics.WithLabelValues(string(metrics.HTTP)).Inc()
				s.log.Error("panic while serving", "route", r.Pattern, "method", r.Method, "panic", v)
				if sw.status == 0 {
					s.internalError(sw, r)
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			s.p.Metrics.HTTPSeconds.WithLabelValues(r.Pattern, strconv.Itoa(sw.status)).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// internalError answers a call whose handler panicked, in the shape of
// its route: the JSON error on the API, the error page elsewhere.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request) {
	err := errors.New("web: handler panicked")
	if strings.HasPrefix(r.Pattern, "/api/") {
		s.apiError(w, r, err)
		return
	}
	s.pageError(w, r, err)
}

// clip shortens untrusted text quoted back in a message.
func clip(s string) string {
	if len(s) > 80 {
		s = strings.ToValidUTF8(s[:80], "") + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
