package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"contactd/config"
)

func TestWarnings(t *testing.T) {
	const token = "http: {api_tokens: [0123456789abcdef]}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"none", token, nil},
		{"no api token", "log: {level: info}\n",
			[]string{"http.api_tokens: empty: every API call will be refused with 401"}},
		{"plain http off loopback", "http: {api_tokens: [0123456789abcdef], base_url: 'http://contacts.example.com'}\n",
			[]string{"http.base_url: http://contacts.example.com is plain http on a host that is not loopback: validation links and tokens cross the network unencrypted"}},
		{"plain http on localhost", "http: {api_tokens: [0123456789abcdef], base_url: 'http://localhost:8080'}\n", nil},
		{"plain http on ::1", "http: {api_tokens: [0123456789abcdef], base_url: 'http://[::1]:8080'}\n", nil},
		{"https anywhere", "http: {api_tokens: [0123456789abcdef], base_url: 'https://contacts.example.com'}\n", nil},
		{"reminder after expiry", token + "workflow: {remind_after: 72h, request_ttl: 72h}\n",
			[]string{"workflow.remind_after: 72h0m0s is not less than workflow.request_ttl 72h0m0s: no reminder is ever sent"}},
		{"embedded redis", token + "redis: {embedded: true}\n",
			[]string{"redis.embedded: true: requests and queued email live in this process and are lost when it stops"}},
		{"clear-text login to a remote server", token + "smtp: {host: mail.example.com, tls: none, username: u}\nimap: {host: mail.example.com, tls: none, username: u}\n",
			[]string{"smtp.tls: none: the login to mail.example.com crosses the network unencrypted",
				"imap.tls: none: the login to mail.example.com crosses the network unencrypted"}},
		{"clear text on loopback or without login", token + "smtp: {host: 127.0.0.1, tls: none, username: u}\nimap: {host: mail.example.com, tls: none}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cfg.Warnings()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	_, err := config.Parse([]byte("smtp: {password: '${CONTACTD_TEST_UNSET_VAR}', port: '${CONTACTD_TEST_UNSET_VAR}'}\n" +
		"schedule: {sweep: every 30s}\nlog: {level: loud}\n"))
	probs, ok := err.(config.Problems)
	if !ok {
		t.Fatalf("got %v, want config.Problems", err)
	}
	want := config.Problems{
		"smtp.password: ${CONTACTD_TEST_UNSET_VAR} is not set (line 1)",
		"smtp.port: ${CONTACTD_TEST_UNSET_VAR} is not set (line 1)",
		"log.level: must be debug, info, warn or error",
		`schedule.sweep: must be a cron spec such as "@every 30s" or "*/5 * * * *": expected exactly 5 fields, found 2: [every 30s]`,
	}
	if diff := cmp.Diff(want, probs); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestCronSpecsTheSchedulerRuns(t *testing.T) {
	for _, spec := range []string{"@every 30s", "@hourly", "*/5 * * * *", "0 3 * * MON-FRI"} {
		if _, err := config.Parse([]byte("schedule: {sweep: '" + spec + "'}\n")); err != nil {
			t.Errorf("%q refused: %v", spec, err)
		}
	}
}

// writePEM writes blocks of one type to a file in dir and returns its path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// selfSigned writes a self-signed certificate and its key, PEM-encoded.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redis.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, DNSNames: []string{"redis.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, "cert.pem", "CERTIFICATE", der), writePEM(t, dir, "key.pem", "PRIVATE KEY", kder)
}

func TestRedisTLSConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	cfg, err := config.Parse([]byte("redis: {tls: true, tls_ca_file: " + cert + ", tls_cert_file: " + cert +
		", tls_key_file: " + key + ", tls_server_name: redis.test, sentinel_username: s, sentinel_password: p, " +
		"master_name: mymaster, addrs: ['10.0.0.1:26379']}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := cfg.Redis.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tc.ServerName, "redis.test"; got != want {
		t.Errorf("ServerName = %q, want %q", got, want)
	}
	if len(tc.Certificates) != 1 || tc.RootCAs == nil {
		t.Errorf("client certificates %d, RootCAs %v: want the files' certificate and CA", len(tc.Certificates), tc.RootCAs)
	}
	if cfg.Redis.SentinelUsername != "s" || cfg.Redis.SentinelPassword != "p" {
		t.Errorf("sentinel credentials not read: %+v", cfg.Redis)
	}

	notPEM := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse([]byte("redis: {tls: true, tls_ca_file: " + notPEM + "}\n"))
	if diff := cmp.Diff(config.Problems{"redis.tls_ca_file: " + notPEM + " holds no PEM certificate"}, err); diff != "" {
		t.Errorf("junk CA file (-want +got):\n%s", diff)
	}
	_, err = config.Parse([]byte("redis: {tls: true, tls_cert_file: " + cert + ", tls_key_file: " + notPEM + "}\n"))
	if err == nil {
		t.Error("a junk key file was accepted")
	}
}

func TestDKIMKeyIsRead(t *testing.T) {
	dir := t.TempDir()
	_, key := selfSigned(t, dir)
	yaml := "smtp: {dkim: {domain: example.com, selector: s1, private_key_file: " + key + "}}\n"
	if _, err := config.Parse([]byte(yaml)); err != nil {
		t.Fatalf("a PKCS#8 key was refused: %v", err)
	}
	cert := filepath.Join(dir, "cert.pem")
	_, err := config.Parse([]byte("smtp: {dkim: {domain: example.com, selector: s1, private_key_file: " + cert + "}}\n"))
	if diff := cmp.Diff(config.Problems{"smtp.dkim.private_key_file: " + cert + ": not a PKCS#1 or PKCS#8 private key"}, err); diff != "" {
		t.Errorf("a certificate as key (-want +got):\n%s", diff)
	}
}

// An RSA DKIM key under 2048 bits works, with a warning naming its size.
func TestShortDKIMKeyWarns(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		bits int
		warn bool
	}{{1024, true}, {2048, false}} {
		key, err := rsa.GenerateKey(rand.Reader, tt.bits)
		if err != nil {
			t.Fatal(err)
		}
		path := writePEM(t, dir, fmt.Sprintf("rsa%d.pem", tt.bits), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
		cfg, err := config.Parse([]byte("http: {api_tokens: [0123456789abcdef]}\nsmtp: {dkim: {domain: example.com, selector: s1, private_key_file: " + path + "}}\n"))
		if err != nil {
			t.Fatalf("a %d-bit key was refused: %v", tt.bits, err)
		}
		want := []string(nil)
		if tt.warn {
			want = []string{"smtp.dkim.private_key_file: the RSA key has 1024 bits: receivers may ignore or refuse a signature under 2048 bits (RFC 8301); make a key of 2048 bits or more"}
		}
		if diff := cmp.Diff(want, cfg.Warnings()); diff != "" {
			t.Errorf("%d-bit key: warnings (-want +got):\n%s", tt.bits, diff)
		}
	}
}

func TestVariablesFromSystemdCredentials(t *testing.T) {
	dir := t.TempDir()
	for name, v := range map[string]string{"SMTP_PASSWORD": "from-credential\n", "contactd_IMAP_PASSWORD": "from-directory"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	t.Setenv("CONTACTD_TEST_FROM_ENV", "from-env")
	cfg, err := config.Parse([]byte("smtp: {password: '${SMTP_PASSWORD}', username: '${CONTACTD_TEST_FROM_ENV}'}\n" +
		"imap: {password: '${IMAP_PASSWORD}'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.SMTP.Password, cfg.IMAP.Password, cfg.SMTP.Username}
	if diff := cmp.Diff([]string{"from-credential", "from-directory", "from-env"}, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	_, err = config.Parse([]byte("smtp: {password: '${CONTACTD_TEST_UNSET_VAR}'}\n"))
	if diff := cmp.Diff(config.Problems{"smtp.password: ${CONTACTD_TEST_UNSET_VAR} is not set (line 1)"}, err); diff != "" {
		t.Errorf("neither set (-want +got):\n%s", diff)
	}
}
