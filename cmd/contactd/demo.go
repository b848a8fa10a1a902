package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"contactd/config"
	"contactd/examples"
	"contactd/internal/mailhub"
	"contactd/templates"
	"contactd/workflow"
)

// demoMailbox is the daemon's own account on the demo's mail system.
const (
	demoMailbox  = "contacts@example.com"
	demoPassword = "demo"
	stepTimeout  = 30 * time.Second
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newPlainFlags("demo")
	listen := f.String("listen", "127.0.0.1:8080", "host:port `ADDR` of the validation pages")
	exit := f.Bool("exit", false, "stop after the walkthrough instead of serving")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("demo: %w (choose another address with --listen 127.0.0.1:PORT)", err)
	}
	hub, err := mailhub.Start()
	if err != nil {
		ln.Close()
		return err
	}
	defer hub.Close()
	hub.AddUser(demoMailbox, demoPassword)
	cfg, err := demoConfig(hub, ln.Addr().String())
	if err != nil {
		ln.Close()
		return err
	}
	all := map[string]bool{"http": true, "mailer": true, "inbox": true, "scheduler": true}
	d, err := newDaemon(cfg, daemonOptions{components: all, listener: ln}, newLogger(stderr, "warn", "text"))
	if err != nil {
		return err
	}
	defer d.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() { stop(); <-done }()

	demo := &walkthrough{out: stdout, hub: hub, store: d.Store(), base: cfg.HTTP.BaseURL}
	if err := demo.run(ctx); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := demo.serve(ctx, cfg.HTTP.APITokens[0]); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if *exit {
		return nil
	}
	w := demo
	w.say("Ctrl-C stops the demo.")
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nStopped.")
	return nil
}

// demoConfig is the configuration of the demo: embedded Redis, the
// in-process mail servers, short polling and sweeps.
func demoConfig(hub *mailhub.Hub, httpAddr string) (config.Config, error) {
	cfg := config.Default()
	cfg.Redis.Embedded = true
	shost, sport, _ := net.SplitHostPort(hub.SMTPAddr)
	ihost, iport, _ := net.SplitHostPort(hub.IMAPAddr)
	cfg.SMTP.Host, cfg.SMTP.TLS, cfg.SMTP.From = shost, "none", "Example Hosting <"+demoMailbox+">"
	cfg.SMTP.Port, _ = strconv.Atoi(sport)
	cfg.IMAP.Host, cfg.IMAP.TLS = ihost, "none"
	cfg.IMAP.Port, _ = strconv.Atoi(iport)
	cfg.IMAP.Username, cfg.IMAP.Password = demoMailbox, demoPassword
	cfg.IMAP.ReplyAddress = demoMailbox
	cfg.IMAP.PollInterval = config.Duration(time.Second)
	cfg.HTTP.Listen = httpAddr
	cfg.HTTP.BaseURL = "http://" + httpAddr
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	cfg.HTTP.APITokens = []string{hex.EncodeToString(b)}
	cfg.Schedule.Sweep = "@every 2s"
	cfg.Branding.Name, cfg.Branding.SupportURL = "Example Hosting", "https://www.example.com/help/contacts"
	cfg.Workflow.Timezone = "Europe/Paris"
	return cfg, cfg.Validate()
}

// walkthrough drives the demo's scenario as its people would: by email
// and through the links.
type walkthrough struct {
	out   io.Writer
	hub   *mailhub.Hub
	store *workflow.Store
	base  string
}

func (w *walkthrough) say(format string, args ...any) { fmt.Fprintf(w.out, format+"\n", args...) }

// quoted shows a subject as its reader sees it, between quotes: its
// letters and no-break spaces as they are (Go's %q would write French
// subjects' no-break spaces as \u00a0), reduced to one line.
func quoted(subject string) string { return "“" + templates.OneLine(subject) + "”" }

func (w *walkthrough) run(ctx context.Context) error {
	st := w.store
	d, err := st.Import(ctx, examples.Directory)
	if err != nil {
		return err
	}
	w.say("contactd demo: Redis, SMTP and IMAP servers run inside this process; nothing is kept.")
	w.say("Directory loaded: %d contacts, %d services (examples/directory.yaml).\n", len(d.Contacts), len(d.Services))

	w.say("1. Alice Martin (ab1234-ovh), admin of example.com, asks to make David New (gh3456-ovh)")
	w.say("   its technical contact instead of Bruno Tech (cd5678-ovh).")
	r, err := st.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ab1234-ovh",
		Changes: map[string]string{"tech": "gh3456-ovh"}}, workflow.CLI)
	if err != nil {
		return err
	}
	w.say("   Request %s is %s; it needs %s to agree; %s will be told.\n", r.ID, r.Status,
		strings.Join(r.Approvers(), " and "), strings.Join(r.Informed, ", "))

	w.say("2. contactd emails each of them a personal link:")
	david, err := w.waitEmail(ctx, "david@example.org", r.ID, "validation")
	if err != nil {
		return err
	}
	alice, err := w.waitEmail(ctx, "alice@example.com", r.ID, "validation")
	if err != nil {
		return err
	}
	w.say("   to david@example.org: %s", quoted(david.Subject))
	w.say("   to alice@example.com: %s\n", quoted(alice.Subject))
	w.say("   Each email carries a personal validation code (also the end of its link), shown")
	w.say("   grouped for typing: David's is %s, Alice's %s.", templates.GroupCode(tokenOf(david.Link)), templates.GroupCode(tokenOf(alice.Link)))
	w.say("   It is not the request id (%s), which names the request for everyone.", r.ID)
	w.say("   David's email, as his mail client shows its text part:\n")
	for _, line := range strings.Split(strings.TrimRight(david.Text, "\r\n"), "\n") {
		w.say("   | %s", strings.TrimRight(line, "\r"))
	}
	w.say("")

	w.say("3. David answers from his mail client: he replies \"ACCEPT\" above the quoted email.")
	if err := w.reply(david, "david@example.org", "ACCEPT"); err != nil {
		return err
	}
	if _, err := w.waitRequest(ctx, r.ID, func(r *workflow.Request) bool { return r.Approvals["gh3456-ovh"].Status == "accepted" }); err != nil {
		return fmt.Errorf("the reply was not acted on: %w", err)
	}
	w.say("   contactd read the reply from its mailbox: gh3456-ovh accepted, by email.\n")

	w.say("4. Alice opens the link in her email and clicks Accept:")
	w.say("   %s", alice.Link)
	if err := w.click(ctx, alice.Link, "accept"); err != nil {
		return err
	}
	final, err := w.waitRequest(ctx, r.ID, func(r *workflow.Request) bool { return r.Status == workflow.Applied })
	if err != nil {
		return err
	}
	svc, err := st.GetService(ctx, "example.com")
	if err != nil {
		return err
	}
	w.say("   The request is %s: example.com's technical contact is now %s.\n", final.Status, svc.Tech)

	w.say("5. Everyone is told:")
	for _, to := range []struct{ addr, kind string }{{"alice@example.com", "applied"}, {"david@example.org", "applied"}, {"bruno@example.com", "informed"}} {
		m, err := w.waitEmail(ctx, to.addr, r.ID, to.kind)
		if err != nil {
			return err
		}
		w.say("   to %s: %s", to.addr, quoted(m.Subject))
	}
	w.say("\n   History of %s, in time order:", r.ID)
	history := slices.Clone(final.History)
	sort.SliceStable(history, func(i, j int) bool { return history[i].At.Before(history[j].At) })
	for _, e := range history {
		w.say("   %s  %-9s %-11s %s", e.At.UTC().Format("15:04:05.000 UTC"), e.Event, e.NIC, e.Channel)
	}
	return w.handover(ctx)
}

// handover walks through a hand-over: one change on every service of a
// contact, decided once by each person, whatever the number of services.
func (w *walkthrough) handover(ctx context.Context) error {
	w.say("\n6. A hand-over: Alice hands the technical role of every service she administers to")
	w.say("   Karim Neu (kl1122-ovh, writes in German), in one go instead of one request each.")
	h, err := w.store.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ab1234-ovh",
		Changes: map[string]string{"tech": "kl1122-ovh"}}, workflow.CLI, "")
	if err != nil {
		return err
	}
	var services []string
	for _, r := range h.Requests {
		services = append(services, r.Service)
	}
	w.say("   Hand-over %s makes one request per service, %d in all, each checked by the", h.ID, len(services))
	w.say("   rules on its own:")
	w.say("     %s", strings.Join(services, ", "))
	w.say("   Alice and Karim get one email each, with one code for all:")
	karim, err := w.waitEmail(ctx, "karim@example.net", h.ID, "validation")
	if err != nil {
		return err
	}
	alice, err := w.waitEmail(ctx, "alice@example.com", h.ID, "validation")
	if err != nil {
		return err
	}
	w.say("   to karim@example.net: %s", quoted(karim.Subject))
	w.say("   to alice@example.com: %s", quoted(alice.Subject))
	w.say("   Karim opens his link, which lists every service, and clicks Accept once; Alice")
	w.say("   replies \"OUI\" to her email.")
	if err := w.click(ctx, karim.Link, "accept"); err != nil {
		return err
	}
	if err := w.reply(alice, "alice@example.com", "OUI"); err != nil {
		return err
	}
	deadline := time.Now().Add(stepTimeout)
	for {
		got, err := w.store.GetHandover(ctx, h.ID)
		if err != nil {
			return err
		}
		if got.Status == string(workflow.Applied) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hand-over %s is still %s after %s", h.ID, got.Status, stepTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.say("   Applied, each request on its own service. The emails that follow are one per")
	w.say("   person, not one per service:")
	for _, to := range []struct{ addr, kind string }{{"alice@example.com", "applied"}, {"karim@example.net", "applied"},
		{"bruno@example.com", "informed"}, {"david@example.org", "informed"}} {
		m, err := w.waitEmail(ctx, to.addr, h.ID, to.kind)
		if err != nil {
			return err
		}
		w.say("   to %s: %s", to.addr, quoted(m.Subject))
	}
	return nil
}

// serve opens a second request and prints its links, and how to answer
// it by code through the API, for a person to try.
func (w *walkthrough) serve(ctx context.Context, apiToken string) error {
	r, err := w.store.Create(ctx, workflow.Ask{Service: "hosting-42", Requester: "ef9012-ovh",
		Changes: map[string]string{"tech": "ab1234-ovh"}}, workflow.CLI)
	if err != nil {
		return err
	}
	w.say("\nNow serving at %s. A second request (%s) waits for you: Carla Billing", w.base, r.ID)
	w.say("(ef9012-ovh, writes in English), admin of hosting-42, names Alice Martin (ab1234-ovh,")
	w.say("writes in French) its technical contact. Each page speaks its reader's language.")
	codes := map[string]string{}
	for _, p := range []struct{ who, addr string }{{"Carla", "carla@example.net"}, {"Alice", "alice@example.com"}} {
		m, err := w.waitEmail(ctx, p.addr, r.ID, "validation")
		if err != nil {
			return err
		}
		codes[p.who] = templates.GroupCode(tokenOf(m.Link))
		w.say("  open as %s: %s   (validation code %s)", p.who, m.Link, codes[p.who])
	}
	w.say("Or type a validation code at %s/v.", w.base)
	w.say("\nThe control panel's side, through the API (token %s):", apiToken)
	w.say("  # My requests: what Alice has to answer")
	w.say("  curl -sS -H 'Authorization: Bearer %s' '%s/api/v1/requests?nic=ab1234-ovh&status=pending'", apiToken, w.base)
	w.say("  # Alice types her code in the panel, which passes it on")
	w.say("  curl -sS -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\", apiToken)
	w.say("    -d '{\"token\":\"%s\",\"decision\":\"accept\",\"nic\":\"ab1234-ovh\"}' %s/api/v1/decisions", codes["Alice"], w.base)
	return nil
}

// tokenOf is the token at the end of a validation link.
func tokenOf(link string) string { return link[strings.LastIndexByte(link, '/')+1:] }

// email is what the demo reads of a received message.
type email struct {
	Subject, MessageID, ReplyTo, Kind, Request, Text, Link string
}

var linkRe = regexp.MustCompile(`https?://[^\s"<>]+/v/[a-z2-7]{33}`)

// readEmail parses a message and finds its text part and validation link.
func readEmail(data []byte) (*email, error) {
	mr, err := mail.CreateReader(strings.NewReader(string(data)))
	if err != nil {
		return nil, err
	}
	h := mr.Header
	e := &email{Kind: h.Get("X-Contactd-Kind"), Request: h.Get("X-Contactd-Request"), MessageID: h.Get("Message-Id")}
	if e.Request == "" {
		e.Request = h.Get("X-Contactd-Handover")
	}
	e.Subject, _ = h.Subject()
	if l, err := h.AddressList("Reply-To"); err == nil && len(l) > 0 {
		e.ReplyTo = l[0].Address
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if ih, ok := p.Header.(*mail.InlineHeader); ok {
			if ct, _, _ := ih.ContentType(); ct == "text/plain" {
				b, _ := io.ReadAll(p.Body)
				e.Text = string(b)
			}
		}
	}
	e.Link = linkRe.FindString(e.Text)
	return e, nil
}

// waitEmail waits for the email of a kind about a request in a mailbox.
func (w *walkthrough) waitEmail(ctx context.Context, addr, id, kind string) (*email, error) {
	var found *email
	_, err := w.hub.Wait(addr, stepTimeout, func(m mailhub.Message) bool {
		e, err := readEmail(m.Data)
		if err != nil || e.Request != id || e.Kind != kind {
			return false
		}
		found = e
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("no %s email about %s reached %s: %w", kind, id, addr, err)
	}
	return found, nil
}

// reply sends an answer to an email as a mail client would: to its
// Reply-To, threaded, with the original quoted below the answer.
func (w *walkthrough) reply(to *email, from, answer string) error {
	var quoted strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(to.Text), "\n") {
		quoted.WriteString("> " + strings.TrimRight(line, "\r") + "\r\n")
	}
	msg := "From: " + from + "\r\n" +
		"To: " + to.ReplyTo + "\r\n" +
		"Subject: Re: " + to.Subject + "\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		"Message-ID: <" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.org>\r\n" +
		"In-Reply-To: <" + to.MessageID + ">\r\n" +
		"References: <" + to.MessageID + ">\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		answer + "\r\n\r\nOn " + time.Now().Format("Mon, 2 Jan 2006 at 15:04") + ", Example Hosting wrote:\r\n" + quoted.String()
	return w.hub.Deliver(from, []string{to.ReplyTo}, []byte(msg))
}

// click submits the validation page's form as the browser would.
func (w *walkthrough) click(ctx context.Context, link, decision string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, link, strings.NewReader(url.Values{"decision": {decision}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", link, resp.Status)
	}
	return nil
}

// waitRequest polls a request until ok holds for it.
func (w *walkthrough) waitRequest(ctx context.Context, id string, ok func(*workflow.Request) bool) (*workflow.Request, error) {
	deadline := time.Now().Add(stepTimeout)
	for {
		r, err := w.store.Get(ctx, id)
		if err == nil && ok(r) {
			return r, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("request %s is %s", id, r.Status)
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
