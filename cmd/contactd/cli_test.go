package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"contactd/internal/redistest"
)

// cli runs one command line in process and returns its exit status and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// configFor writes a config file pointing at the backend.
func configFor(t *testing.T, b redistest.Backend) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	body := "redis: {addr: \"" + b.Addrs[0] + "\", key_prefix: " + b.Prefix + "}\n"
	if b.Name == "redis-cluster" {
		body = "redis: {addrs: [" + strings.Join(b.Addrs, ", ") + "], key_prefix: " + b.Prefix + "}\n"
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLIRequestCommands(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		conf := configFor(t, b)
		code, out, errs := cli(t, "directory", "import", "--config", conf, "../../examples/directory.yaml")
		if code != 0 || !strings.Contains(out, `"services": 6`) {
			t.Fatalf("import: %d %s %s", code, out, errs)
		}
		// A refusal: exit 1 and the code of SPEC section 2.
		code, _, errs = cli(t, "request", "create", "--config", conf, "--service", "example.com", "--requester", "cd5678-ovh", "--billing", "gh3456-ovh")
		if code != 1 || !strings.HasPrefix(errs, "error: role_not_allowed: ") {
			t.Fatalf("tech changing billing: %d %q", code, errs)
		}
		code, _, errs = cli(t, "request", "create", "--config", conf, "--service", "example.com", "--requester", "ab1234-ovh", "--billing", "ij7890-ovh")
		if code != 1 || !strings.HasPrefix(errs, "error: payment_overdue: ") {
			t.Fatalf("billing to an overdue contact: %d %q", code, errs)
		}
		code, out, errs = cli(t, "request", "create", "--config", conf, "--service", "example.com", "--requester", "ab1234-ovh", "--tech", "gh3456-ovh")
		if code != 0 {
			t.Fatalf("create: %d %s", code, errs)
		}
		var r struct {
			ID      string
			Status  string
			Changes map[string]struct{ From, To string }
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("create printed %q: %v", out, err)
		}
		if r.Status != "pending" || r.Changes["tech"].From != "cd5678-ovh" || r.Changes["tech"].To != "gh3456-ovh" {
			t.Errorf("created %+v", r)
		}
		code, _, errs = cli(t, "request", "create", "--config", conf, "--service", "example.com", "--requester", "ab1234-ovh", "--tech", "ef9012-ovh")
		if code != 1 || !strings.Contains(errs, "error: conflict: ") || !strings.Contains(errs, r.ID) {
			t.Fatalf("second request on the same role: %d %q", code, errs)
		}
		code, out, _ = cli(t, "request", "show", r.ID, "--config", conf)
		if code != 0 || !strings.Contains(out, r.ID) {
			t.Fatalf("show: %d %s", code, out)
		}
		code, out, _ = cli(t, "request", "list", "--config", conf, "--nic", "cd5678-ovh", "--status", "pending")
		if code != 0 || !strings.Contains(out, r.ID) {
			t.Fatalf("list: %d %s", code, out)
		}
		code, out, _ = cli(t, "request", "resend", r.ID, "--config", conf, "--nic", "gh3456-ovh")
		if code != 0 || !strings.Contains(out, `"queued": 1`) {
			t.Fatalf("resend: %d %s", code, out)
		}
		code, _, errs = cli(t, "request", "cancel", r.ID, "--config", conf, "--nic", "gh3456-ovh")
		if code != 1 || !strings.HasPrefix(errs, "error: role_not_allowed: ") {
			t.Fatalf("cancel by a non-requester: %d %q", code, errs)
		}
		code, out, _ = cli(t, "request", "cancel", r.ID, "--config", conf, "--nic", "ab1234-ovh")
		if code != 0 || !strings.Contains(out, `"status": "cancelled"`) {
			t.Fatalf("cancel: %d %s", code, out)
		}
		code, _, errs = cli(t, "request", "show", "nosuchrequest", "--config", conf)
		if code != 1 || !strings.HasPrefix(errs, "error: not_found: ") {
			t.Fatalf("show unknown: %d %q", code, errs)
		}
	})
}

func TestCLIImportRejectsBadFile(t *testing.T) {
	b := redistest.Mini(t)
	conf := configFor(t, b)
	data := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(data, []byte("contacts:\n  - {nic: ok1-ovh, email: a@example.com}\n  - {nic: nope, email: b@example.com}\n"), 0o600)
	code, _, errs := cli(t, "directory", "import", "--config", conf, data)
	if code != 1 || !strings.Contains(errs, "error: invalid_nic: ") || !strings.Contains(errs, "line 3") {
		t.Fatalf("bad import: %d %q", code, errs)
	}
	if len(b.Mini.Keys()) != 0 {
		t.Errorf("a rejected import wrote %v", b.Mini.Keys())
	}
}

func TestCLIInvocation(t *testing.T) {
	for _, args := range [][]string{
		{}, {"nope"}, {"request"}, {"request", "fly"}, {"request", "show"}, {"request", "show", "a", "b"},
		{"request", "list"}, {"request", "create", "--service", "x"}, {"request", "show", "x", "--bogus"},
		{"config", "check", "extra"},
	} {
		if code, _, errs := cli(t, args...); code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
}

func TestCLIConfigCheck(t *testing.T) {
	if code, out, errs := cli(t, "config", "check", "--config", "../../config.example.yaml"); code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("example config: %d %s %s", code, out, errs)
	}
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("smtp: {port: 0}\nimap: {tls: maybe}\n"), 0o600)
	code, _, errs := cli(t, "config", "check", "--config", p)
	if code != 1 || !strings.Contains(errs, "smtp.port: must be 1-65535") || !strings.Contains(errs, "imap.tls:") {
		t.Fatalf("bad config: %d %q", code, errs)
	}
	t.Setenv("CONTACTD_CONFIG", p)
	if code, _, _ := cli(t, "config", "check"); code != 1 {
		t.Errorf("$CONTACTD_CONFIG not used")
	}
}
