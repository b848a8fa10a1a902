// Package web serves contactd over HTTP: the validation and "this wasn't
// me" pages that emails link to, the JSON API of the control panel and
// operators, and the health and metrics endpoints.
//
// The daemon wires it like this:
//
//	srv, err := web.New(web.Params{Store: store, Config: cfg, Logger: log,
//		LastPoll: inbox.LastPoll, LastSend: mailer.LastSend})
//	if err != nil { ... }
//	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
//	if err != nil { ... }
//	err = srv.Run(ctx, ln) // returns once ctx is done and requests have drained
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"contactd/config"
	"contactd/metrics"
	"contactd/workflow"
)

// Timeouts of the HTTP server. Pages and API calls are small and quick;
// these bound what a slow or hostile client can hold.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 10 * time.Second
	// storeTimeout bounds each request's calls to Redis.
	storeTimeout = 10 * time.Second
)

// Params are what the server needs from the daemon.
type Params struct {
	// Store is the workflow core; required.
	Store *workflow.Store
	// Config is the whole configuration; the server reads http: and
	// workflow.default_language.
	Config config.Config
	// Logger receives decisions, reports and failed requests (never a
	// token); the daemon gives it its component attribute. Nil means
	// slog.Default().
	Logger *slog.Logger
	// LastPoll and LastSend tell when the inbox last read the mailbox and
	// the mailer last sent an email successfully; zero means never. Either
	// may be nil when that component does not run in this process.
	LastPoll, LastSend func() time.Time
	// DeadLetters counts outbox messages given up on, for /readyz; optional.
	DeadLetters func(ctx context.Context) (int64, error)
	// Now is the clock for /readyz ages; nil means time.Now.
	Now func() time.Time
	// Metrics is what /metrics serves and where request durations are
	// observed; nil means a registry of its own.
	Metrics *metrics.Metrics
	// HealthOnly serves /healthz, /readyz and /metrics alone, for a
	// process that runs no http component: its pages and API are another
	// process's, but it is watched like any other.
	HealthOnly bool
}

// Server is contactd's HTTP side.
type Server struct {
	p   Params
	log *slog.Logger
	// cross refuses the form posts a browser marks as cross-site.
	cross *http.CrossOriginProtection
	// loc is workflow.timezone, for the dates pages show.
	loc     *time.Location
	tokens  [][32]byte
	handler http.Handler
}

// New checks the parameters and builds the server's routes.
func New(p Params) (*Server, error) {
	if p.Store == nil {
		return nil, errors.New("web: Params.Store is nil")
	}
	origin, err := originOf(p.Config.HTTP.BaseURL)
	if err != nil {
		return nil, err
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	p.Metrics = metrics.Or(p.Metrics)
	s := &Server{p: p, log: p.Logger, loc: p.Config.Workflow.Location(), tokens: hashTokens(p.Config.HTTP.APITokens)}
	if s.cross, err = crossOrigin(origin); err != nil {
		return nil, err
	}
	if len(s.tokens) == 0 && !p.HealthOnly {
		s.log.Warn("http.api_tokens is empty: every API call will be refused with 401")
	}
	s.handler = accessLog(s.log, s.routes())
	return s, nil
}

// originOf returns the origin a browser sends for pages under baseURL:
// browsers leave out the scheme's default port.
func originOf(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("web: http.base_url %q must be an absolute http(s) URL", baseURL)
	}
	host := strings.TrimSuffix(u.Host, map[string]string{"http": ":80", "https": ":443"}[u.Scheme])
	return strings.ToLower(u.Scheme + "://" + host), nil
}

// crossOrigin is the cross-site policy of the pages' forms (SPEC 5): a
// browser's post must be same-origin, by Sec-Fetch-Site or by an Origin
// matching the Host it was sent to or the origin of http.base_url (the
// address users see, which a reverse proxy may not pass on as Host). A
// client that sends neither header is not a browser and is served.
func crossOrigin(origin string) (*http.CrossOriginProtection, error) {
	c := http.NewCrossOriginProtection()
	if err := c.AddTrustedOrigin(origin); err != nil {
		return nil, fmt.Errorf("web: http.base_url: %w", err)
	}
	return c, nil
}

// Handler returns the server's routes, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves on ln until ctx is done, then stops accepting connections
// and waits (up to ten seconds) for requests in flight to finish.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		_ = hs.Close()
		return fmt.Errorf("web: shutdown: %w", err)
	}
	s.log.Info("stopped")
	return nil
}
