package config_test

import (
	"strings"
	"testing"

	"contactd/config"
)

func TestBrandingAndTimezone(t *testing.T) {
	cfg, err := config.Parse([]byte(`
branding: {name: Example Hosting, support_url: "https://help.example.com/contacts"}
workflow: {timezone: Europe/Paris}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Branding.Name != "Example Hosting" || cfg.Branding.SupportURL != "https://help.example.com/contacts" {
		t.Errorf("branding not read: %+v", cfg.Branding)
	}
	if got := cfg.Workflow.Location().String(); got != "Europe/Paris" {
		t.Errorf("location = %s, want Europe/Paris", got)
	}
	if got, want := cfg.SMTP.From, "Contacts <contacts@example.com>"; got != want {
		t.Errorf("smtp.from with its own name = %q, want %q kept", got, want)
	}
	bare, err := config.Parse([]byte("branding: {name: Example Hosting}\nsmtp: {from: contacts@example.com}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bare.SMTP.From, `"Example Hosting" <contacts@example.com>`; got != want {
		t.Errorf("bare smtp.from with branding.name = %q, want %q", got, want)
	}
	def, err := config.Parse([]byte("log: {level: info}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := def.Workflow.Location().String(); got != "UTC" {
		t.Errorf("default location = %s, want UTC", got)
	}

	for _, c := range []struct{ yaml, key string }{
		{"workflow: {timezone: Mars/Olympus}", "workflow.timezone"},
		{"branding: {support_url: help.example.com}", "branding.support_url"},
		{"branding: {support_url: 'javascript:alert(1)'}", "branding.support_url"},
		{`branding: {name: "Evil <x@evil.example>"}`, "branding.name"},
	} {
		_, err := config.Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: err = %v, want one naming %s", c.yaml, err, c.key)
		}
	}
}
