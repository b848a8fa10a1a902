package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"contactd/config"
	"contactd/mailer"
	"contactd/templates"
	"contactd/workflow"

	gomessage "github.com/emersion/go-message/mail"
)

// templateSet loads the email templates (dir overriding the built-in
// ones) with the provider's branding and time zone from cfg.
func templateSet(dir string, cfg config.Config) (*templates.Set, error) {
	set, err := templates.Load(dir)
	if err != nil {
		return nil, err
	}
	return set.WithOptions(templates.Options{Brand: cfg.Branding.Name, SupportURL: cfg.Branding.SupportURL,
		Location: cfg.Workflow.Location()}), nil
}

// cmdTemplates is "templates render KIND LANG [--handover] [--templates
// DIR] [--config FILE] [--raw]": one email about a made-up request (or,
// with --handover, a made-up hand-over of 28 services), written by the
// mailer exactly as it would be sent (DKIM signature included when
// configured). By default the headers and both parts are shown decoded,
// for reading; --raw prints the bytes the relay would receive.
func cmdTemplates(name string, args []string, stdout io.Writer) error {
	if name != "render" {
		return usageError{"unknown command: templates " + name}
	}
	fs := flag.NewFlagSet("templates render", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("templates", "", "directory of templates overriding the built-in ones")
	cfgPath := fs.String("config", "", "configuration file (branding, time zone, base URL, smtp.from, DKIM); built-in defaults without it")
	raw := fs.Bool("raw", false, "print the message exactly as the relay would receive it (encoded, signed)")
	handover := fs.Bool("handover", false, "the email of a hand-over (one change on 28 services) instead of one request")
	f := &flags{FlagSet: fs}
	pos, err := f.parse(args, 2)
	if err != nil {
		return err
	}
	kind, ok := workflow.ParseEmailKind(pos[0])
	if !ok {
		return usageError{fmt.Sprintf("unknown email kind %q; one of: %s", pos[0], workflow.KindNames(workflow.EmailKinds))}
	}
	lang, ok := workflow.ParseLanguage(pos[1])
	if !ok || string(lang) != pos[1] {
		return usageError{fmt.Sprintf("unknown language %q; one of: %s", pos[1], workflow.LanguageNames())}
	}
	if *handover && !slices.Contains(workflow.HandoverKinds, kind) {
		return usageError{fmt.Sprintf("a hand-over sends no %s email; --handover goes with one of: %s", kind, workflow.KindNames(workflow.HandoverKinds))}
	}
	cfg := config.Default()
	if *cfgPath != "" {
		if cfg, err = loadConfig(*cfgPath); err != nil {
			return err
		}
	}
	set, err := templateSet(*dir, cfg)
	if err != nil {
		return err
	}
	sample := templates.Sample
	if *handover {
		sample = templates.SampleHandover
	}
	msg, err := mailer.Preview(cfg, set, sample(kind, lang, strings.TrimRight(cfg.HTTP.BaseURL, "/")), time.Now())
	if err != nil {
		return err
	}
	if *raw {
		_, err = stdout.Write(msg)
		return err
	}
	return writeDecoded(stdout, msg)
}

// folding is a header line break and the whitespace that follows it.
var folding = regexp.MustCompile(`\r?\n[ \t]+`)

// writeDecoded prints a written email for reading: each header as sent
// but with encoded words decoded, then each part's decoded body.
func writeDecoded(w io.Writer, raw []byte) error {
	r, err := gomessage.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("reading the written message: %w", err)
	}
	fields := r.Header.Fields()
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		fmt.Fprintf(w, "%s: %s\n", fields.Key(), folding.ReplaceAllString(v, " "))
	}
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the written message: %w", err)
		}
		mt, params, _ := part.Header.(*gomessage.InlineHeader).ContentType()
		body, err := io.ReadAll(part.Body)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n--- %s; charset=%s ---\n%s", mt, strings.ToLower(params["charset"]), body)
	}
}
