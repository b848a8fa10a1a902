package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// TestCLIDirectoryReindex runs `directory reindex` on a directory written
// in the previous layout and checks what it prints and leaves.
func TestCLIDirectoryReindex(t *testing.T) {
	b := redistest.Mini(t)
	conf := configFor(t, b)
	ctx := context.Background()
	k := workflow.Keys{Prefix: b.Prefix}
	b.Client.HSet(ctx, k.Contact("ab1-ovh"), "email", "a@example.com", "name", "Ann", "language", "en", "payment_ok", "1")
	b.Client.SAdd(ctx, k.LegacyContactsByEmail("a@example.com"), "ab1-ovh")
	b.Client.HSet(ctx, k.Service("a.example"), "kind", "domain", "admin", "ab1-ovh", "tech", "ab1-ovh", "billing", "ab1-ovh")
	b.Client.SAdd(ctx, k.LegacyNICServices("ab1-ovh"), "a.example")

	code, out, errs := cli(t, "directory", "reindex", "--config", conf)
	if code != 0 {
		t.Fatalf("reindex: %d %s", code, errs)
	}
	var res workflow.ReindexResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res != (workflow.ReindexResult{Contacts: 1, Converted: 1, Services: 1, Removed: 2}) {
		t.Fatalf("reindex printed %s (%v)", out, err)
	}
	for _, key := range b.Mini.Keys() {
		if strings.Contains(key, ":email:") || strings.HasSuffix(key, ":services") {
			t.Errorf("old index key %s left", key)
		}
	}
	code, out, errs = cli(t, "request", "create", "--config", conf, "--service", "a.example", "--requester", "ab1-ovh", "--tech", "ab1-ovh")
	if code != 1 || !strings.HasPrefix(errs, "error: no_change: ") {
		t.Errorf("the reindexed directory does not read as before: %d %s %s", code, out, errs)
	}
	if code, _, errs := cli(t, "directory", "reindex", "--config", conf, "extra"); code != 2 || errs == "" {
		t.Errorf("reindex with an argument: exit %d, %q", code, errs)
	}
}
