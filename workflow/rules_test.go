package workflow_test

import (
	"context"
	"strings"
	"testing"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
)

// TestRules walks the table of SPEC section 2: who may ask for what, who
// must validate, who is told, and every refusal in its order.
//
// In the seed, example.com is ad1 (admin), te1 (tech), bi1 (billing);
// vps-1.ovh.net is at1 (admin and tech), bi1 (billing); hosting-9 is ad1
// (admin), tb1 (tech and billing); overdue.org has od1 (behind with
// payments) as billing.
func TestRules(t *testing.T) {
	tests := []struct {
		name      string
		service   string
		requester string
		changes   map[string]string
		approvers []string
		informed  []string
		code      string
	}{
		// requester holds admin
		{"admin names new tech", "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"}, []string{"ad1-ovh", "nw1-ovh"}, []string{"te1-ovh"}, ""},
		{"admin names new billing", "example.com", "ad1-ovh", map[string]string{"billing": "nw1-ovh"}, []string{"ad1-ovh", "nw1-ovh"}, []string{"bi1-ovh"}, ""},
		{"admin names tech and billing, same new contact", "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh", "billing": "nw1-ovh"}, []string{"ad1-ovh", "nw1-ovh"}, []string{"bi1-ovh", "te1-ovh"}, ""},
		{"admin names tech and billing, two new contacts", "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh", "billing": "nw2-ovh"}, []string{"ad1-ovh", "nw1-ovh", "nw2-ovh"}, []string{"bi1-ovh", "te1-ovh"}, ""},
		{"admin takes over tech", "example.com", "ad1-ovh", map[string]string{"tech": "ad1-ovh"}, []string{"ad1-ovh"}, []string{"te1-ovh"}, ""},
		{"admin takes over billing", "example.com", "ad1-ovh", map[string]string{"billing": "ad1-ovh"}, []string{"ad1-ovh"}, []string{"bi1-ovh"}, ""},
		{"admin takes over tech and billing", "example.com", "ad1-ovh", map[string]string{"tech": "ad1-ovh", "billing": "ad1-ovh"}, []string{"ad1-ovh"}, []string{"bi1-ovh", "te1-ovh"}, ""},
		{"admin hands over admin", "example.com", "ad1-ovh", map[string]string{"admin": "nw1-ovh"}, []string{"ad1-ovh", "nw1-ovh"}, nil, ""},
		{"admin hands admin to the tech", "example.com", "ad1-ovh", map[string]string{"admin": "te1-ovh"}, []string{"ad1-ovh", "te1-ovh"}, nil, ""},
		{"admin hands over all three", "example.com", "ad1-ovh", map[string]string{"admin": "nw1-ovh", "tech": "nw1-ovh", "billing": "nw1-ovh"}, []string{"ad1-ovh", "nw1-ovh"}, []string{"bi1-ovh", "te1-ovh"}, ""},
		{"admin to itself is no change", "example.com", "ad1-ovh", map[string]string{"admin": "ad1-ovh"}, nil, nil, workflow.ENoChange},
		{"admin names current tech as tech", "example.com", "ad1-ovh", map[string]string{"tech": "te1-ovh"}, nil, nil, workflow.ENoChange},
		// requester holds tech only
		{"tech replaces itself", "example.com", "te1-ovh", map[string]string{"tech": "nw1-ovh"}, []string{"nw1-ovh", "te1-ovh"}, nil, ""},
		{"tech may not change billing", "example.com", "te1-ovh", map[string]string{"billing": "nw1-ovh"}, nil, nil, workflow.ERoleNotAllowed},
		{"tech may not change admin", "example.com", "te1-ovh", map[string]string{"admin": "te1-ovh"}, nil, nil, workflow.ERoleNotAllowed},
		{"tech may not change tech and admin", "example.com", "te1-ovh", map[string]string{"tech": "nw1-ovh", "admin": "nw1-ovh"}, nil, nil, workflow.ERoleNotAllowed},
		{"tech to itself is no change", "example.com", "te1-ovh", map[string]string{"tech": "te1-ovh"}, nil, nil, workflow.ENoChange},
		// requester holds billing only
		{"billing replaces itself", "example.com", "bi1-ovh", map[string]string{"billing": "nw1-ovh"}, []string{"bi1-ovh", "nw1-ovh"}, nil, ""},
		{"billing may not change tech", "example.com", "bi1-ovh", map[string]string{"tech": "nw1-ovh"}, nil, nil, workflow.ERoleNotAllowed},
		{"billing may not change admin", "example.com", "bi1-ovh", map[string]string{"admin": "nw1-ovh"}, nil, nil, workflow.ERoleNotAllowed},
		// requester holds several roles
		{"admin+tech names new tech", "vps-1.ovh.net", "at1-ovh", map[string]string{"tech": "nw1-ovh"}, []string{"at1-ovh", "nw1-ovh"}, nil, ""},
		{"admin+tech hands over admin", "vps-1.ovh.net", "at1-ovh", map[string]string{"admin": "nw1-ovh"}, []string{"at1-ovh", "nw1-ovh"}, nil, ""},
		{"admin+tech names billing", "vps-1.ovh.net", "at1-ovh", map[string]string{"billing": "nw2-ovh"}, []string{"at1-ovh", "nw2-ovh"}, []string{"bi1-ovh"}, ""},
		{"tech+billing replaces both", "hosting-9", "tb1-ovh", map[string]string{"tech": "nw1-ovh", "billing": "nw1-ovh"}, []string{"nw1-ovh", "tb1-ovh"}, nil, ""},
		{"tech+billing replaces tech only", "hosting-9", "tb1-ovh", map[string]string{"tech": "nw1-ovh"}, []string{"nw1-ovh", "tb1-ovh"}, nil, ""},
		{"tech+billing may not change admin", "hosting-9", "tb1-ovh", map[string]string{"admin": "tb1-ovh"}, nil, nil, workflow.ERoleNotAllowed},
		// holds nothing
		{"stranger", "example.com", "nw1-ovh", map[string]string{"tech": "nw1-ovh"}, nil, nil, workflow.ENotAContact},
		// payments
		{"billing to overdue contact", "example.com", "ad1-ovh", map[string]string{"billing": "od1-ovh"}, nil, nil, workflow.EPaymentOverdue},
		{"billing away from overdue contact", "overdue.org", "ad1-ovh", map[string]string{"billing": "nw1-ovh"}, nil, nil, workflow.EPaymentOverdue},
		{"tech change ignores payments", "overdue.org", "ad1-ovh", map[string]string{"tech": "od1-ovh"}, []string{"ad1-ovh", "od1-ovh"}, []string{"te1-ovh"}, ""},
		// shape and directory
		{"empty changes", "example.com", "ad1-ovh", map[string]string{}, nil, nil, workflow.EInvalidRequest},
		{"unknown role", "example.com", "ad1-ovh", map[string]string{"owner": "nw1-ovh"}, nil, nil, workflow.EInvalidRequest},
		{"missing service", "", "ad1-ovh", map[string]string{"tech": "nw1-ovh"}, nil, nil, workflow.EInvalidRequest},
		{"missing requester", "example.com", "", map[string]string{"tech": "nw1-ovh"}, nil, nil, workflow.EInvalidRequest},
		{"empty new nic", "example.com", "ad1-ovh", map[string]string{"tech": ""}, nil, nil, workflow.EInvalidRequest},
		{"bad requester nic", "example.com", "admin", map[string]string{"tech": "nw1-ovh"}, nil, nil, workflow.EInvalidNIC},
		{"bad new nic", "example.com", "ad1-ovh", map[string]string{"tech": "nw1@ovh"}, nil, nil, workflow.EInvalidNIC},
		{"bad nic beats unknown service", "nope.example", "ad1-ovh", map[string]string{"tech": "x"}, nil, nil, workflow.EInvalidNIC},
		{"unknown service", "nope.example", "ad1-ovh", map[string]string{"tech": "nw1-ovh"}, nil, nil, workflow.EUnknownService},
		{"unknown requester", "example.com", "zz9-ovh", map[string]string{"tech": "nw1-ovh"}, nil, nil, workflow.EUnknownContact},
		{"unknown new contact", "example.com", "ad1-ovh", map[string]string{"tech": "zz9-ovh"}, nil, nil, workflow.EUnknownContact},
		{"unknown contact beats not a contact", "example.com", "nw1-ovh", map[string]string{"tech": "zz9-ovh"}, nil, nil, workflow.EUnknownContact},
		{"not allowed beats no change", "example.com", "te1-ovh", map[string]string{"billing": "bi1-ovh"}, nil, nil, workflow.ERoleNotAllowed},
		{"no change beats payment", "overdue.org", "ad1-ovh", map[string]string{"billing": "od1-ovh"}, nil, nil, workflow.ENoChange},
		{"nic case folded", "example.com", "AD1-OVH", map[string]string{"tech": "Nw1-Ovh"}, []string{"ad1-ovh", "nw1-ovh"}, []string{"te1-ovh"}, ""},
	}
	b := redistest.Mini(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.Mini.FlushAll()
			s := newStore(t, b, newClock())
			seed(t, s)
			r, err := s.Create(context.Background(), ask(tt.service, tt.requester, tt.changes), workflow.CLI)
			if got := workflow.ErrorCode(err); got != tt.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tt.code)
			}
			if tt.code != "" {
				if r != nil {
					t.Errorf("refused request returned %+v", r)
				}
				if n := len(outbox(t, b)); n != 0 {
					t.Errorf("refused request queued %d emails", n)
				}
				return
			}
			if diff := cmp.Diff(tt.approvers, r.Approvers()); diff != "" {
				t.Errorf("approvers (-want +got):\n%s", diff)
			}
			informed := tt.informed
			if informed == nil {
				informed = []string{}
			}
			if diff := cmp.Diff(informed, r.Informed); diff != "" {
				t.Errorf("informed (-want +got):\n%s", diff)
			}
			for role, to := range tt.changes {
				if got := r.Changes[workflow.Role(role)].To; got != strings.ToLower(to) {
					t.Errorf("changes.%s.to = %q, want %q", role, got, to)
				}
			}
		})
	}
}
