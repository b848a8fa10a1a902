package mailer

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// agency is a directory where ag1-ovh administers n services whose
// technical contact is te1-ovh, and nw1-ovh is the agency's new
// technician.
func agency(n int) string {
	var b strings.Builder
	b.WriteString("contacts:\n")
	b.WriteString("  - {nic: ag1-ovh, email: agency@example.com, name: Agency}\n")
	b.WriteString("  - {nic: te1-ovh, email: tech@example.com, name: Tom Tech, language: fr}\n")
	b.WriteString("  - {nic: nw1-ovh, email: new1@example.net, name: Nora New, language: de}\n")
	b.WriteString("services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: site%04d.example, kind: domain, admin: ag1-ovh, tech: te1-ovh, billing: ag1-ovh}\n", i)
	}
	return b.String()
}

// TestHandoverEmailsGrowWithPeople runs a whole hand-over through the
// mailer and a real SMTP session: the agency hands the technical role of
// its services to its new technician, both accept from their emails. The
// emails sent are the same, one per person and step, for 2 services as
// for 300; each lists the services, the first 20 of them in full.
func TestHandoverEmailsGrowWithPeople(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		var sent [2][]string
		for i, n := range []int{2, 300} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				own := b
				own.Prefix = fmt.Sprintf("%s-%d", b.Prefix, n)
				sent[i] = handoverEmails(t, own, n)
			})
		}
		want := []string{
			"agency@example.com applied", "agency@example.com recorded", "agency@example.com validation",
			"new1@example.net applied", "new1@example.net recorded", "new1@example.net validation",
			"tech@example.com informed",
		}
		for i := range sent {
			if diff := cmp.Diff(want, sent[i]); diff != "" {
				t.Errorf("emails of the hand-over of %d services (-want +got):\n%s", []int{2, 300}[i], diff)
			}
		}
	})
}

// handoverEmails runs a hand-over of n services and returns "to kind" of
// every email sent, sorted.
func handoverEmails(t *testing.T, b redistest.Backend, n int) []string {
	ctx := context.Background()
	s, err := workflow.NewStore(b.Client, workflow.Options{
		KeyPrefix: b.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`, RequestTTL: 336 * time.Hour,
		RemindAfter: 48 * time.Hour, MaxReminders: 2, ReportWindow: 720 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, []byte(agency(n))); err != nil {
		t.Fatal(err)
	}
	srv := startSink(t, "")
	m := newMailer(t, s, testConfig(srv.port()), 4)
	start(t, m)
	h, err := s.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ag1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Requests) != n {
		t.Fatalf("%d requests, want %d", len(h.Requests), n)
	}
	waitDrained(t, s, 20*time.Second)
	for _, raw := range srv.received() {
		p := parse(t, raw)
		if headerValue(raw, "X-Contactd-Handover") != h.ID || headerValue(raw, "X-Contactd-Request") != "" {
			t.Errorf("email to %s: X-Contactd-Handover %q, X-Contactd-Request %q", p.to,
				headerValue(raw, "X-Contactd-Handover"), headerValue(raw, "X-Contactd-Request"))
		}
		// Both parts list the first 20 services, then how many more.
		for _, part := range []string{p.text, p.html} {
			last := fmt.Sprintf("site%04d.example", min(n, 20)-1)
			if !strings.Contains(part, "site0000.example") || !strings.Contains(part, last) ||
				strings.Contains(part, "site0020.example") || n > 20 && !strings.Contains(part, fmt.Sprint(n-20)) {
				t.Errorf("email to %s should list the services up to %s, then say %d more:\n%s", p.to, last, n-20, part)
			}
		}
		tok := tokenRe.FindStringSubmatch(p.replyTo)
		if tok == nil {
			t.Fatalf("validation email to %s carries no token in its Reply-To %q", p.to, p.replyTo)
		}
		if _, err := s.Decide(ctx, tok[1], workflow.Accept, workflow.Email); err != nil {
			t.Fatalf("accept of %s: %v", p.to, err)
		}
	}
	// The last accept queues the job that applies every request, then the
	// emails that follow.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := s.GetHandover(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == "applied" && pending(t, s) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hand-over %s, %d outbox entries left", got.Status, pending(t, s))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < n; i++ {
		svc, err := s.GetService(ctx, fmt.Sprintf("site%04d.example", i))
		if err != nil || svc.Tech != "nw1-ovh" {
			t.Fatalf("service %d: %+v, %v", i, svc, err)
		}
	}
	var out []string
	for _, raw := range srv.received() {
		out = append(out, parse(t, raw).to+" "+headerValue(raw, "X-Contactd-Kind"))
	}
	sort.Strings(out)
	return out
}
