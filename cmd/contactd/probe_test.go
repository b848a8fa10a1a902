package main

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"contactd/internal/redistest"
)

const (
	probeSMTPPassword = "smtp-secret-4711"
	probeIMAPPassword = "imap-secret-0815"
)

// probeSMTP is an SMTP server that takes one login: mailer and
// probeSMTPPassword, with CRAM-MD5 (the one mechanism go-mail uses on a
// connection without TLS).
type probeSMTP struct{}

func (probeSMTP) AuthMechanisms() []string         { return []string{"CRAM-MD5"} }
func (probeSMTP) Auth(string) (sasl.Server, error) { return &cramMD5{}, nil }

// cramMD5 is the server side of CRAM-MD5 (RFC 2195).
type cramMD5 struct{ challenge []byte }

func (c *cramMD5) Next(response []byte) ([]byte, bool, error) {
	if c.challenge == nil {
		c.challenge = []byte("<4711.0815@probe.test>")
		return c.challenge, false, nil
	}
	mac := hmac.New(md5.New, []byte(probeSMTPPassword))
	mac.Write(c.challenge)
	if string(response) != "mailer "+hex.EncodeToString(mac.Sum(nil)) {
		return nil, true, errors.New("invalid credentials")
	}
	return nil, true, nil
}

func (probeSMTP) Mail(string, *smtp.MailOptions) error { return errors.New("not here") }
func (probeSMTP) Rcpt(string, *smtp.RcptOptions) error { return errors.New("not here") }
func (probeSMTP) Data(io.Reader) error                 { return errors.New("not here") }
func (probeSMTP) Reset()                               {}
func (probeSMTP) Logout() error                        { return nil }

// startProbeSMTP serves probeSMTP on a loopback port and returns it.
func startProbeSMTP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return probeSMTP{}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "probe.test", true
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// startProbeIMAP serves an in-memory mailbox of reader and
// probeIMAPPassword on a loopback port and returns it.
func startProbeIMAP(t *testing.T) string {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("reader", probeIMAPPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		InsecureAuth: true,
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// probeConfig is a configuration of the three servers, with the
// passwords given.
func probeConfig(t *testing.T, redisAddr, smtpAddr, imapAddr, smtpPassword, imapPassword string) string {
	t.Helper()
	sh, sp, _ := net.SplitHostPort(smtpAddr)
	ih, ip, _ := net.SplitHostPort(imapAddr)
	return writeConfig(t, fmt.Sprintf(`redis: {addr: "%s"}
smtp: {host: %s, port: %s, tls: none, username: mailer, password: %s}
imap: {host: %s, port: %s, tls: none, username: reader, password: %s}
http: {api_tokens: [probe-api-token-0123456789abcdef]}
`, redisAddr, sh, sp, smtpPassword, ih, ip, imapPassword))
}

// config check --probe logs in to each dependency and says what answered,
// one line each; exit 1 naming each that failed.
func TestConfigCheckProbe(t *testing.T) {
	redisAddr := redistest.Mini(t).Addrs[0]
	smtpAddr, imapAddr := startProbeSMTP(t), startProbeIMAP(t)
	tests := []struct {
		name                                    string
		redis, smtp, smtpPassword, imapPassword string
		wantCode                                int
		wantLines                               []string // the start of each line, redis, smtp, imap
		wantErr                                 string
	}{
		{"all answer", redisAddr, smtpAddr, probeSMTPPassword, probeIMAPPassword, 0, []string{
			"redis " + redisAddr + ": ok (PONG, maxmemory-policy not known (CONFIG GET refused: ",
			"smtp " + smtpAddr + ": ok (logged in as mailer in ",
			"imap " + imapAddr + ": ok (logged in as reader in ",
		}, ""},
		{"smtp port closed", redisAddr, "", probeSMTPPassword, probeIMAPPassword, 1, []string{
			"redis " + redisAddr + ": ok",
			"smtp ", // the closed port, checked below
			"imap " + imapAddr + ": ok",
		}, "error: unavailable: smtp "},
		{"wrong smtp password", redisAddr, smtpAddr, "not-the-password-17", probeIMAPPassword, 1, []string{
			"redis " + redisAddr + ": ok",
			"smtp " + smtpAddr + ": failed after ",
			"imap " + imapAddr + ": ok",
		}, "error: unavailable: smtp " + smtpAddr + ": failed after "},
		{"redis port closed", "", smtpAddr, probeSMTPPassword, probeIMAPPassword, 1, []string{
			"redis ", // the closed port, checked below
			"smtp " + smtpAddr + ": ok",
			"imap " + imapAddr + ": ok",
		}, "error: unavailable: redis "},
		{"wrong imap password", redisAddr, smtpAddr, probeSMTPPassword, "not-the-password-42", 1, []string{
			"redis " + redisAddr + ": ok",
			"smtp " + smtpAddr + ": ok",
			"imap " + imapAddr + ": failed after ",
		}, "error: unavailable: imap " + imapAddr + ": failed after "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			smtpTo := tt.smtp
			if smtpTo == "" {
				smtpTo = closedPort(t)
				tt.wantLines[1] = "smtp " + smtpTo + ": failed after "
			}
			redisTo := tt.redis
			if redisTo == "" {
				redisTo = closedPort(t)
				tt.wantLines[0] = "redis " + redisTo + ": failed after "
			}
			path := probeConfig(t, redisTo, smtpTo, imapAddr, tt.smtpPassword, tt.imapPassword)
			code, out, errs := cli(t, "config", "check", "--probe", "--config", path)
			t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stdout %s, stderr %s", code, tt.wantCode, out, errs)
			}
			lines := probeLines(t, out)
			if len(lines) != len(tt.wantLines) {
				t.Fatalf("probe lines %q, want %d", lines, len(tt.wantLines))
			}
			for i, want := range tt.wantLines {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d = %q, want it to start with %q", i, lines[i], want)
				}
			}
			if tt.wantErr != "" && !strings.Contains(errs, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", errs, tt.wantErr)
			}
			for _, secret := range []string{probeSMTPPassword, probeIMAPPassword, tt.smtpPassword, tt.imapPassword} {
				if strings.Contains(out+errs, secret) {
					t.Errorf("the output shows the password %q:\n%s%s", secret, out, errs)
				}
			}
		})
	}
}

// --probe reads Redis's eviction policy: anything but noeviction fails,
// saying what it would lose.
func TestConfigCheckProbeEvictionPolicy(t *testing.T) {
	smtpAddr, imapAddr := startProbeSMTP(t), startProbeIMAP(t)
	m := miniredis.RunT(t)
	if err := m.Server().Register("CONFIG", func(c *server.Peer, cmd string, args []string) {
		c.WriteLen(2)
		c.WriteBulk("maxmemory-policy")
		c.WriteBulk("allkeys-lru")
	}); err != nil {
		t.Fatal(err)
	}
	path := probeConfig(t, m.Addr(), smtpAddr, imapAddr, probeSMTPPassword, probeIMAPPassword)
	code, out, errs := cli(t, "config", "check", "--probe", "--config", path)
	lines := probeLines(t, out)
	want := "PONG, but maxmemory-policy is allkeys-lru, not noeviction: under memory pressure Redis drops keys, and with them tokens, requests and queued email"
	if code != 1 || len(lines) != 3 || !strings.HasSuffix(lines[0], want) || !strings.Contains(errs, "error: unavailable: redis ") {
		t.Errorf("exit %d, probes %q, stderr %q; want exit 1 and the redis line ending %q", code, lines, errs, want)
	}
}

// Against a real redis-server, whose policy is noeviction by default.
func TestConfigCheckProbeRealRedis(t *testing.T) {
	b := redistest.Real(t)
	path := probeConfig(t, b.Addrs[0], startProbeSMTP(t), startProbeIMAP(t), probeSMTPPassword, probeIMAPPassword)
	code, out, errs := cli(t, "config", "check", "--probe", "--config", path)
	if lines := probeLines(t, out); code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "redis "+b.Addrs[0]+": ok (PONG, maxmemory-policy noeviction in ") {
		t.Errorf("exit %d, probes %q, stderr %q; want exit 0 and noeviction", code, lines, errs)
	}
}

// Without --probe nothing is dialled: a configuration of servers that are
// not there passes.
func TestConfigCheckWithoutProbeDialsNothing(t *testing.T) {
	path := probeConfig(t, closedPort(t), closedPort(t), closedPort(t), probeSMTPPassword, probeIMAPPassword)
	code, out, errs := cli(t, "config", "check", "--config", path)
	if code != 0 || strings.Contains(out, "probes") {
		t.Errorf("exit %d, stdout %s, stderr %s; want exit 0 and no probes", code, out, errs)
	}
}

// probeLines returns the probes of config check's JSON output.
func probeLines(t *testing.T, out string) []string {
	t.Helper()
	var v struct {
		Valid  bool     `json:"valid"`
		Probes []string `json:"probes"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
	if !v.Valid {
		t.Errorf("stdout %q does not say valid", out)
	}
	return v.Probes
}
