package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"contactd/workflow"
)

func TestTemplatesRender(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(conf, []byte(`http: {base_url: "https://contacts.example.net"}
branding: {name: Example Hosting, support_url: "https://help.example.net"}
workflow: {timezone: Europe/Paris}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, "templates", "render", "validation", "fr", "--config", conf)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"Subject: Changement de contacts pour example.com\u00a0: votre accord est demandé (code ",
		"Reply-To: <contacts+kabcdefghijklmnopqrstuvwxyz234567@example.com>",
		"Message-Id: <kq7vxkz2mfa3b4c5d.validation.",
		"X-Auto-Response-Suppress: OOF, AutoReply",
		"X-Contactd-Kind: validation",
		"--- text/plain; charset=utf-8 ---\nBonjour David Leroy,",
		"https://contacts.example.net/v/kabcdefghijklmnopqrstuvwxyz234567",
		"kabc-defg-hijk-lmno-pqrs-tuvw-xyz2-34567",
		"lundi 2 mars 2026 à 10:00 CET",
		"Example Hosting, gestion des contacts",
		"--- text/html; charset=utf-8 ---\n<!DOCTYPE html>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// An override directory replaces one file.
	tdir := filepath.Join(dir, "tpl", "en")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "{{define \"subject\"}}Done for {{.Service}}{{end}}All done, {{.Recipient.Greeting}}.\n"
	if err := os.WriteFile(filepath.Join(tdir, "applied.txt"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = cli(t, "templates", "render", "applied", "en", "--templates", filepath.Join(dir, "tpl"))
	if code != 0 || !strings.Contains(out, "Subject: Done for example.com\n") || !strings.Contains(out, "All done, David Leroy.") {
		t.Errorf("with --templates: exit %d %s\n%s", code, errs, out)
	}

	for _, args := range [][]string{
		{"templates", "render", "nope", "en"},
		{"templates", "render", "validation", "xx"},
		{"templates", "render", "not_understood", "en", "--handover"},
		{"templates", "render", "validation"},
		{"templates", "show"},
	} {
		if code, _, errs := cli(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, want 2 with a message", args, code)
		}
	}
	// Every kind renders in every language, and a hand-over's email lists
	// its services.
	for _, kind := range workflow.EmailKinds {
		for _, lang := range workflow.Languages {
			if code, out, errs := cli(t, "templates", "render", string(kind), string(lang)); code != 0 || !strings.Contains(out, "X-Contactd-Kind: "+string(kind)) {
				t.Errorf("render %s %s: exit %d %s", kind, lang, code, errs)
			}
		}
	}
	code, out, errs = cli(t, "templates", "render", "validation", "pl", "--handover")
	for _, want := range []string{"Subject: Zmiana kontaktów dla 28 usług: prosimy o akceptację", "shop-20.example", "i jeszcze 8 usług",
		"X-Contactd-Request: hq4m2x7c9v"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("render validation pl --handover: exit %d %s, output lacks %q:\n%s", code, errs, want, out)
		}
	}
	if strings.Contains(out, "shop-21.example") {
		t.Errorf("the hand-over email lists more than %d services", 20)
	}
	if code, _, errs := cli(t, "templates", "render", "validation", "en", "--templates", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errs, "missing") {
		t.Errorf("missing template directory: exit %d %q, want 1 naming it", code, errs)
	}
}

// TestEndToEndDecideByTypedCode follows a contact whose link does not
// work: the code read from the email's text, typed in the control panel
// in capitals, is passed on to the API, and the change is applied.
func TestEndToEndDecideByTypedCode(t *testing.T) {
	s := startStack(t, nil)
	r := s.create("example.com", "ab1234-ovh", map[string]string{"tech": "gh3456-ovh"})
	for _, who := range []struct{ addr, nic string }{{david, "gh3456-ovh"}, {alice, "ab1234-ovh"}} {
		e := s.email(who.addr, r.ID, "validation")
		m := regexp.MustCompile(`(?m)^  ([a-z2-7]{4}(?:-[a-z2-7]{4,5})+)\r?$`).FindStringSubmatch(e.Text)
		if m == nil {
			t.Fatalf("no grouped validation code in the email to %s:\n%s", who.addr, e.Text)
		}
		var got workflow.Request
		body := map[string]string{"token": strings.ToUpper(m[1]), "decision": "accept", "nic": who.nic}
		if code := s.api("POST", "/api/v1/decisions", body, &got); code != 200 {
			t.Fatalf("deciding with %s's code = %d", who.nic, code)
		}
		if a := got.Approvals[who.nic]; a.Status != "accepted" || a.Channel != workflow.API {
			t.Errorf("%s's approval = %+v, want accepted via api", who.nic, a)
		}
	}
	s.status(r.ID, workflow.Applied)
	if got := s.service("example.com").Tech; got != "gh3456-ovh" {
		t.Errorf("tech = %s, want gh3456-ovh", got)
	}
}

// --raw prints the bytes the relay would receive: encoded, with CRLF line
// ends, and signed when smtp.dkim is set.
func TestTemplatesRenderRaw(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "dkim.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(conf, []byte("smtp: {from: \"Contacts <contacts@example.com>\", dkim: {domain: example.com, selector: s1, private_key_file: "+
		keyFile+"}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, "templates", "render", "reminder", "en", "--raw", "--config", conf)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"DKIM-Signature: ", "d=example.com", "s=s1", "\r\nContent-Transfer-Encoding: quoted-printable\r\n",
		"X-Contactd-Kind: reminder\r\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("raw output lacks %q:\n%s", want, out)
		}
	}
}
