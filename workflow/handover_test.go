package workflow_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"
)

// agencyYAML is a directory where the agency ag1-ovh is the technical
// contact of n services, each with its own admin, and nw1-ovh the contact
// it hands them to.
func agencyYAML(n int) string {
	var b strings.Builder
	b.WriteString("contacts:\n  - {nic: ag1-ovh, email: agency@example.com, name: Agency}\n")
	b.WriteString("  - {nic: nw1-ovh, email: new1@example.net, name: Nora New}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {nic: ow%d-ovh, email: owner%d@example.com}\n", i, i)
	}
	b.WriteString("services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: site%02d.example, kind: domain, admin: ow%d-ovh, tech: ag1-ovh, billing: ow%d-ovh}\n", i, i, i)
	}
	return b.String()
}

// handoverMails lists "kinds nic" of the outbox entries about hand-over id.
func handoverMails(t testing.TB, b redistest.Backend, id string) []string {
	var out []string
	for _, m := range outbox(t, b) {
		if m.Handover == id {
			var ks []string
			for _, k := range m.Kinds {
				ks = append(ks, string(k))
			}
			out = append(out, strings.Join(ks, "+")+" "+m.NIC+m.Op)
		}
	}
	sort.Strings(out)
	return out
}

func TestHandoverLifecycle(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		if _, err := s.Import(ctx, []byte(agencyYAML(5))); err != nil {
			t.Fatal(err)
		}
		// The agency hands its technical role to nw1-ovh: it is a tech
		// contact, so the rules let it name a replacement tech.
		h, err := s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Requests) != 5 || len(h.Refused) != 0 || h.Status != "pending" {
			t.Fatalf("hand-over: %d requests, %d refused, status %s", len(h.Requests), len(h.Refused), h.Status)
		}
		if diff := cmp.Diff([]string{"validation ag1-ovh", "validation nw1-ovh"}, handoverMails(t, b, h.ID)); diff != "" {
			t.Fatalf("emails queued (-want +got):\n%s", diff)
		}
		toks := outboxtest.Deliver(t, s, outboxtest.Of(h.ID, "", ""))
		out, err := s.Decide(ctx, toks["validation nw1-ovh"], workflow.Accept, workflow.Web)
		if err != nil || out.Handover == nil || out.Handover.State != "pending" {
			t.Fatalf("first accept: %+v, %v", out, err)
		}
		out, err = s.Decide(ctx, toks["validation ag1-ovh"], workflow.Accept, workflow.Email)
		if err != nil || out.Handover.State != "approved" {
			t.Fatalf("last accept: %+v, %v", out, err)
		}
		if n := outboxtest.RunJobs(t, s); n != 1 {
			t.Fatalf("%d jobs ran, want 1", n)
		}
		got, err := s.GetHandover(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "applied" {
			t.Errorf("hand-over status %s, want applied", got.Status)
		}
		for _, r := range got.Requests {
			if r.Status != workflow.Applied {
				t.Errorf("request %s of %s is %s", r.ID, r.Service, r.Status)
			}
			svc, _ := s.GetService(ctx, r.Service)
			if svc.Tech != "nw1-ovh" {
				t.Errorf("%s tech is %s", r.Service, svc.Tech)
			}
			req, err := s.Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if req.Handover != h.ID || req.Approvals["nw1-ovh"].Status != workflow.ApprovalAccepted {
				t.Errorf("request %s: handover %q, approvals %+v", r.ID, req.Handover, req.Approvals)
			}
			t.Logf("history of %s: %v", r.ID, events(req))
		}
		want := []string{"applied ag1-ovh", "applied nw1-ovh", "recorded ag1-ovh", "recorded nw1-ovh"}
		if diff := cmp.Diff(want, handoverMails(t, b, h.ID)); diff != "" {
			t.Errorf("emails queued (-want +got):\n%s", diff)
		}
	})
}
