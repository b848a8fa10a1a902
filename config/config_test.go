package config_test

import (
	"strings"
	"testing"
	"time"

	"contactd/config"
)

func TestDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte("log: {level: info}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Workflow.RequestTTL.D(), 336*time.Hour; got != want {
		t.Errorf("request_ttl = %v, want %v", got, want)
	}
	if cfg.SMTP.Port != 587 || cfg.IMAP.Port != 993 || cfg.Redis.KeyPrefix != "contactd" || !cfg.Inbox.RequireSenderMatch {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestParse(t *testing.T) {
	t.Setenv("SMTP_PASSWORD", "s3cret")
	cfg, err := config.Parse([]byte(`
redis: {addr: 10.0.0.1:6379, key_prefix: cd}
smtp: {host: mail.example.com, port: 465, tls: tls, username: u, password: "${SMTP_PASSWORD}"}
workflow: {request_ttl: 72h, max_reminders: 0}
imap: {poll_interval: 10s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMTP.Password != "s3cret" || cfg.SMTP.Port != 465 || cfg.Redis.KeyPrefix != "cd" {
		t.Errorf("values not read: %+v %+v", cfg.SMTP, cfg.Redis)
	}
	if cfg.Workflow.RequestTTL.D() != 72*time.Hour || cfg.IMAP.PollInterval.D() != 10*time.Second || cfg.Workflow.MaxReminders != 0 {
		t.Errorf("durations not read: %+v", cfg.Workflow)
	}
	if cfg.Workflow.RemindAfter.D() != 48*time.Hour {
		t.Errorf("a key not given lost its default: %v", cfg.Workflow.RemindAfter.D())
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"port", "smtp: {port: 70000}", "smtp.port: must be 1-65535"},
		{"unknown key", "smtp: {hots: x}", "smtp.hots: unknown key"},
		{"unknown section", "mailer: {}", "mailer: unknown key"},
		{"bad duration", "workflow: {request_ttl: 2 weeks}", "workflow.request_ttl: must be a duration"},
		{"wrong type", "imap: {port: imap}", "imap.port:"},
		{"tls", "imap: {tls: yes}", "imap.tls: must be tls, starttls or none"},
		{"language", "workflow: {default_language: xx}", "workflow.default_language: must be one of en, fr, de, es, it, nl, pl, pt"},
		{"language with a region", "workflow: {default_language: fr-CA}", "workflow.default_language: must be one of"},
		{"pattern", "workflow: {nic_pattern: '(['}", "workflow.nic_pattern:"},
		{"from", "smtp: {from: nobody}", "smtp.from:"},
		{"xoauth2 needs a command", "imap: {auth: xoauth2}", "imap.oauth2_token_command:"},
		{"missing env names the key", "smtp: {password: '${CONTACTD_TEST_UNSET_VAR}'}", "smtp.password: ${CONTACTD_TEST_UNSET_VAR} is not set (line 1)"},
		{"missing env in a list", "http:\n  api_tokens:\n    - ${CONTACTD_TEST_UNSET_VAR}\n", "http.api_tokens[0]: ${CONTACTD_TEST_UNSET_VAR} is not set (line 3)"},
		{"empty file", "", "config: the file is empty"},
		{"only comments", "# nothing set\n\n", "config: the file is empty"},
		{"null document", "---\n~\n", "config: the file is empty"},
		{"duplicate section", "smtp: {port: 25}\nlog: {level: info}\nsmtp: {port: 26}\n", "smtp: duplicate key (lines 1 and 3)"},
		{"duplicate key", "smtp:\n  port: 25\n  port: 26\n", "smtp.port: duplicate key (lines 2 and 3)"},
		{"cron not parsed", "schedule: {sweep: every 30s}", "schedule.sweep: must be a cron spec"},
		{"cron empty", "schedule: {sweep: ''}", "schedule.sweep: must be a cron spec"},
		{"cron six fields", "schedule: {sweep: '0 */5 * * * *'}", "schedule.sweep: must be a cron spec"},
		{"base url without host", "http: {base_url: 'https://'}", "http.base_url: must name a host"},
		{"listen without port", "http: {listen: localhost}", "http.listen: must be host:port"},
		{"listen bad port", "http: {listen: 'localhost:http8080'}", "http.listen: port"},
		{"dkim key missing", "smtp: {dkim: {domain: example.com, selector: s1, private_key_file: /nonexistent/key.pem}}", "smtp.dkim.private_key_file: open /nonexistent/key.pem"},
		{"redis tls files without tls", "redis: {tls_ca_file: /etc/ssl/ca.pem}", "redis.tls: must be true"},
		{"redis ca missing", "redis: {tls: true, tls_ca_file: /nonexistent/ca.pem}", "redis.tls_ca_file: open /nonexistent/ca.pem"},
		{"redis cert without key", "redis: {tls: true, tls_cert_file: /nonexistent/c.pem}", "redis.tls_cert_file: tls_cert_file and tls_key_file must be set together"},
		{"sentinel credentials without sentinel", "redis: {sentinel_password: x}", "redis.sentinel_username: sentinel_username and sentinel_password need redis.master_name"},
		{"short api token", "http: {api_tokens: [abc]}", "http.api_tokens[0]:"},
		{"log", "log: {format: xml}", "log.format:"},
		{"not a mapping", "smtp: 3", "smtp: must be a mapping"},
		{"dkim half set", "smtp: {dkim: {domain: example.com}}", "smtp.dkim:"},
		{"redis port not a number", "redis: {addr: '127.0.0.1:notaport'}", `redis.addr: "127.0.0.1:notaport": the port "notaport" must be a number 1-65535`},
		{"redis addr without port", "redis: {addr: localhost}", `redis.addr: "localhost" must be host:port`},
		{"redis addrs without port", "redis: {addrs: [nohost]}", `redis.addrs[0]: "nohost" must be host:port`},
		{"redis addrs bad host", "redis: {addrs: ['10.0.0.1:6379', 'bad host:6379']}", `redis.addrs[1]: "bad host:6379": "bad host" is not a host name`},
		{"imap host with spaces", "imap: {host: 'bad host name'}", `imap.host: "bad host name" is not a host name or an IP address`},
		{"smtp host with spaces", "smtp: {host: 'bad host name'}", `smtp.host: "bad host name" is not a host name or an IP address`},
		{"whsec secret not base64", "events: {webhook_url: 'https://hooks.example.com/x', webhook_secret: 'whsec_not base64!'}", "events.webhook_secret: what follows whsec_ must be base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// Addresses and hosts of every form the daemon dials are accepted.
func TestHostsAccepted(t *testing.T) {
	for _, yaml := range []string{
		"redis: {addr: 'localhost:6379'}",
		"redis: {addr: '[::1]:6379'}",
		"redis: {addrs: ['10.0.0.1:7000', 'redis-2.internal:7001', 'redis_node_3:7002']}",
		"redis: {embedded: true, addr: ''}",
		"smtp: {host: smtp.example.com.}",
		"imap: {host: '2001:db8::1'}",
		"events: {webhook_url: 'https://hooks.example.com/x', webhook_secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'}",
	} {
		if _, err := config.Parse([]byte(yaml + "\n")); err != nil {
			t.Errorf("%s refused: %v", yaml, err)
		}
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := config.Parse([]byte("smtp: {port: 0, tls: ssl}\nlog: {level: loud}\n"))
	probs, ok := err.(config.Problems)
	if !ok || len(probs) != 3 {
		t.Fatalf("got %v, want three problems", err)
	}
}

func TestExampleFileIsValid(t *testing.T) {
	cfg, err := config.Load("../config.example.yaml")
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if cfg.HTTP.BaseURL == "" {
		t.Error("example has no http.base_url")
	}
}

func TestEnvNumber(t *testing.T) {
	t.Setenv("CONTACTD_TEST_PORT", "2525")
	cfg, err := config.Parse([]byte("# ${NOT_EXPANDED} in a comment\nsmtp:\n  port: ${CONTACTD_TEST_PORT}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMTP.Port != 2525 {
		t.Errorf("port = %d, want 2525", cfg.SMTP.Port)
	}
}
