package inbox

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool
// trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "imap test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestReaderTLSModes(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, mode := range []string{"tls", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			w := newWorld(t, redistest.Mini(t), 1)
			mem := startMemIMAP(t) // plain listener, to append with
			tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}}
			srv := imapserver.New(&imapserver.Options{
				NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
					return mem.mem.NewSession(), nil, nil
				},
				TLSConfig: tlsConf,
				Logger:    log.New(io.Discard, "", 0),
				Caps:      imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
			})
			var ln net.Listener
			var err error
			if mode == "tls" {
				ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsConf)
			} else {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
			}
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { _ = srv.Close() })

			appendMsg(t, client(t, imapConfig(t, mem.addr)), "INBOX", reply(0, w.tokens[0], "yes", "tls@example.com"))
			cfg := imapConfig(t, ln.Addr().String())
			cfg.IMAP.TLS = mode
			r, err := New(Params{Store: w.store, Config: cfg, Logger: testLogger(t), TLSConfig: &tls.Config{RootCAs: pool}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- r.Run(ctx) }()
			eventually(t, "reply acted on over "+mode, func() bool { return w.request(t, 0).Status == workflow.Applied })
			cancel()
			<-done
		})
	}
}

func TestXOAUTH2(t *testing.T) {
	mech, ir, _ := (&xoauth2{user: "contacts@example.com", token: "tok"}).Start()
	if mech != "XOAUTH2" || !strings.Contains(string(ir), "user=contacts@example.com\x01auth=Bearer tok\x01\x01") {
		t.Errorf("XOAUTH2 start = %q %q", mech, ir)
	}
}
