package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// An operator lists dead email, retries one or all, and drops one, each
// with one command against the store the daemons share.
func TestCLIOutboxCommands(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		conf := configFor(t, b)
		if code, _, errs := cli(t, "directory", "import", "--config", conf, "../../examples/directory.yaml"); code != 0 {
			t.Fatalf("import: %s", errs)
		}
		st, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		r, err := st.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ab1234-ovh",
			Changes: map[string]string{"tech": "gh3456-ovh"}}, workflow.CLI)
		if err != nil {
			t.Fatal(err)
		}
		list := func(args ...string) []outboxItem {
			t.Helper()
			code, out, errs := cli(t, append([]string{"outbox", "list", "--config", conf}, args...)...)
			if code != 0 {
				t.Fatalf("outbox list %v: %d %s", args, code, errs)
			}
			var items []outboxItem
			if err := json.Unmarshal([]byte(out), &items); err != nil {
				t.Fatalf("outbox list output: %v\n%s", err, out)
			}
			return items
		}
		if got := list(); len(got) != 2 || got[0].Kind != workflow.KindValidation || got[0].Request != r.ID || got[0].State != "ready" {
			t.Fatalf("waiting = %+v, want the 2 validation emails", got)
		}
		// The mailer gives both up.
		for n := 0; n < workflow.Shards; n++ {
			es, _, _, err := st.ClaimOutbox(ctx, n, time.Minute, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				e.Attempts, e.LastError = 10, "mailer: permanent failure, code 550: no such user"
				if err := st.BuryOutbox(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
		}
		dead := list("--dead")
		if len(dead) != 2 || dead[0].State != "dead" || !strings.Contains(dead[0].LastError, "550") || dead[0].Attempts != 10 {
			t.Fatalf("dead = %+v, want the 2 emails with their last error", dead)
		}
		if got := list(); len(got) != 0 {
			t.Errorf("waiting after both died = %+v", got)
		}
		if code, out, errs := cli(t, "outbox", "retry", "--config", conf, dead[0].ID); code != 0 || !strings.Contains(out, dead[0].ID) {
			t.Fatalf("retry one: %d %s %s", code, out, errs)
		}
		if got := list(); len(got) != 1 || got[0].ID != dead[0].ID || got[0].Attempts != 0 {
			t.Errorf("waiting after a retry = %+v, want the retried entry with its attempts reset", got)
		}
		if code, _, errs := cli(t, "outbox", "retry", "--config", conf, dead[0].ID); code != 1 || !strings.HasPrefix(errs, "error: not_found: ") {
			t.Errorf("retry of an entry no longer dead: %d %q", code, errs)
		}
		if code, out, errs := cli(t, "outbox", "drop", "--config", conf, dead[1].ID); code != 0 || !strings.Contains(out, dead[1].ID) {
			t.Fatalf("drop: %d %s %s", code, out, errs)
		}
		if got := list("--dead"); len(got) != 0 {
			t.Errorf("dead after the drop = %+v", got)
		}
		// --all-dead, and the bad invocations.
		for _, args := range [][]string{{"outbox", "retry"}, {"outbox", "retry", "1/2", "--all-dead"}, {"outbox", "drop"}, {"outbox", "purge"}} {
			if code, _, _ := cli(t, append(args, "--config", conf)...); code != 2 {
				t.Errorf("%v: exit %d, want 2", args, code)
			}
		}
		if code, _, errs := cli(t, "outbox", "drop", "--config", conf, "not-an-id"); code != 1 || !strings.HasPrefix(errs, "error: invalid_request: ") {
			t.Errorf("drop of a malformed id: %d %q", code, errs)
		}
		if code, out, _ := cli(t, "outbox", "retry", "--all-dead", "--config", conf); code != 0 || !strings.Contains(out, `"retried": []`) {
			t.Errorf("retry --all-dead with nothing dead: %d %s", code, out)
		}
	})
}
