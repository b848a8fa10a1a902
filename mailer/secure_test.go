package mailer

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/emersion/go-sasl"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, pool
}

func sendOne(t *testing.T, s *workflow.Store) {
	t.Helper()
	if err := s.Enqueue(context.Background(), workflow.Message{Kinds: []workflow.Kind{"not_understood"}, To: "x@example.net", Reason: "no_token"}); err != nil {
		t.Fatal(err)
	}
}

func TestSTARTTLSWithPassword(t *testing.T) {
	s := newStore(t, redistest.Mini(t))
	cert, pool := selfSigned(t)
	srv := startSink(t, "")
	srv.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.srv.AllowInsecureAuth = false
	srv.authServers = map[string]func(*sink) sasl.Server{"PLAIN": func(k *sink) sasl.Server {
		return sasl.NewPlainServer(func(_, user, pass string) error {
			if user != "mailer" || pass != "pw-secret" {
				return errors.New("bad credentials")
			}
			k.logins.Add(1)
			return nil
		})
	}}
	cfg := testConfig(srv.port())
	cfg.SMTP.TLS, cfg.SMTP.Username, cfg.SMTP.Password = "starttls", "mailer", "pw-secret"
	sendOne(t, s)
	start(t, newMailer(t, s, cfg, 1, func(p *Params) { p.TLSConfig = &tls.Config{RootCAs: pool} }))
	waitDrained(t, s, 10*time.Second)
	if got := len(srv.received()); got != 1 || srv.logins.Load() != 1 {
		t.Errorf("received %d emails after %d logins, want 1 and 1", got, srv.logins.Load())
	}
}

// xoauth2Server checks the XOAUTH2 initial response.
type xoauth2Server struct {
	k    *sink
	want string
}

func (x xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if string(resp) != x.want {
		return nil, true, errors.New("token refused")
	}
	x.k.logins.Add(1)
	return nil, true, nil
}

func TestImplicitTLSWithXOAUTH2(t *testing.T) {
	s := newStore(t, redistest.Mini(t))
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := startSinkOn(t, ln)
	srv.authServers = map[string]func(*sink) sasl.Server{"XOAUTH2": func(k *sink) sasl.Server {
		return xoauth2Server{k: k, want: "user=mailer@example.com\x01auth=Bearer tok-123\x01\x01"}
	}}
	cfg := testConfig(srv.port())
	cfg.SMTP.TLS, cfg.SMTP.Auth, cfg.SMTP.Username = "tls", "xoauth2", "mailer@example.com"
	cfg.SMTP.OAuth2TokenCommand = "echo '  tok-123'"
	sendOne(t, s)
	start(t, newMailer(t, s, cfg, 1, func(p *Params) { p.TLSConfig = &tls.Config{RootCAs: pool} }))
	waitDrained(t, s, 10*time.Second)
	if got := len(srv.received()); got != 1 || srv.logins.Load() != 1 {
		t.Errorf("received %d emails after %d logins, want 1 and 1", got, srv.logins.Load())
	}
}

// A refused login is the configuration's fault, not the email's: the
// entry waits, it does not die.
func TestRefusedLoginKeepsEmailsWaiting(t *testing.T) {
	s := newStore(t, redistest.Mini(t))
	cert, pool := selfSigned(t)
	srv := startSink(t, "")
	srv.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	var refused atomic.Int32
	srv.authServers = map[string]func(*sink) sasl.Server{"PLAIN": func(k *sink) sasl.Server {
		return sasl.NewPlainServer(func(_, _, _ string) error {
			refused.Add(1)
			return errors.New("bad credentials")
		})
	}}
	cfg := testConfig(srv.port())
	cfg.SMTP.TLS, cfg.SMTP.Username, cfg.SMTP.Password = "starttls", "mailer", "wrong"
	cfg.SMTP.MaxAttempts = 1
	sendOne(t, s)
	m := newMailer(t, s, cfg, 1, func(p *Params) { p.TLSConfig = &tls.Config{RootCAs: pool} })
	stop := start(t, m)
	// Three refused logins: more than the entry's one attempt, had each
	// refusal counted against it.
	waitUntil(t, 10*time.Second, "three refused logins", func() bool { return refused.Load() >= 3 })
	stop()
	if n, _ := m.DeadCount(context.Background()); n != 0 {
		t.Errorf("%d entries dead after refused logins, want 0", n)
	}
	if n := pending(t, s); n != 1 {
		t.Errorf("%d entries waiting, want 1", n)
	}
	if got := len(srv.received()); got != 0 {
		t.Errorf("received %d emails without a login", got)
	}
}
