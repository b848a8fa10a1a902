package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"contactd/config"
	"contactd/examples"
	"contactd/internal/mailhub"
	"contactd/workflow"
)

// stack is a whole daemon on embedded Redis and in-process mail servers,
// driven through its HTTP API, its emails and its pages.
type stack struct {
	t   *testing.T
	cfg config.Config
	hub *mailhub.Hub
	d   *Daemon
	w   *walkthrough
}

func startStack(t *testing.T, tweak func(*config.Config)) *stack {
	t.Helper()
	p := startProcess(t, "http,mailer,inbox,scheduler", 100*time.Millisecond, func(cfg *config.Config) {
		cfg.Schedule.Sweep = "@every 1s"
		if tweak != nil {
			tweak(cfg)
		}
	})
	s := &stack{t: t, cfg: p.cfg, hub: p.hub, d: p.d,
		w: &walkthrough{out: io.Discard, hub: p.hub, store: p.d.Store(), base: p.cfg.HTTP.BaseURL}}
	if _, err := p.d.Store().Import(context.Background(), examples.Directory); err != nil {
		t.Fatal(err)
	}
	return s
}

// api calls the JSON API and decodes the answer into out.
func (s *stack) api(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.cfg.HTTP.BaseURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.cfg.HTTP.APITokens[0])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			s.t.Fatalf("%s %s: decoding the answer: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// create asks for a change through the API.
func (s *stack) create(service, requester string, changes map[string]string) *workflow.Request {
	s.t.Helper()
	var r workflow.Request
	if code := s.api("POST", "/api/v1/requests", map[string]any{"service": service, "requester": requester, "changes": changes}, &r); code != http.StatusCreated {
		s.t.Fatalf("create: status %d", code)
	}
	return &r
}

func (s *stack) email(addr, id, kind string) *email {
	s.t.Helper()
	e, err := s.w.waitEmail(context.Background(), addr, id, kind)
	if err != nil {
		s.t.Fatal(err)
	}
	if e.Text == "" {
		s.t.Fatalf("%s email to %s has no text part", kind, addr)
	}
	return e
}

func (s *stack) byLink(e *email, decision string) {
	s.t.Helper()
	if e.Link == "" {
		s.t.Fatalf("email %q has no validation link", e.Subject)
	}
	if err := s.w.click(context.Background(), e.Link, decision); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) byReply(e *email, from, answer string) {
	s.t.Helper()
	if err := s.w.reply(e, from, answer); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) until(id string, what string, ok func(*workflow.Request) bool) *workflow.Request {
	s.t.Helper()
	r, err := s.w.waitRequest(context.Background(), id, ok)
	if err != nil {
		s.t.Fatalf("waiting for %s: %v", what, err)
	}
	return r
}

func (s *stack) status(id string, st workflow.Status) *workflow.Request {
	s.t.Helper()
	return s.until(id, string(st), func(r *workflow.Request) bool { return r.Status == st })
}

// kinds lists the kinds of email each address received about a request.
func (s *stack) kinds(id string, addrs ...string) []string {
	var out []string
	for _, a := range addrs {
		for _, m := range s.hub.Messages(a) {
			if e, err := readEmail(m.Data); err == nil && e.Request == id {
				out = append(out, a+" "+e.Kind)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (s *stack) service(id string) *workflow.Service {
	s.t.Helper()
	v, err := s.d.Store().GetService(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

const (
	alice = "alice@example.com" // ab1234-ovh: admin of example.com and vps-1234.ovh.net
	bruno = "bruno@example.com" // cd5678-ovh: tech of example.com and hosting-42
	carla = "carla@example.net" // ef9012-ovh: billing of example.com; admin and billing of hosting-42
	david = "david@example.org" // gh3456-ovh: holds nothing
)

func TestEndToEndAdminNamesTech(t *testing.T) {
	s := startStack(t, nil)
	r := s.create("example.com", "ab1234-ovh", map[string]string{"tech": "gh3456-ovh"})
	s.byReply(s.email(david, r.ID, "validation"), david, "Oui !")
	s.until(r.ID, "david's reply", func(r *workflow.Request) bool { return r.Approvals["gh3456-ovh"].Status == "accepted" })
	s.byLink(s.email(alice, r.ID, "validation"), "accept")
	final := s.status(r.ID, workflow.Applied)
	if got := s.service("example.com").Tech; got != "gh3456-ovh" {
		t.Errorf("tech = %s", got)
	}
	if a := final.Approvals["gh3456-ovh"]; a.Channel != workflow.Email {
		t.Errorf("david's channel = %s, want email", a.Channel)
	}
	if a := final.Approvals["ab1234-ovh"]; a.Channel != workflow.Web {
		t.Errorf("alice's channel = %s, want web", a.Channel)
	}
	informed := s.email(bruno, r.ID, "informed")
	if !strings.Contains(informed.Text, "/r/") {
		t.Errorf("informed email has no \"this wasn't me\" link:\n%s", informed.Text)
	}
	for _, k := range []string{"applied", "recorded"} {
		s.email(alice, r.ID, k)
		s.email(david, r.ID, k)
	}
	want := []string{alice + " applied", alice + " recorded", alice + " validation", bruno + " informed",
		david + " applied", david + " recorded", david + " validation"}
	if got := s.kinds(r.ID, alice, bruno, carla, david); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("emails:\n got %v\nwant %v", got, want)
	}
}

func TestEndToEndAdminNamesBilling(t *testing.T) {
	s := startStack(t, nil)
	r := s.create("example.com", "ab1234-ovh", map[string]string{"billing": "gh3456-ovh"})
	s.byLink(s.email(david, r.ID, "validation"), "accept")
	s.byReply(s.email(alice, r.ID, "validation"), alice, "ACCEPT")
	s.status(r.ID, workflow.Applied)
	if got := s.service("example.com").Billing; got != "gh3456-ovh" {
		t.Errorf("billing = %s", got)
	}
	s.email(carla, r.ID, "informed")
}

func TestEndToEndAdminTakesOverTech(t *testing.T) {
	s := startStack(t, nil)
	r := s.create("example.com", "ab1234-ovh", map[string]string{"tech": "ab1234-ovh"})
	if got := r.Approvers(); len(got) != 1 || got[0] != "ab1234-ovh" {
		t.Fatalf("approvers = %v, want the admin alone", got)
	}
	s.byReply(s.email(alice, r.ID, "validation"), alice, "valider")
	s.status(r.ID, workflow.Applied)
	if got := s.service("example.com").Tech; got != "ab1234-ovh" {
		t.Errorf("tech = %s", got)
	}
	s.email(bruno, r.ID, "informed")
}

func TestEndToEndAdminHandsOverAdmin(t *testing.T) {
	s := startStack(t, nil)
	r := s.create("vps-1234.ovh.net", "ab1234-ovh", map[string]string{"admin": "gh3456-ovh"})
	s.byLink(s.email(alice, r.ID, "validation"), "accept")
	s.byLink(s.email(david, r.ID, "validation"), "accept")
	s.status(r.ID, workflow.Applied)
	if v := s.service("vps-1234.ovh.net"); v.Admin != "gh3456-ovh" || v.Tech != "ab1234-ovh" {
		t.Errorf("service = %+v", v)
	}
	if len(r.Informed) != 0 {
		t.Errorf("informed = %v, want none: the previous admin approved", r.Informed)
	}
}

func TestEndToEndTechReplacesItself(t *testing.T) {
	s := startStack(t, nil)
	r := s.create("hosting-42", "cd5678-ovh", map[string]string{"tech": "gh3456-ovh"})
	s.byReply(s.email(bruno, r.ID, "validation"), bruno, "yes")
	s.byReply(s.email(david, r.ID, "validation"), david, "Accepter.")
	s.status(r.ID, workflow.Applied)
	if got := s.service("hosting-42").Tech; got != "gh3456-ovh" {
		t.Errorf("tech = %s", got)
	}
	// The tech may not touch billing.
	var e struct{ Error struct{ Code string } }
	if code := s.api("POST", "/api/v1/requests", map[string]any{"service": "hosting-42", "requester": "gh3456-ovh",
		"changes": map[string]string{"billing": "gh3456-ovh"}}, &e); code != http.StatusForbidden || e.Error.Code != "role_not_allowed" {
		t.Errorf("tech changing billing: %d %s", code, e.Error.Code)
	}
}

func TestEndToEndBillingReplacesItself(t *testing.T) {
	s := startStack(t, nil)
	// Emma is behind with payments: refused at once.
	var e struct{ Error struct{ Code string } }
	if code := s.api("POST", "/api/v1/requests", map[string]any{"service": "example.com", "requester": "ef9012-ovh",
		"changes": map[string]string{"billing": "ij7890-ovh"}}, &e); code != http.StatusUnprocessableEntity || e.Error.Code != "payment_overdue" {
		t.Fatalf("billing to an overdue contact: %d %s", code, e.Error.Code)
	}
	// David is up to date when asked, falls behind before the last accept: failed.
	r := s.create("example.com", "ef9012-ovh", map[string]string{"billing": "gh3456-ovh"})
	s.byLink(s.email(carla, r.ID, "validation"), "accept")
	var c map[string]any
	s.api("GET", "/api/v1/contacts/gh3456-ovh", nil, &c)
	c["payment_ok"] = false
	if code := s.api("PUT", "/api/v1/contacts/gh3456-ovh", c, nil); code != http.StatusOK {
		t.Fatalf("put contact: %d", code)
	}
	s.byLink(s.email(david, r.ID, "validation"), "accept")
	final := s.status(r.ID, workflow.Failed)
	if !strings.Contains(final.Reason, "payments") {
		t.Errorf("reason = %q", final.Reason)
	}
	s.email(carla, r.ID, "failed")
	s.email(david, r.ID, "failed")
	if got := s.service("example.com").Billing; got != "ef9012-ovh" {
		t.Errorf("billing changed to %s by a failed request", got)
	}
	// Up to date again, the same change goes through.
	c["payment_ok"] = true
	s.api("PUT", "/api/v1/contacts/gh3456-ovh", c, nil)
	r = s.create("example.com", "ef9012-ovh", map[string]string{"billing": "gh3456-ovh"})
	s.byLink(s.email(carla, r.ID, "validation"), "accept")
	s.byLink(s.email(david, r.ID, "validation"), "accept")
	s.status(r.ID, workflow.Applied)
}

func TestEndToEndDeclineByReply(t *testing.T) {
	s := startStack(t, nil)
	r := s.create("example.com", "ab1234-ovh", map[string]string{"tech": "gh3456-ovh"})
	s.byReply(s.email(david, r.ID, "validation"), david, "NON")
	s.status(r.ID, workflow.Declined)
	s.email(alice, r.ID, "declined")
	s.email(david, r.ID, "declined")
	if got := s.service("example.com").Tech; got != "cd5678-ovh" {
		t.Errorf("tech = %s after a decline", got)
	}
}

func TestEndToEndRemindAndExpire(t *testing.T) {
	s := startStack(t, func(c *config.Config) {
		c.Workflow.RemindAfter = config.Duration(time.Second)
		c.Workflow.RequestTTL = config.Duration(4 * time.Second)
		c.Workflow.MaxReminders = 1
	})
	r := s.create("example.com", "ab1234-ovh", map[string]string{"tech": "gh3456-ovh"})
	first := s.email(david, r.ID, "validation")
	reminder := s.email(david, r.ID, "reminder")
	if reminder.Link == first.Link {
		t.Error("the reminder carries the same token as the first email")
	}
	s.status(r.ID, workflow.Expired)
	s.until(r.ID, "the expired event", func(r *workflow.Request) bool { return r.History[len(r.History)-1].Event == "expired" })
	s.email(alice, r.ID, "expired")
	s.email(david, r.ID, "expired")
	// The old link is dead and says so.
	resp, err := http.Get(first.Link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Errorf("GET of a dead link = %d, want 410", resp.StatusCode)
	}
}

func TestDemoWalkthrough(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"demo", "--exit", "--listen", "127.0.0.1:0"}, &out, &errb)
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		"1. Alice Martin (ab1234-ovh)",
		"2. contactd emails each of them a personal link",
		"3. David answers from his mail client",
		"gh3456-ovh accepted, by email",
		"4. Alice opens the link",
		"The request is applied: example.com's technical contact is now gh3456-ovh",
		"to bruno@example.com:",
		"Each email carries a personal validation code",
		"It is not the request id",
		"   | If the link does not work, your validation code is:",
		"   | Example Hosting, contact management",
		"writes in French",
		"Or type a validation code at http://127.0.0.1:",
		"curl -sS -H 'Authorization: Bearer ",
		"/api/v1/requests?nic=ab1234-ovh&status=pending'",
		`"decision":"accept","nic":"ab1234-ovh"}' http://127.0.0.1:`,
		// The hand-over: one email per person, whatever the number of services.
		"6. A hand-over: Alice hands the technical role",
		"5 in all",
		"to karim@example.net: “Kontaktänderung für 5 Dienste",
		"to alice@example.com: “C’est fait\u00a0: les contacts de 5 services ont changé”",
		"to karim@example.net: “Erledigt: Die Kontakte von 5 Diensten wurden geändert”",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	// Subjects are shown as written: Alice's French subject keeps its
	// no-break space, never an escape.
	if !strings.Contains(out.String(), "to alice@example.com: “Changement de contacts pour example.com\u00a0: votre accord est demandé") ||
		strings.Contains(out.String(), `\u00a0`) {
		t.Errorf("the demo does not print the French subject as written:\n%s", out.String())
	}
	if strings.Contains(out.String(), "(ref ") {
		t.Errorf("the demo still calls the code a ref:\n%s", out.String())
	}
	// The history is listed in time order.
	_, hist, _ := strings.Cut(out.String(), "in time order:\n")
	var times []string
	for _, line := range strings.Split(hist, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "UTC" {
			times = append(times, f[0])
		} else {
			break
		}
	}
	if len(times) < 5 || !slices.IsSorted(times) {
		t.Errorf("history times %v: want at least 5, in order", times)
	}
}

func TestEndToEndMetrics(t *testing.T) {
	s := startStack(t, nil)
	r := s.create("example.com", "ab1234-ovh", map[string]string{"tech": "gh3456-ovh"})
	s.email(david, r.ID, "validation")
	wants := []string{"contactd_outbox_dead 0", `contactd_transitions_total{event="created"}`,
		`contactd_emails_total{kind="validation",result="sent"}`, `contactd_requests{status="pending"} 1`,
		`contactd_requests{status="applied"} 0`, `contactd_outbox_entries{state="dead"} 0`, "contactd_smtp_up 1",
		`contactd_build_info{goversion="go`, "contactd_last_send_timestamp_seconds 1", "contactd_smtp_send_duration_seconds_count"}
	// The counts follow the send by a moment: read until they all show.
	var body []byte
	missing := func() bool {
		for _, want := range wants {
			if !strings.Contains(string(body), want) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(s.cfg.HTTP.BaseURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if !missing() {
			break
		}
	}
	for _, want := range wants {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
