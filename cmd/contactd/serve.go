package main

import (
	"context"
	"io"
	"net"
	"strconv"
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
	warnEviction(ctx, d.b.rdb, log)
	return d.Run(ctx)
}
