// Package outboxtest does, in tests, what the mailer does with the
// outbox of a workflow.Store: claim the entries a transition queued,
// issue the tokens their emails carry, and record them as accepted by the
// mail server. Tests of the workflow, the web pages and the inbox use it to
// get the tokens an approver would receive, without a mailer or an SMTP
// server.
package outboxtest

import (
	"context"
	"testing"
	"time"

	"contactd/workflow"
)

// Match selects outbox entries.
type Match func(e *workflow.OutboxEntry) bool

// Of selects the entries about request id sent to nic ("" for any
// recipient) whose next email is of kind ("" for any kind).
func Of(id, nic string, kind workflow.Kind) Match {
	return func(e *workflow.OutboxEntry) bool {
		return (e.Request == id || e.Handover == id) && (nic == "" || e.NIC == nic) && (kind == "" || e.Kind() == kind)
	}
}

// Claim claims, in every shard, the due entries that match, and hands the
// others back. The claims last a minute.
func Claim(t testing.TB, s *workflow.Store, match Match) []*workflow.OutboxEntry {
	t.Helper()
	ctx := context.Background()
	var out []*workflow.OutboxEntry
	for n := 0; n < workflow.Shards; n++ {
		es, _, _, err := s.ClaimOutbox(ctx, n, time.Minute, 10000)
		if err != nil {
			t.Fatalf("claim outbox: %v", err)
		}
		for _, e := range es {
			if match(e) {
				out = append(out, e)
				continue
			}
			if err := s.ReleaseOutbox(ctx, e); err != nil {
				t.Fatalf("release outbox entry: %v", err)
			}
		}
	}
	return out
}

// Issue issues the token each claimed entry's next email carries (an
// approver's token, or a "this wasn't me" token for an informed email)
// and returns them in order; "" for an entry whose email is no longer due
// or that carries none.
func Issue(t testing.TB, s *workflow.Store, es []*workflow.OutboxEntry) []string {
	t.Helper()
	ctx := context.Background()
	out := make([]string, len(es))
	for i, e := range es {
		kind := e.Kind()
		if !kind.CarriesToken() && kind != workflow.KindInformed {
			continue
		}
		svc := ""
		if e.Request != "" {
			r, err := s.Get(ctx, e.Request)
			if err != nil {
				t.Fatalf("read request: %v", err)
			}
			svc = r.Service
		}
		a := &workflow.TokenAsk{Entry: e, Report: kind == workflow.KindInformed, Service: svc}
		if err := s.IssueTokens(ctx, e.Shard, []*workflow.TokenAsk{a}); err != nil {
			t.Fatalf("issue token: %v", err)
		}
		out[i] = a.Token
	}
	return out
}

// Settle settles claimed entries with the same action.
func Settle(t testing.TB, s *workflow.Store, es []*workflow.OutboxEntry, a workflow.Action) {
	t.Helper()
	sts := make([]workflow.Settlement, len(es))
	for i, e := range es {
		sts[i] = workflow.Settlement{Entry: e, Action: a}
	}
	lost, err := s.Settle(context.Background(), sts)
	if err != nil {
		t.Fatalf("settle outbox entries: %v", err)
	}
	if len(lost) > 0 {
		t.Fatalf("settle: %d claims lost", len(lost))
	}
}

// Deliver does what the mailer does with the matching entries: claims
// them, issues the tokens they carry and records them as accepted by the
// mail server (their tokens become live, revoking earlier ones). It
// returns the tokens by "kind nic".
func Deliver(t testing.TB, s *workflow.Store, match Match) map[string]string {
	t.Helper()
	es := Claim(t, s, match)
	toks := Issue(t, s, es)
	Settle(t, s, es, workflow.ActSent)
	out := map[string]string{}
	for i, e := range es {
		if toks[i] != "" {
			out[string(e.Kind())+" "+e.NIC] = toks[i]
		}
	}
	return out
}

// Pending issues the token of the matching entry's email as a mailer does
// just before sending it, then hands the entry back: the token works, as
// one whose email is on its way, but revokes nothing yet. It fails the
// test unless exactly one entry matches.
func Pending(t testing.TB, s *workflow.Store, match Match) string {
	t.Helper()
	es := Claim(t, s, match)
	if len(es) != 1 {
		t.Fatalf("%d outbox entries match, want 1", len(es))
	}
	tok := Issue(t, s, es)[0]
	Settle(t, s, es, workflow.ActRelease)
	if tok == "" {
		t.Fatalf("no token issued for outbox entry %s (%s to %s)", es[0].Ref(), es[0].Kind(), es[0].NIC)
	}
	return tok
}

// RunJobs does what the mailer does with the hand-over jobs queued: claims
// each and runs it. It returns how many it ran.
func RunJobs(t testing.TB, s *workflow.Store) int {
	t.Helper()
	es := Claim(t, s, func(e *workflow.OutboxEntry) bool { return e.Kind() == workflow.KindJob })
	for _, e := range es {
		if err := s.RunJob(context.Background(), e); !workflow.IsJobSettled(err) {
			t.Fatalf("hand-over job %s (%s): %v", e.Ref(), e.Op, err)
		}
	}
	return len(es)
}
