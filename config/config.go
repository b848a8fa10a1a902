// Package config reads and validates contactd's YAML configuration.
//
// The keys are those of the contract (SPEC section 8). Loading replaces
// ${VAR} with the environment, refuses unknown keys, and reports every
// faulty value at once, each with its dotted key name.
package config

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"contactd/workflow"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	Redis    Redis    `yaml:"redis"`
	SMTP     SMTP     `yaml:"smtp"`
	IMAP     IMAP     `yaml:"imap"`
	Inbox    Inbox    `yaml:"inbox"`
	HTTP     HTTP     `yaml:"http"`
	Workflow Workflow `yaml:"workflow"`
	Branding Branding `yaml:"branding"`
	Events   Events   `yaml:"events"`
	Schedule Schedule `yaml:"schedule"`
	Log      Log      `yaml:"log"`
}

// Redis says where the store lives.
type Redis struct {
	Addr       string   `yaml:"addr"`
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	DB         int      `yaml:"db"`
	TLS        bool     `yaml:"tls"`
	KeyPrefix  string   `yaml:"key_prefix"`
	Embedded   bool     `yaml:"embedded"`
	// SentinelUsername and SentinelPassword log in to the Sentinels,
	// which may have credentials of their own.
	SentinelUsername string `yaml:"sentinel_username"`
	SentinelPassword string `yaml:"sentinel_password"`
	// TLSCAFile, TLSCertFile and TLSKeyFile are PEM files: the authorities
	// trusted for the server's certificate (empty: the system's), and a
	// client certificate with its key. TLSServerName is the name checked
	// in the server's certificate (empty: the host of the address).
	TLSCAFile     string `yaml:"tls_ca_file"`
	TLSCertFile   string `yaml:"tls_cert_file"`
	TLSKeyFile    string `yaml:"tls_key_file"`
	TLSServerName string `yaml:"tls_server_name"`
}

// DKIM signs outgoing mail when Domain is set.
type DKIM struct {
	Domain         string `yaml:"domain"`
	Selector       string `yaml:"selector"`
	PrivateKeyFile string `yaml:"private_key_file"`
}

// SMTP is the outgoing mail server.
type SMTP struct {
	Host               string `yaml:"host"`
	Port               int    `yaml:"port"`
	TLS                string `yaml:"tls"`
	Auth               string `yaml:"auth"`
	Username           string `yaml:"username"`
	Password           string `yaml:"password"`
	OAuth2TokenCommand string `yaml:"oauth2_token_command"`
	From               string `yaml:"from"`
	MaxAttempts        int    `yaml:"max_attempts"`
	// Timeout bounds each SMTP exchange (connecting, each command, the
	// message's transfer); a stop waits for an email being sent at most
	// that long.
	Timeout Duration `yaml:"timeout"`
	DKIM    DKIM     `yaml:"dkim"`
}

// IMAP is the mailbox replies arrive in.
type IMAP struct {
	Host               string   `yaml:"host"`
	Port               int      `yaml:"port"`
	TLS                string   `yaml:"tls"`
	Auth               string   `yaml:"auth"`
	Username           string   `yaml:"username"`
	Password           string   `yaml:"password"`
	OAuth2TokenCommand string   `yaml:"oauth2_token_command"`
	Mailbox            string   `yaml:"mailbox"`
	ProcessedMailbox   string   `yaml:"processed_mailbox"`
	RejectedMailbox    string   `yaml:"rejected_mailbox"`
	IgnoredMailbox     string   `yaml:"ignored_mailbox"`
	PollInterval       Duration `yaml:"poll_interval"`
	IDLE               bool     `yaml:"idle"`
	ReplyAddress       string   `yaml:"reply_address"`
	PlusAddressing     bool     `yaml:"plus_addressing"`
}

// Inbox says how replies are trusted.
type Inbox struct {
	RequireSenderMatch bool   `yaml:"require_sender_match"`
	AuthservID         string `yaml:"authserv_id"`
	MaxMessageBytes    int64  `yaml:"max_message_bytes"`
}

// HTTP is the web server of the validation pages and the API.
type HTTP struct {
	Listen    string   `yaml:"listen"`
	BaseURL   string   `yaml:"base_url"`
	APITokens []string `yaml:"api_tokens"`
}

// Workflow holds the rules' tunables.
type Workflow struct {
	RequestTTL      Duration `yaml:"request_ttl"`
	RemindAfter     Duration `yaml:"remind_after"`
	MaxReminders    int      `yaml:"max_reminders"`
	NICPattern      string   `yaml:"nic_pattern"`
	DefaultLanguage string   `yaml:"default_language"`
	ReportWindow    Duration `yaml:"report_window"`
	SecurityContact string   `yaml:"security_contact"`
	// MaxHandoverServices bounds the services of one hand-over.
	MaxHandoverServices int `yaml:"max_handover_services"`
	// Timezone is the IANA zone dates are written in, in emails and pages
	// (e.g. Europe/Paris); "" or UTC means UTC.
	Timezone string `yaml:"timezone"`
}

// Location is the time zone of Timezone; UTC when it is empty or unknown
// (Validate refuses an unknown one).
func (w Workflow) Location() *time.Location {
	if loc, err := time.LoadLocation(w.Timezone); err == nil && w.Timezone != "" {
		return loc
	}
	return time.UTC
}

// Branding names the provider in emails and pages, so that a contact can
// tell a genuine email from phishing.
type Branding struct {
	// Name is the provider's name (e.g. "Example Hosting"): in the page
	// header, the email signature, and the From display name when
	// smtp.from is a bare address (Parse adds it).
	Name string `yaml:"name"`
	// SupportURL is where a contact can check an email or get help.
	SupportURL string `yaml:"support_url"`
}

// Events says where finished requests are published besides the Redis stream.
type Events struct {
	WebhookURL    string `yaml:"webhook_url"`
	WebhookSecret string `yaml:"webhook_secret"`
}

// Schedule holds the cron specs of background sweeps.
type Schedule struct {
	Sweep string `yaml:"sweep"`
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Duration is a time.Duration written as Go writes it ("336h", "30s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("must be a duration such as 30s or 48h, not %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Default returns the configuration with every default of the contract.
func Default() Config {
	return Config{
		Redis: Redis{Addr: "127.0.0.1:6379", KeyPrefix: "contactd"},
		SMTP: SMTP{Host: "localhost", Port: 587, TLS: "starttls", Auth: "password",
			From: "Contacts <contacts@example.com>", MaxAttempts: 10, Timeout: Duration(30 * time.Second)},
		IMAP: IMAP{Host: "localhost", Port: 993, TLS: "tls", Auth: "password", Mailbox: "INBOX",
			ProcessedMailbox: "Processed", RejectedMailbox: "Rejected", IgnoredMailbox: "Ignored",
			PollInterval: Duration(30 * time.Second), IDLE: true,
			ReplyAddress: "contacts@example.com", PlusAddressing: true},
		Inbox: Inbox{RequireSenderMatch: true, MaxMessageBytes: 1 << 20},
		HTTP:  HTTP{Listen: "127.0.0.1:8080", BaseURL: "http://127.0.0.1:8080"},
		Workflow: Workflow{RequestTTL: Duration(336 * time.Hour), RemindAfter: Duration(48 * time.Hour),
			MaxReminders: 2, NICPattern: `^[a-z]{2}[0-9]+-ovh$`, DefaultLanguage: string(workflow.English),
			ReportWindow: Duration(720 * time.Hour), MaxHandoverServices: 10000},
		Schedule: Schedule{Sweep: "@every 30s"},
		Log:      Log{Level: "info", Format: "text"},
	}
}

// Problems lists every fault found in a configuration, one per key.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

// Load reads the file at path; see Parse.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, Problems{err.Error()}
	}
	return Parse(data)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse decodes the YAML over the defaults, replacing ${VAR} in values
// (not in comments) from the environment, and validates the result. A
// failure is a Problems listing every fault.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, Problems{"config: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if isEmpty(&root) {
		return Config{}, Problems{"config: the file is empty; give at least the keys that differ from the defaults (see config.example.yaml)"}
	}
	var envProbs, probs Problems
	expandEnv(&root, "", &envProbs)
	decodeInto(root.Content[0], reflect.ValueOf(&cfg).Elem(), "", &probs)
	var valProbs Problems
	errors.As(cfg.Validate(), &valProbs) // a key that failed to decode kept its default
	if all := envProbs.merge(probs).merge(valProbs); len(all) > 0 {
		return Config{}, all
	}
	cfg.SMTP.From = brandedFrom(cfg.SMTP.From, cfg.Branding.Name)
	return cfg, nil
}

// brandedFrom gives a bare smtp.from address the display name
// branding.name, so the inbox shows who writes; a from that names itself
// is kept as it is.
func brandedFrom(from, brand string) string {
	from = strings.TrimSpace(from)
	if brand == "" || strings.ContainsAny(from, "<\"") || !validAddress(from) || strings.ContainsAny(brand, "\r\n\"<>") {
		return from
	}
	return (&mail.Address{Name: brand, Address: from}).String()
}

// merge returns p followed by the problems of more whose key p does not
// name already (an unset variable leaves an empty value, which may be
// refused again, and a value that failed to decode is checked again).
func (p Problems) merge(more Problems) Problems {
	keys := map[string]bool{}
	for _, s := range p {
		keys[strings.SplitN(s, ": ", 2)[0]] = true
	}
	for _, s := range more {
		if !keys[strings.SplitN(s, ": ", 2)[0]] {
			p = append(p, s)
		}
	}
	return p
}

// isEmpty tells a document with no keys: nothing but comments, or null.
func isEmpty(root *yaml.Node) bool {
	if len(root.Content) == 0 {
		return true
	}
	n := root.Content[0]
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// expandEnv replaces ${VAR} in every scalar value; path is the dotted key
// of n, named when a variable is not set. A plain scalar is typed again
// after the replacement, so "port: ${SMTP_PORT}" reads as a number.
func expandEnv(n *yaml.Node, path string, probs *Problems) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v, ok := lookupVar(name)
			if !ok {
				*probs = append(*probs, fmt.Sprintf("%s: %s is not set (line %d)", orRoot(path), m, n.Line))
			}
			return v
		})
		if n.Style == 0 {
			n.Tag = ""
		}
	}
	for i, c := range n.Content {
		switch {
		case n.Kind == yaml.MappingNode && i%2 == 0:
			expandEnv(c, path, probs) // a key
		case n.Kind == yaml.MappingNode:
			expandEnv(c, join(path, n.Content[i-1].Value), probs)
		case n.Kind == yaml.SequenceNode:
			expandEnv(c, fmt.Sprintf("%s[%d]", path, i), probs)
		default:
			expandEnv(c, path, probs)
		}
	}
}

// decodeInto walks a YAML mapping beside a struct so that every unknown key
// and every badly typed value is reported with its dotted name.
func decodeInto(n *yaml.Node, v reflect.Value, path string, probs *Problems) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Kind() == reflect.Struct && v.Type() != reflect.TypeOf(Duration(0)) {
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			*probs = append(*probs, fmt.Sprintf("%s: must be a mapping (line %d)", orRoot(path), n.Line))
			return
		}
		fields := map[string]int{}
		for i := 0; i < v.NumField(); i++ {
			fields[strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]] = i
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			name := join(path, key)
			if first, dup := seen[key]; dup {
				*probs = append(*probs, fmt.Sprintf("%s: duplicate key (lines %d and %d)", name, first, n.Content[i].Line))
				continue
			}
			seen[key] = n.Content[i].Line
			idx, ok := fields[key]
			if !ok {
				*probs = append(*probs, fmt.Sprintf("%s: unknown key (line %d)", name, n.Content[i].Line))
				continue
			}
			decodeInto(n.Content[i+1], v.Field(idx), name, probs)
		}
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		*probs = append(*probs, fmt.Sprintf("%s: %s (line %d)", path, msg, n.Line))
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "config"
	}
	return path
}

// Validate checks every value and returns all problems at once, or nil.
func (c Config) Validate() error {
	var p Problems
	bad := func(key, msg string) { p = append(p, key+": "+msg) }

	if c.Redis.KeyPrefix == "" || strings.ContainsAny(c.Redis.KeyPrefix, "{} \t\r\n") {
		bad("redis.key_prefix", "must be non-empty, without braces or spaces")
	}
	if !c.Redis.Embedded && c.Redis.Addr == "" && len(c.Redis.Addrs) == 0 {
		bad("redis.addr", "must be set (or redis.addrs, or redis.embedded: true)")
	}
	if c.Redis.DB < 0 {
		bad("redis.db", "must be 0 or more")
	}
	if c.Redis.MasterName != "" && len(c.Redis.Addrs) == 0 {
		bad("redis.addrs", "must list the Sentinel addresses when redis.master_name is set")
	}
	c.checkMail("smtp", c.SMTP.Host, c.SMTP.Port, c.SMTP.TLS, c.SMTP.Auth, c.SMTP.OAuth2TokenCommand, bad)
	if !validAddress(c.SMTP.From) {
		bad("smtp.from", "must be an email address such as \"Contacts <contacts@example.com>\"")
	}
	if c.SMTP.MaxAttempts < 1 {
		bad("smtp.max_attempts", "must be 1 or more")
	}
	if t := c.SMTP.Timeout.D(); t < time.Second || t > 10*time.Minute {
		bad("smtp.timeout", "must be between 1s and 10m")
	}
	if d := c.SMTP.DKIM; d.Domain != "" || d.Selector != "" || d.PrivateKeyFile != "" {
		if d.Domain == "" || d.Selector == "" || d.PrivateKeyFile == "" {
			bad("smtp.dkim", "domain, selector and private_key_file must be set together")
		}
	}
	c.checkMail("imap", c.IMAP.Host, c.IMAP.Port, c.IMAP.TLS, c.IMAP.Auth, c.IMAP.OAuth2TokenCommand, bad)
	for key, v := range map[string]string{"imap.mailbox": c.IMAP.Mailbox, "imap.processed_mailbox": c.IMAP.ProcessedMailbox,
		"imap.rejected_mailbox": c.IMAP.RejectedMailbox, "imap.ignored_mailbox": c.IMAP.IgnoredMailbox} {
		if strings.TrimSpace(v) == "" {
			bad(key, "must not be empty")
		}
	}
	if c.IMAP.PollInterval.D() < time.Second {
		bad("imap.poll_interval", "must be at least 1s")
	}
	if !validAddress(c.IMAP.ReplyAddress) {
		bad("imap.reply_address", "must be an email address")
	}
	if c.Inbox.MaxMessageBytes < 1024 {
		bad("inbox.max_message_bytes", "must be at least 1024")
	}
	if c.HTTP.Listen == "" {
		bad("http.listen", "must be host:port")
	}
	if !strings.HasPrefix(c.HTTP.BaseURL, "http://") && !strings.HasPrefix(c.HTTP.BaseURL, "https://") {
		bad("http.base_url", "must start with http:// or https://")
	}
	for i, t := range c.HTTP.APITokens {
		if len(t) < 16 {
			bad(fmt.Sprintf("http.api_tokens[%d]", i), "must be at least 16 characters")
		}
	}
	w := c.Workflow
	if w.RequestTTL.D() <= 0 {
		bad("workflow.request_ttl", "must be positive")
	}
	if w.RemindAfter.D() <= 0 {
		bad("workflow.remind_after", "must be positive")
	}
	if w.MaxReminders < 0 {
		bad("workflow.max_reminders", "must be 0 or more")
	}
	if _, err := regexp.Compile(w.NICPattern); err != nil || w.NICPattern == "" {
		bad("workflow.nic_pattern", "must be a valid regular expression")
	}
	if l, ok := workflow.ParseLanguage(w.DefaultLanguage); !ok || string(l) != w.DefaultLanguage {
		bad("workflow.default_language", "must be one of "+workflow.LanguageNames())
	}
	if w.ReportWindow.D() <= 0 {
		bad("workflow.report_window", "must be positive")
	}
	if w.MaxHandoverServices < 1 {
		bad("workflow.max_handover_services", "must be 1 or more")
	}
	if w.SecurityContact != "" && !validAddress(w.SecurityContact) {
		bad("workflow.security_contact", "must be an email address")
	}
	if _, err := time.LoadLocation(w.Timezone); err != nil {
		bad("workflow.timezone", "must be an IANA time zone such as Europe/Paris or UTC")
	}
	if b := c.Branding; strings.ContainsAny(b.Name, "\r\n\"<>") || len(b.Name) > 100 {
		bad("branding.name", "must be one line of at most 100 characters, without quotes or angle brackets")
	}
	if u, err := url.Parse(c.Branding.SupportURL); c.Branding.SupportURL != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
		bad("branding.support_url", "must be an absolute http(s) URL")
	}
	if c.Events.WebhookURL != "" {
		if !strings.HasPrefix(c.Events.WebhookURL, "http://") && !strings.HasPrefix(c.Events.WebhookURL, "https://") {
			bad("events.webhook_url", "must start with http:// or https://")
		}
		if c.Events.WebhookSecret == "" {
			bad("events.webhook_secret", "must be set when events.webhook_url is")
		}
	}
	c.checkAsServeDoes(bad)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "must be text or json")
	}
	if len(p) == 0 {
		return nil
	}
	sort.Strings(p)
	return p
}

func (c Config) checkMail(section, host string, port int, tls, auth, tokenCmd string, bad func(string, string)) {
	if host == "" {
		bad(section+".host", "must not be empty")
	}
	if port < 1 || port > 65535 {
		bad(section+".port", "must be 1-65535")
	}
	if tls != "tls" && tls != "starttls" && tls != "none" {
		bad(section+".tls", "must be tls, starttls or none")
	}
	switch auth {
	case "password":
	case "xoauth2":
		if tokenCmd == "" {
			bad(section+".oauth2_token_command", "must be set when auth is xoauth2")
		}
	default:
		bad(section+".auth", "must be password or xoauth2")
	}
}

var addrRe = regexp.MustCompile(`^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$`)

// validAddress accepts "a@b.c" and "Name <a@b.c>".
func validAddress(s string) bool {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		s = s[i+1 : len(s)-1]
	}
	return addrRe.MatchString(s) && !strings.ContainsAny(s, "\r\n")
}
