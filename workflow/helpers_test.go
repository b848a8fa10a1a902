package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"
)

// clock is a settable clock for the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const (
	ttl         = 336 * time.Hour
	remindAfter = 48 * time.Hour
)

func newStore(t testing.TB, b redistest.Backend, c *clock) *workflow.Store {
	t.Helper()
	s, err := workflow.NewStore(b.Client, workflow.Options{
		KeyPrefix: b.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`, RequestTTL: ttl, RemindAfter: remindAfter,
		MaxReminders: 2, ReportWindow: 720 * time.Hour, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedYAML is the directory most tests start from.
const seedYAML = `contacts:
  - {nic: ad1-ovh, email: admin@example.com, name: Alice Admin, language: en}
  - {nic: te1-ovh, email: tech@example.com, name: Tom Tech, language: fr}
  - {nic: bi1-ovh, email: billing@example.com, name: Bob Billing}
  - {nic: nw1-ovh, email: new1@example.net, name: Nora New, language: fr}
  - {nic: nw2-ovh, email: new2@example.net, name: Ned New}
  - {nic: od1-ovh, email: overdue@example.net, name: Olga Overdue, payment_ok: false}
  - {nic: at1-ovh, email: at@example.com, name: Ada AdminTech}
  - {nic: tb1-ovh, email: tb@example.com, name: Tess TechBilling}
services:
  - {id: example.com, kind: domain, admin: ad1-ovh, tech: te1-ovh, billing: bi1-ovh}
  - {id: vps-1.ovh.net, kind: vps, admin: at1-ovh, tech: at1-ovh, billing: bi1-ovh}
  - {id: hosting-9, kind: hosting, admin: ad1-ovh, tech: tb1-ovh, billing: tb1-ovh}
  - {id: overdue.org, kind: domain, admin: ad1-ovh, tech: te1-ovh, billing: od1-ovh}
`

func seed(t testing.TB, s *workflow.Store) {
	t.Helper()
	if _, err := s.Import(context.Background(), []byte(seedYAML)); err != nil {
		t.Fatalf("import seed: %v", err)
	}
}

// outbox returns the queued messages of every shard, in queue order per
// shard, claimed or not.
func outbox(t testing.TB, b redistest.Backend) []workflow.Message {
	t.Helper()
	ctx := context.Background()
	k := workflow.Keys{Prefix: b.Prefix}
	var out []workflow.Message
	for n := 0; n < workflow.Shards; n++ {
		ids, err := b.Client.ZRange(ctx, k.OutboxQueue(n), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			raw, err := b.Client.HGet(ctx, k.Outbox(n), id).Result()
			if err != nil {
				t.Fatal(err)
			}
			var m workflow.Message
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

// mails lists "kind nic" for the outbox messages of one request, sorted.
func mails(t testing.TB, b redistest.Backend, id string) []string {
	var out []string
	for _, m := range outbox(t, b) {
		if m.Request == id {
			who := m.NIC
			if len(m.Kinds) == 1 && m.Kinds[0] == "event" {
				who = m.Event
			}
			for _, k := range m.Kinds {
				out = append(out, string(k)+" "+who)
			}
		}
	}
	sort.Strings(out)
	return out
}

func events(r *workflow.Request) []string {
	var out []string
	for _, e := range r.History {
		out = append(out, e.Event+" "+e.NIC+" "+string(e.Channel))
	}
	return out
}

func asError(err error, target **workflow.Error) bool { return errors.As(err, target) }

// deliver does what the mailer does with the queued emails of request id
// that carry a token: claims them, issues their token, and records them as
// accepted by the mail server. Other entries are handed back. It returns
// the tokens sent, by "kind nic".
func deliver(t testing.TB, s *workflow.Store, id string) map[string]string {
	t.Helper()
	return outboxtest.Deliver(t, s, func(e *workflow.OutboxEntry) bool {
		return e.Request == id && e.Kind().CarriesToken()
	})
}

// token issues the token of the queued email of kind to approver nic (or
// of any email of theirs that carries one, when none of kind is queued)
// as the mailer does just before sending it: the token works, as one
// whose email is on its way. The entry is handed back.
func token(t testing.TB, s *workflow.Store, id, nic string, kind workflow.Kind) string {
	t.Helper()
	es := outboxtest.Claim(t, s, outboxtest.Of(id, nic, ""))
	var pick *workflow.OutboxEntry
	for _, e := range es {
		if e.Kind() == kind || (pick == nil && e.Kind().CarriesToken()) {
			pick = e
		}
	}
	if pick == nil {
		outboxtest.Settle(t, s, es, workflow.ActRelease)
		t.Fatalf("no email carrying a token queued for %s on %s", nic, id)
	}
	tok := outboxtest.Issue(t, s, []*workflow.OutboxEntry{pick})[0]
	outboxtest.Settle(t, s, es, workflow.ActRelease)
	if tok == "" {
		t.Fatalf("no token issued for %s on %s: the email is no longer due", nic, id)
	}
	return tok
}

// issued reports whether the queued email to nic on request id would
// still get its token now (false: the mailer would drop it as no longer
// due). The entry is handed back.
func issued(t testing.TB, s *workflow.Store, id, nic string) bool {
	t.Helper()
	es := outboxtest.Claim(t, s, outboxtest.Of(id, nic, ""))
	defer outboxtest.Settle(t, s, es, workflow.ActRelease)
	for i, tok := range outboxtest.Issue(t, s, es) {
		if es[i].Kind().CarriesToken() {
			return tok != ""
		}
	}
	t.Fatalf("no email carrying a token queued for %s on %s", nic, id)
	return false
}
