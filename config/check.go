package config

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"
)

// CronParser reads schedule.sweep: the five-field cron syntax and the
// descriptors (@every 30s, @hourly). The scheduler uses it too, so a spec
// the check accepts is one the daemon runs.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// checkAsServeDoes checks what the daemon would otherwise only find at
// start: the cron spec, the addresses and URLs as the components parse
// them, and the key and certificate files they read.
func (c Config) checkAsServeDoes(bad func(key, msg string)) {
	if _, err := CronParser.Parse(c.Schedule.Sweep); err != nil {
		bad("schedule.sweep", fmt.Sprintf("must be a cron spec such as \"@every 30s\" or \"*/5 * * * *\": %v", err))
	}
	if _, err := mail.ParseAddress(c.SMTP.From); err != nil && validAddress(c.SMTP.From) {
		bad("smtp.from", fmt.Sprintf("is not an address the mailer can use: %v", err))
	}
	if err := checkListen(c.HTTP.Listen); err != nil && c.HTTP.Listen != "" {
		bad("http.listen", err.Error())
	}
	if u, err := url.Parse(c.HTTP.BaseURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		bad("http.base_url", "must name a host, such as https://contacts.example.com")
	}
	if d := c.SMTP.DKIM; d.Domain != "" && d.PrivateKeyFile != "" {
		if _, err := readPrivateKey(d.PrivateKeyFile); err != nil {
			bad("smtp.dkim.private_key_file", err.Error())
		}
	}
	for key, host := range map[string]string{"smtp.host": c.SMTP.Host, "imap.host": c.IMAP.Host} {
		if host != "" && !validHost(host) {
			bad(key, fmt.Sprintf("%q is not a host name or an IP address", host))
		}
	}
	if c.Events.WebhookSecret != "" {
		if b64, ok := strings.CutPrefix(c.Events.WebhookSecret, "whsec_"); ok {
			if _, err := base64.StdEncoding.DecodeString(b64); err != nil {
				bad("events.webhook_secret", "what follows whsec_ must be base64 (the signing key)")
			}
		}
	}
	c.Redis.check(bad)
}

// hostname is a DNS name: labels of letters, digits, hyphens (and, as
// container and internal names have them, underscores), dot-separated.
var hostname = regexp.MustCompile(`^(?i)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$`)

// validHost accepts a host name or an IP address.
func validHost(h string) bool {
	return net.ParseIP(h) != nil || (len(h) <= 253 && hostname.MatchString(h))
}

// checkHostPort accepts host:port, the host a name or an IP address and
// the port a number 1-65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q must be host:port, such as 127.0.0.1:6379", addr)
	}
	if !validHost(host) {
		return fmt.Errorf("%q: %q is not a host name or an IP address", addr, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: the port %q must be a number 1-65535", addr, port)
	}
	return nil
}

// checkListen accepts host:port with a numeric port (the host may be empty).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port, such as 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q must be a number 0-65535", port)
	}
	return nil
}

// readPrivateKey reads a PEM private key as the DKIM signer does (PKCS#1
// or PKCS#8, RSA or Ed25519).
func readPrivateKey(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", path)
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%s: not a PKCS#1 or PKCS#8 private key", path)
}

// minDKIMBits is the RSA key size RFC 8301 asks signers for; shorter keys
// are refused or treated as unsigned by some receivers.
const minDKIMBits = 2048

// check validates the addresses, the Sentinel and the TLS keys of the
// redis section.
func (r Redis) check(bad func(key, msg string)) {
	if !r.Embedded {
		if r.Addr != "" && len(r.Addrs) == 0 {
			if err := checkHostPort(r.Addr); err != nil {
				bad("redis.addr", err.Error())
			}
		}
		for i, a := range r.Addrs {
			if err := checkHostPort(a); err != nil {
				bad(fmt.Sprintf("redis.addrs[%d]", i), err.Error())
			}
		}
	}
	if (r.SentinelUsername != "" || r.SentinelPassword != "") && r.MasterName == "" {
		bad("redis.sentinel_username", "sentinel_username and sentinel_password need redis.master_name (Sentinel)")
	}
	files := r.TLSCAFile != "" || r.TLSCertFile != "" || r.TLSKeyFile != "" || r.TLSServerName != ""
	if files && !r.TLS {
		bad("redis.tls", "must be true when redis.tls_ca_file, tls_cert_file, tls_key_file or tls_server_name is set")
		return
	}
	if (r.TLSCertFile == "") != (r.TLSKeyFile == "") {
		bad("redis.tls_cert_file", "tls_cert_file and tls_key_file must be set together")
		return
	}
	if _, err := r.TLSConfig(); err != nil {
		var ke keyError
		if errors.As(err, &ke) {
			bad(ke.key, ke.err.Error())
			return
		}
		bad("redis.tls", err.Error())
	}
}

// keyError is a fault of one configuration key.
type keyError struct {
	key string
	err error
}

func (e keyError) Error() string { return e.key + ": " + e.err.Error() }
func (e keyError) Unwrap() error { return e.err }

// TLSConfig returns the TLS settings of the connection to Redis, or nil
// when redis.tls is false: TLS 1.2 or later, the CA file's authorities
// (else the system's), the client certificate, and the server name.
func (r Redis) TLSConfig() (*tls.Config, error) {
	if !r.TLS {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.TLSServerName}
	if r.TLSCAFile != "" {
		pem, err := os.ReadFile(r.TLSCAFile)
		if err != nil {
			return nil, keyError{"redis.tls_ca_file", err}
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, keyError{"redis.tls_ca_file", fmt.Errorf("%s holds no PEM certificate", r.TLSCAFile)}
		}
	}
	if r.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(r.TLSCertFile, r.TLSKeyFile)
		if err != nil {
			return nil, keyError{"redis.tls_cert_file", err}
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// Warnings lists choices that work but are risky, each with its key: the
// daemon starts with them, and `config check` prints them without failing.
func (c Config) Warnings() []string {
	var w []string
	if len(c.HTTP.APITokens) == 0 {
		w = append(w, "http.api_tokens: empty: every API call will be refused with 401")
	}
	if u, err := url.Parse(c.HTTP.BaseURL); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		w = append(w, fmt.Sprintf("http.base_url: %s is plain http on a host that is not loopback: validation links and tokens cross the network unencrypted", c.HTTP.BaseURL))
	}
	if ra, ttl := c.Workflow.RemindAfter.D(), c.Workflow.RequestTTL.D(); ra > 0 && ra >= ttl {
		w = append(w, fmt.Sprintf("workflow.remind_after: %v is not less than workflow.request_ttl %v: no reminder is ever sent", ra, ttl))
	}
	if c.Redis.Embedded {
		w = append(w, "redis.embedded: true: requests and queued email live in this process and are lost when it stops")
	}
	if d := c.SMTP.DKIM; d.Domain != "" && d.PrivateKeyFile != "" {
		if k, err := readPrivateKey(d.PrivateKeyFile); err == nil {
			if rk, ok := k.(*rsa.PrivateKey); ok && rk.N.BitLen() < minDKIMBits {
				w = append(w, fmt.Sprintf("smtp.dkim.private_key_file: the RSA key has %d bits: receivers may ignore or refuse a signature under %d bits (RFC 8301); make a key of %d bits or more", rk.N.BitLen(), minDKIMBits, minDKIMBits))
			}
		}
	}
	for _, m := range []struct {
		section, host, tls, username string
	}{{"smtp", c.SMTP.Host, c.SMTP.TLS, c.SMTP.Username}, {"imap", c.IMAP.Host, c.IMAP.TLS, c.IMAP.Username}} {
		if m.tls == "none" && m.username != "" && !isLoopback(m.host) {
			w = append(w, fmt.Sprintf("%s.tls: none: the login to %s crosses the network unencrypted", m.section, m.host))
		}
	}
	return w
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
