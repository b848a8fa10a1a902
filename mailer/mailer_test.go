package mailer

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/emersion/go-message/mail"
)

// parsed is a received email read back with go-message.
type parsed struct {
	raw                  []byte
	h                    mail.Header
	to, replyTo, subject string
	text, html           string
	textCTE, htmlCTE     string
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, raw)
	}
	p := parsed{raw: raw, h: r.Header}
	if mt, _, _ := r.Header.ContentType(); mt != "multipart/alternative" {
		t.Errorf("Content-Type = %s, want multipart/alternative", mt)
	}
	to, _ := r.Header.AddressList("To")
	rt, _ := r.Header.AddressList("Reply-To")
	if len(to) != 1 || len(rt) != 1 {
		t.Fatalf("To = %v, Reply-To = %v: want one address each", to, rt)
	}
	p.to, p.replyTo = to[0].Address, rt[0].Address
	p.subject, _ = r.Header.Subject()
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ih := part.Header.(*mail.InlineHeader)
		mt, params, _ := ih.ContentType()
		if !strings.EqualFold(params["charset"], "utf-8") {
			t.Errorf("%s part charset = %q, want UTF-8", mt, params["charset"])
		}
		body, _ := io.ReadAll(part.Body)
		switch mt {
		case "text/plain":
			p.text, p.textCTE = string(body), ih.Get("Content-Transfer-Encoding")
		case "text/html":
			p.html, p.htmlCTE = string(body), ih.Get("Content-Transfer-Encoding")
		}
	}
	return p
}

var tokenRe = regexp.MustCompile(`\+([a-z2-7]{33})@`)

func TestEmailsAsReceived(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b)
		srv := startSink(t, "")
		cfg := testConfig(srv.port())
		m := newMailer(t, s, cfg, 2)
		r, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
			Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API)
		if err != nil {
			t.Fatal(err)
		}
		start(t, m)
		waitDrained(t, s, 10*time.Second)

		byTo := map[string]parsed{}
		for _, raw := range srv.received() {
			p := parse(t, raw)
			byTo[p.to] = p
		}
		if len(byTo) != 2 {
			t.Fatalf("received %d emails, want the 2 validations", len(srv.received()))
		}
		root := "<" + r.ID + ".request@example.com>"
		tokens := map[string]string{}
		for addr, nic := range map[string]string{"admin@example.com": "ad1-ovh", "new1@example.net": "nw1-ovh"} {
			p, ok := byTo[addr]
			if !ok {
				t.Fatalf("no email to %s", addr)
			}
			checkCommonHeaders(t, p, r.ID, "validation", root)
			mt := tokenRe.FindStringSubmatch(p.replyTo)
			if mt == nil || !strings.HasPrefix(p.replyTo, "contacts+") || !strings.HasSuffix(p.replyTo, "@example.com") {
				t.Fatalf("Reply-To = %q, want contacts+TOKEN@example.com", p.replyTo)
			}
			tok := mt[1]
			tokens[nic] = tok
			if !strings.Contains(p.subject, tok) || !strings.Contains(p.text, tok) || !strings.Contains(p.html, tok) {
				t.Errorf("%s: token missing from the subject, the text or the HTML", addr)
			}
			link := "https://contacts.example.com/v/" + tok
			if !strings.Contains(p.text, link) || !strings.Contains(p.html, `href="`+link+`"`) {
				t.Errorf("%s: link %s missing from a part", addr, link)
			}
			got, gotNIC, err := s.LookupToken(ctx, tok)
			if err != nil || got.ID != r.ID || gotNIC != nic {
				t.Errorf("LookupToken(token sent to %s) = %v, %q, %v; want request %s, %s", addr, got, gotNIC, err, r.ID, nic)
			}
			sent, err := s.LookupSent(ctx, p.h.Get("Message-Id"))
			if err != nil || sent == nil || sent.Request != r.ID || sent.NIC != nic || sent.Kind != workflow.KindValidation ||
				sent.TokenHash != workflow.HashToken(tok) {
				t.Errorf("sent-message record of %s = %+v, %v", addr, sent, err)
			}
			if strings.Contains(string(p.raw), "h="+workflow.HashToken(tok)) {
				t.Errorf("hash leaked into the message")
			}
		}
		if en, fr := byTo["admin@example.com"], byTo["new1@example.net"]; !strings.HasPrefix(en.subject, "Change of contacts") ||
			!strings.HasPrefix(fr.subject, "Changement de contacts") || !strings.Contains(fr.text, "contact technique") {
			t.Errorf("languages: en subject %q, fr subject %q", en.subject, fr.subject)
		}

		// Both accept: recorded, applied, informed and the event follow,
		// all in the same thread.
		for _, nic := range []string{"nw1-ovh", "ad1-ovh"} {
			if _, err := s.Decide(ctx, tokens[nic], workflow.Accept, workflow.Web); err != nil {
				t.Fatal(err)
			}
		}
		m.Kick()
		waitDrained(t, s, 10*time.Second)
		var kinds []string
		for _, raw := range srv.received()[2:] {
			p := parse(t, raw)
			kind := p.h.Get("X-Contactd-Kind")
			kinds = append(kinds, kind+" "+p.to)
			checkCommonHeaders(t, p, r.ID, kind, root)
			if kind == "informed" {
				tok := regexp.MustCompile(`/r/([a-z2-7]{33})`).FindStringSubmatch(p.text)
				if tok == nil {
					t.Fatalf("informed email without a /r/ link:\n%s", p.text)
				}
				if _, nic, err := s.LookupReport(ctx, tok[1]); err != nil || nic != "te1-ovh" {
					t.Errorf("LookupReport = %q, %v", nic, err)
				}
				if p.replyTo != "contacts@example.com" {
					t.Errorf("informed Reply-To = %q, want the plain reply address", p.replyTo)
				}
			}
		}
		mids := map[string]bool{}
		for _, raw := range srv.received() {
			p := parse(t, raw)
			mid := p.h.Get("Message-Id")
			if mids[mid] {
				t.Errorf("Message-ID %s used twice", mid)
			}
			mids[mid] = true
		}
		sort.Strings(kinds)
		want := []string{"applied admin@example.com", "applied new1@example.net", "informed tech@example.com",
			"recorded admin@example.com", "recorded new1@example.net"}
		if strings.Join(kinds, "|") != strings.Join(want, "|") {
			t.Errorf("emails after both accepts:\n got %v\nwant %v", kinds, want)
		}
		ev, err := b.Client.XRange(ctx, workflow.Keys{Prefix: b.Prefix}.Events(), "-", "+").Result()
		if err != nil || len(ev) != 1 || ev[0].Values["event"] != "applied" || ev[0].Values["request"] != r.ID ||
			!strings.Contains(ev[0].Values["json"].(string), `"status":"applied"`) {
			t.Errorf("events stream = %v, %v; want one applied entry with the request's JSON", ev, err)
		}
		if m.LastSend().IsZero() {
			t.Errorf("LastSend is zero after sending")
		}
	})
}

func checkCommonHeaders(t *testing.T, p parsed, id, kind, root string) {
	t.Helper()
	h := p.h
	for name, want := range map[string]string{
		"Auto-Submitted":           "auto-generated",
		"X-Auto-Response-Suppress": "OOF, AutoReply", "X-Contactd-Request": id, "X-Contactd-Kind": kind,
		"In-Reply-To": root, "References": root, "Mime-Version": "1.0",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s email to %s: %s = %q, want %q", kind, p.to, name, got, want)
		}
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != "Contacts" ||
		from[0].Address != "contacts@example.com" {
		t.Errorf("From = %v, %v; want Contacts <contacts@example.com>", from, err)
	}
	mid := h.Get("Message-Id")
	if !strings.HasPrefix(mid, "<"+id+".") || !strings.HasSuffix(mid, "@example.com>") {
		t.Errorf("Message-ID = %q, want <%s...@example.com>", mid, id)
	}
	// A reply quoting the Message-ID of an email with an approver's token
	// acts as the token: the Message-ID names the token's reference, which
	// no other email of the request shows.
	if got, want := nonceRe.MatchString(mid), workflow.Kind(kind).CarriesToken(); got != want {
		t.Errorf("%s email: Message-ID %q has a random part: %v, want %v", kind, mid, got, want)
	}
	if d, err := h.Date(); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date = %v, %v", d, err)
	}
	if p.text == "" || p.html == "" {
		t.Errorf("%s email to %s: missing a part", kind, p.to)
	}
	if !strings.EqualFold(p.textCTE, "quoted-printable") || !strings.EqualFold(p.htmlCTE, "quoted-printable") {
		t.Errorf("%s email: transfer encodings %q, %q; want quoted-printable", kind, p.textCTE, p.htmlCTE)
	}
}

// A "this wasn't me" report reaches the security contact and the stream.
func TestDisputeReachesSecurityContact(t *testing.T) {
	ctx := context.Background()
	b := redistest.Mini(t)
	s := newStore(t, b)
	srv := startSink(t, "")
	m := newMailer(t, s, testConfig(srv.port()), 1)
	start(t, m)
	r, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
		Changes: map[string]string{"billing": "ad1-ovh"}}, workflow.API)
	if err != nil {
		t.Fatal(err)
	}
	waitDrained(t, s, 10*time.Second)
	tok := tokenRe.FindStringSubmatch(headerValue(srv.received()[0], "Reply-To"))
	if tok == nil {
		t.Fatal("no token in the validation email")
	}
	if _, err := s.Decide(ctx, tok[1], workflow.Accept, workflow.Email); err != nil {
		t.Fatal(err)
	}
	m.Kick()
	waitDrained(t, s, 10*time.Second)
	var report string
	for _, raw := range srv.received() {
		if headerValue(raw, "X-Contactd-Kind") == "informed" {
			if mt := regexp.MustCompile(`/r/([a-z2-7]{33})`).FindSubmatch(raw); mt != nil {
				report = string(mt[1])
			}
		}
	}
	if report == "" {
		t.Fatal("no informed email with a report link")
	}
	if _, _, err := s.Dispute(ctx, report, workflow.Web); err != nil {
		t.Fatal(err)
	}
	m.Kick()
	waitDrained(t, s, 10*time.Second)
	var found bool
	for _, raw := range srv.received() {
		if headerValue(raw, "X-Contactd-Kind") != "disputed" {
			continue
		}
		found = true
		p := parse(t, raw)
		if p.to != "security@example.com" || !strings.Contains(p.text, "Bob Billing (bi1-ovh)") || !strings.Contains(p.subject, r.ID) {
			t.Errorf("disputed email to %s, subject %q:\n%s", p.to, p.subject, p.text)
		}
		if p.h.Get("X-Contactd-Request") != r.ID {
			t.Errorf("disputed email not tied to its request")
		}
	}
	if !found {
		t.Error("no disputed email sent to the security contact")
	}
	ev, _ := b.Client.XRange(ctx, workflow.Keys{Prefix: b.Prefix}.Events(), "-", "+").Result()
	if len(ev) != 2 || ev[1].Values["event"] != "disputed" {
		t.Errorf("events = %v, want applied then disputed", ev)
	}
}
