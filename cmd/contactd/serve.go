package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"
)

// checkListenFlag accepts host:port with a numeric port for --listen.
func checkListenFlag(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return usageError{"serve: --listen " + addr + ": must be host:port, such as 127.0.0.1:8081"}
	}
	return nil
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	f := newFlags("serve")
	comps := f.String("components", "http,mailer,inbox,scheduler", "comma-separated `LIST` of the components to run")
	tmpl := f.String("templates", "", "`DIR` of email templates overriding the built-in ones")
	prof := f.String("pprof", "", "serve Go's runtime profiles (net/http/pprof) on `ADDR`, a host:port kept on loopback; off when empty")
	listen := f.String("listen", "", "host:port `ADDR` to listen on instead of http.listen (a second process on one machine)")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	components, err := parseComponents(*comps)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*f.config)
	if err != nil {
		return err
	}
	if *listen != "" {
		if err := checkListenFlag(*listen); err != nil {
			return err
		}
		cfg.HTTP.Listen = *listen
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	for _, w := range cfg.Warnings() {
		log.Warn("config: " + w)
	}
	d, err := newDaemon(cfg, daemonOptions{components: components, templatesDir: *tmpl}, log)
	if err != nil {
		return err
	}
	defer d.Close()
	if *prof != "" {
		srv, err := servePprof(*prof, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	warnEviction(ctx, d.b.rdb, log)
	return d.Run(ctx)
}

// servePprof serves the runtime profiles under /debug/pprof/ on addr, on
// a server of their own: never on http.listen, whose clients must not
// read them.
func servePprof(addr string, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("profiles served", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	return srv, nil
}
