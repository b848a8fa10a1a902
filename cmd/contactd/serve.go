package main

import (
	"context"
	"io"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	f := newFlags("serve")
	comps := f.String("components", "http,mailer,inbox,scheduler", "comma-separated `LIST` of the components to run")
	tmpl := f.String("templates", "", "`DIR` of email templates overriding the built-in ones")
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
