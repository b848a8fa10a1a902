package inbox

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"contactd/internal/redistest"
)

// A delivery report counts only when it comes from a mail system (empty
// Return-Path) and names one of our emails sent to the address it
// reports; anything else is filed without effect.
func TestOnlyRealBouncesCount(t *testing.T) {
	raw, err := os.ReadFile("testdata/replies/bounce_dsn.eml")
	if err != nil {
		t.Fatal(err)
	}
	genuine := strings.ReplaceAll(string(raw), "new1@example.net", "admin0@example.com")
	cases := []struct {
		name          string
		msg           string
		recorded      bool // our email with the report's Message-ID was sent to approver 0
		undeliverable bool
	}{
		{"genuine", genuine, true, true},
		{"Return-Path not empty", strings.Replace(genuine, "Return-Path: <>", "Return-Path: <mallory@example.org>", 1), true, false},
		{"no Return-Path", strings.Replace(genuine, "Return-Path: <>\r\n", "", 1), true, false},
		{"Message-ID we never sent", genuine, false, false},
		{"other recipient", string(raw), true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := redistest.Mini(t)
			w := newWorld(t, b, 1)
			if c.recorded {
				c.msg = strings.ReplaceAll(c.msg, fixtureMsgID, w.sent(t, 0))
			}
			if !strings.Contains(c.msg, "\r\n") {
				c.msg = strings.ReplaceAll(c.msg, "\n", "\r\n")
			}
			o, err := newActor(t, w).act(context.Background(), Read([]byte(c.msg), "contacts@example.com"), "test")
			if err != nil || o != Ignored {
				t.Fatalf("act = %q, %v; want ignored", o, err)
			}
			if got := w.request(t, 0).Approvals["ad0-ovh"].Undeliverable; got != c.undeliverable {
				t.Errorf("approver undeliverable = %v, want %v", got, c.undeliverable)
			}
			if got := len(outboxOf(t, w, "undeliverable")); got != map[bool]int{true: 1, false: 0}[c.undeliverable] {
				t.Errorf("%d notices to the requester queued", got)
			}
			if nu := outboxOf(t, w, "not_understood"); len(nu) != 0 {
				t.Errorf("a delivery report was answered: %+v", nu)
			}
		})
	}
}

// Spam from forged senders to the reply address is filed as rejected and
// never answered; a contact of the directory, or a sender naming one of
// our tokens, is answered once.
func TestNoBackscatter(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		w := newWorld(t, b, 1)
		a := newActor(t, w)
		ctx := context.Background()
		for i := 0; i < 20; i++ {
			spam := fmt.Sprintf("From: Winner <winner%d@spam.example>\r\nTo: contacts@example.com\r\n"+
				"Subject: You won\r\nMessage-ID: <spam%d@spam.example>\r\n\r\nClick here\r\n", i, i)
			o, err := a.act(ctx, Read([]byte(spam), "contacts@example.com"), "test")
			if err != nil || o != Rejected {
				t.Fatalf("spam %d: act = %q, %v; want rejected", i, o, err)
			}
		}
		if nu := outboxOf(t, w, "not_understood"); len(nu) != 0 {
			t.Fatalf("forged senders were answered: %d emails", len(nu))
		}
		// A contact of the directory writing without a token is told.
		known := "From: Tech 0 <TECH0@example.com>\r\nTo: contacts@example.com\r\nSubject: hello\r\n" +
			"Message-ID: <k1@example.com>\r\n\r\nyes\r\n"
		if o, err := a.act(ctx, Read([]byte(known), "contacts@example.com"), "test"); err != nil || o != Rejected {
			t.Fatalf("known sender: act = %q, %v", o, err)
		}
		// A stranger who names one of our tokens is told too (wrong sender).
		stranger := reply(0, w.tokens[0], "yes", "s1@example.org")
		stranger = strings.Replace(stranger, "Admin 0 <admin0@example.com>", "Mallory <mallory@example.org>", 1)
		if o, err := a.act(ctx, Read([]byte(stranger), "contacts@example.com"), "test"); err != nil || o != Rejected {
			t.Fatalf("stranger with a token: act = %q, %v", o, err)
		}
		nu := outboxOf(t, w, "not_understood")
		var to []string
		for _, m := range nu {
			to = append(to, m.To)
		}
		if len(nu) != 2 || !strings.Contains(strings.Join(to, " "), "tech0@example.com") ||
			!strings.Contains(strings.Join(to, " "), "mallory@example.org") {
			t.Errorf("not_understood sent to %v, want the known contact and the sender naming our token", to)
		}
	})
}
