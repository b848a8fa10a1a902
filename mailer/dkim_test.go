package mailer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/redistest"
	"contactd/templates"
	"contactd/workflow"

	"github.com/emersion/go-msgauth/dkim"
	gomail "github.com/wneessen/go-mail"
)

// dkimKey is a signing key written where smtp.dkim.private_key_file can
// name it, and the TXT record publishing its public half.
type dkimKey struct {
	file   string
	record string
}

// newDKIMKey generates a key of algo ("rsa" or "ed25519").
func newDKIMKey(t *testing.T, algo string) dkimKey {
	t.Helper()
	var priv crypto.Signer
	var pubDER []byte
	switch algo {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv, pubDER = k, x509.MarshalPKCS1PublicKey(&k.PublicKey)
	case "ed25519":
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pubDER = k, pub
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return dkimKey{file: file, record: "v=DKIM1; k=" + algo + "; p=" + base64.StdEncoding.EncodeToString(pubDER)}
}

// verify checks the DKIM signature of raw against the key published for
// selector mail2026 of example.com, and returns the header fields it
// covers, lower case.
func (k dkimKey) verify(raw []byte) (map[string]bool, error) {
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "mail2026._domainkey.example.com" {
				return nil, errors.New("no such record: " + domain)
			}
			return []string{k.record}, nil
		}})
	switch {
	case err != nil:
		return nil, err
	case len(vs) != 1:
		return nil, fmt.Errorf("%d signatures, want 1", len(vs))
	case vs[0].Err != nil:
		return nil, vs[0].Err
	case vs[0].Domain != "example.com":
		return nil, fmt.Errorf("signed by %s, want example.com", vs[0].Domain)
	}
	signed := map[string]bool{}
	for _, h := range vs[0].HeaderKeys {
		signed[strings.ToLower(h)] = true
	}
	return signed, nil
}

// config is the smtp.dkim section signing with k.
func (k dkimKey) config() config.DKIM {
	return config.DKIM{Domain: "example.com", Selector: "mail2026", PrivateKeyFile: k.file}
}

// signingSender returns a sender signing with k and the header list.
func signingSender(t *testing.T, m *Mailer, k dkimKey, headers []string) *sender {
	t.Helper()
	signer, err := loadDKIM(k.config())
	if err != nil {
		t.Fatal(err)
	}
	snd := newSender(m.cfg.SMTP, 5*time.Second, signer, nil)
	snd.sign = signOptions(signer, headers)
	t.Cleanup(snd.close)
	return snd
}

// mustSign are the header fields every signature covers (SPEC 3's
// headers, the threading and the token-carrying Reply-To).
var mustSign = []string{"from", "to", "subject", "date", "message-id", "reply-to", "auto-submitted",
	"in-reply-to", "references", "content-type", "mime-version", "x-contactd-request", "x-contactd-kind"}

// Every email leaves signed, with an RSA or an Ed25519 key, and the
// signature verifies as received and covers the headers that matter.
func TestDKIMSignature(t *testing.T) {
	for _, algo := range []string{"rsa", "ed25519"} {
		t.Run(algo, func(t *testing.T) {
			key := newDKIMKey(t, algo)
			s := newStore(t, redistest.Mini(t))
			srv := startSink(t, "")
			ctx := context.Background()
			if _, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
				Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API); err != nil {
				t.Fatal(err)
			}
			if err := s.Enqueue(ctx, workflow.Message{Kinds: []workflow.Kind{"not_understood"}, To: "x@example.net",
				Reason: "no_token", InReplyTo: "<question.1@client.example>"}); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(srv.port())
			cfg.SMTP.DKIM = key.config()
			start(t, newMailer(t, s, cfg, 1))
			waitDrained(t, s, 10*time.Second)
			if got := len(srv.received()); got != 3 {
				t.Fatalf("received %d emails, want 2 validations and 1 not_understood", got)
			}
			for _, raw := range srv.received() {
				kind := headerValue(raw, "X-Contactd-Kind")
				signed, err := key.verify(raw)
				if err != nil {
					t.Fatalf("%s email: DKIM verification: %v\n%s", kind, err, raw)
				}
				for _, h := range mustSign {
					if !signed[h] {
						t.Errorf("%s email: %s is not signed (signed: %v)", kind, h, signed)
					}
				}
			}
		})
	}
}

// The signature breaks when what a reader sees is changed on the way,
// including by a second From or To added above the signed one.
func TestDKIMSignatureDetectsChanges(t *testing.T) {
	key := newDKIMKey(t, "ed25519")
	m, _, srv, _ := mailerAndSink(t)
	snd := signingSender(t, m, key, signedHeaders)
	if err := sendTo(m, snd, "Zed", "zed@example.net"); err != nil {
		t.Fatal(err)
	}
	raw := srv.received()[0]
	if _, err := key.verify(raw); err != nil {
		t.Fatalf("the email as sent does not verify: %v", err)
	}
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for name, changed := range map[string][]byte{
		"To changed":     bytes.Replace(raw, []byte("zed@example.net"), []byte("eve@example.org"), 1),
		"body changed":   append(append(head, "\r\n\r\n"...), bytes.Replace(body, []byte("Thank you"), []byte("Thank them"), 1)...),
		"From added":     append([]byte("From: Bank <bank@example.org>\r\n"), raw...),
		"To added":       append([]byte("To: eve@example.org\r\n"), raw...),
		"Subject added":  append([]byte("Subject: Urgent\r\n"), raw...),
		"Reply-To added": append([]byte("Reply-To: eve@example.org\r\n"), raw...),
	} {
		if bytes.Equal(changed, raw) {
			t.Fatalf("%s: nothing changed", name)
		}
		if _, err := key.verify(changed); err == nil {
			t.Errorf("%s: the signature still verifies", name)
		}
	}
}

// A signed header list far past one line still gives a signature that
// verifies (go-mail 0.8.1 folded h= inside a name there).
func TestDKIMLongHeaderList(t *testing.T) {
	for _, algo := range []string{"rsa", "ed25519"} {
		t.Run(algo, func(t *testing.T) {
			key := newDKIMKey(t, algo)
			m, _, srv, _ := mailerAndSink(t)
			headers := append([]string(nil), signedHeaders...)
			var extra []string
			for i := range 20 {
				extra = append(extra, fmt.Sprintf("X-Contactd-Extra-Header-%02d", i))
			}
			headers = append(headers, extra...)
			snd := signingSender(t, m, key, headers)
			msg, _, err := m.buildMsg(&letter{to: "zed@example.net", toName: "Zed", request: "r1"},
				testEntry("recorded", "r1"),
				&templates.Email{Subject: "Recorded", Text: "Thank you.", HTML: "<p>Thank you.</p>"})
			if err != nil {
				t.Fatal(err)
			}
			for i, h := range extra {
				msg.SetGenHeader(gomail.Header(h), strings.Repeat("v", i))
			}
			if err := snd.sendMsg(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			raw := srv.received()[0]
			signed, err := key.verify(raw)
			if err != nil {
				t.Fatalf("DKIM verification: %v\n%s", err, raw)
			}
			for _, h := range append(mustSign, extra...) {
				if !signed[strings.ToLower(h)] {
					t.Errorf("%s is not signed", h)
				}
			}
			h := hTagRe.FindStringSubmatch(headerValue(raw, "DKIM-Signature"))
			if h == nil || len(h[1]) < 4*76 {
				t.Errorf("h= tag %q: want a list of at least four lines", h)
			}
		})
	}
}

var hTagRe = regexp.MustCompile(`(?:^|;)\s*h=([^;]*)`)

// A key that cannot sign stops the mailer at start, naming the key.
func TestLoadDKIMErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	for name, file := range map[string]string{
		"missing file": filepath.Join(dir, "absent.pem"),
		"not PEM":      write("text.pem", []byte("not a key")),
		"ECDSA key":    write("ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadDKIM(config.DKIM{Domain: "example.com", Selector: "s", PrivateKeyFile: file})
			if err == nil || !strings.Contains(err.Error(), "smtp.dkim") {
				t.Errorf("loadDKIM = %v, want an error naming smtp.dkim", err)
			}
		})
	}
}
