package mailer

import (
	"bytes"
	"context"
	"net/mail"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/templates"
	"contactd/workflow"
)

// autoHeaders are the automatic-mail headers of a written message.
type autoHeaders struct {
	AutoSubmitted, Suppress string
}

func readAutoHeaders(t *testing.T, raw []byte) autoHeaders {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message does not parse: %v", err)
	}
	return autoHeaders{msg.Header.Get("Auto-Submitted"), msg.Header.Get("X-Auto-Response-Suppress")}
}

// A reply not understood answers a message (RFC 3834 auto-replied); the
// other emails are sent on their own (auto-generated). Exchange is asked
// to hold back out-of-office and automatic replies, not the delivery
// reports that tell an approver is undeliverable.
func TestAutomaticHeaders(t *testing.T) {
	m, snd, _, _ := mailerAndSink(t)
	for _, tc := range []struct {
		kind string
		want autoHeaders
	}{
		{"not_understood", autoHeaders{"auto-replied", "OOF, AutoReply"}},
		{"validation", autoHeaders{"auto-generated", "OOF, AutoReply"}},
		{"reminder", autoHeaders{"auto-generated", "OOF, AutoReply"}},
		{"recorded", autoHeaders{"auto-generated", "OOF, AutoReply"}},
		{"applied", autoHeaders{"auto-generated", "OOF, AutoReply"}},
		{"informed", autoHeaders{"auto-generated", "OOF, AutoReply"}},
		{"undeliverable", autoHeaders{"auto-generated", "OOF, AutoReply"}},
		{"disputed", autoHeaders{"auto-generated", "OOF, AutoReply"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			l := &letter{kind: workflow.Kind(tc.kind), to: "zed@example.net", toName: "Zed", request: "r1"}
			if workflow.Kind(tc.kind).CarriesToken() {
				l.token = "abcdefghijklmnopqrstuvwxyz2345672"
			}
			msg, _, err := m.buildMsg(l, testEntry(tc.kind, "r1"),
				&templates.Email{Subject: "s", Text: "t", HTML: "<p>h</p>"})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := snd.write(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := readAutoHeaders(t, raw); got != tc.want {
				t.Errorf("headers %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The not_understood email as received: an automatic reply, threaded
// under the message it answers.
func TestNotUnderstoodIsAnAutoReply(t *testing.T) {
	s := newStore(t, redistest.Mini(t))
	srv := startSink(t, "")
	const parent = "<question.1@client.example>"
	if err := s.Enqueue(context.Background(), workflow.Message{Kinds: []workflow.Kind{"not_understood"}, To: "x@example.net",
		Reason: "no_token", InReplyTo: parent}); err != nil {
		t.Fatal(err)
	}
	start(t, newMailer(t, s, testConfig(srv.port()), 1))
	waitDrained(t, s, 10*time.Second)
	if len(srv.received()) != 1 {
		t.Fatalf("received %d emails, want 1", len(srv.received()))
	}
	raw := srv.received()[0]
	if got, want := readAutoHeaders(t, raw), (autoHeaders{"auto-replied", "OOF, AutoReply"}); got != want {
		t.Errorf("headers %+v, want %+v", got, want)
	}
	if got := headerValue(raw, "In-Reply-To"); got != parent {
		t.Errorf("In-Reply-To = %q, want %q", got, parent)
	}
	if got := headerValue(raw, "References"); got != parent {
		t.Errorf("References = %q, want %q", got, parent)
	}
}
