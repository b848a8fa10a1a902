package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"contactd/config"
	"contactd/templates"
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

// cmdTemplates is "templates render KIND LANG [--templates DIR] [--config
// FILE]": one email about a made-up request, as the templates write it.
func cmdTemplates(name string, args []string, stdout io.Writer) error {
	if name != "render" {
		return usageError{"unknown command: templates " + name}
	}
	fs := flag.NewFlagSet("templates render", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("templates", "", "directory of templates overriding the built-in ones")
	cfgPath := fs.String("config", "", "configuration file (branding, time zone, base URL); built-in defaults without it")
	f := &flags{FlagSet: fs}
	pos, err := f.parse(args, 2)
	if err != nil {
		return err
	}
	kind, lang := pos[0], pos[1]
	if !slices.Contains(templates.Kinds, kind) {
		return usageError{fmt.Sprintf("unknown email kind %q; one of: %s", kind, strings.Join(templates.Kinds, ", "))}
	}
	if !slices.Contains(templates.Languages, lang) {
		return usageError{fmt.Sprintf("unknown language %q; one of: %s", lang, strings.Join(templates.Languages, ", "))}
	}
	cfg := config.Default()
	if *cfgPath != "" {
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	set, err := templateSet(*dir, cfg)
	if err != nil {
		return err
	}
	e, err := set.Render(templates.Sample(kind, lang, strings.TrimRight(cfg.HTTP.BaseURL, "/")))
	if err != nil {
		return err
	}
	return writeEmail(stdout, cfg, kind, e)
}

// writeEmail prints a rendered email: the headers the templates and the
// configuration decide, then the text part, then the HTML part.
func writeEmail(w io.Writer, cfg config.Config, kind string, e *templates.Email) error {
	reply := cfg.IMAP.ReplyAddress
	if at := strings.LastIndexByte(reply, '@'); cfg.IMAP.PlusAddressing && templates.TokenKinds[kind] && at > 0 {
		reply = reply[:at] + "+" + templates.SampleToken + reply[at:]
	}
	_, err := fmt.Fprintf(w, "From: %s\nReply-To: %s\nSubject: %s\nAuto-Submitted: auto-generated\nX-Contactd-Kind: %s\n\n"+
		"--- text/plain; charset=utf-8 ---\n%s\n--- text/html; charset=utf-8 ---\n%s",
		cfg.SMTP.From, reply, e.Subject, kind, e.Text, e.HTML)
	return err
}
