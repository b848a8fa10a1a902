package inbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
)

const (
	fixtureToken   = "cgrhbs63s5tiak6g47vuavxzs7a6anu2v"
	fixtureMsgID   = "20260302090000.a1b2c3@contactd.example.com"
	fixtureRequest = "tr5qefvj2j2twi7x"
	replyAddress   = "contacts@example.com"
)

// want is what reading a fixture must give.
type want struct {
	from      string
	decision  workflow.Decision
	problem   string
	token     string
	tokenFrom string
	automatic bool
	bounce    *Bounce
	language  string
	refs      []string
	// text is a piece of the reply's own text that must be read
	// correctly (charsets), and quoted is a piece that must be cut.
	text, quoted string
}

var refs = []string{fixtureMsgID}

var fixtures = map[string]want{
	"gmail_accept.eml": {from: "tom.tech@gmail.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address",
		language: "en", refs: refs, text: "Accept", quoted: "Hello Tom"},
	"outlook_desktop_decline.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "subject",
		language: "en", refs: refs, text: "No.", quoted: "Sent:"},
	"outlook_original_message.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "subject",
		language: "en", text: "DECLINE", quoted: "Original Message"},
	"outlook_web_fr.eml": {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "subject",
		language: "fr", refs: refs, text: "Bien cordialement", quoted: "Envoyé"},
	"apple_mail_iphone_fr.eml": {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address",
		language: "fr", refs: refs, text: "Envoyé de mon iPhone", quoted: "a écrit"},
	"apple_mail_mac_en.eml": {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "subject",
		language: "en", refs: refs, text: "yes", quoted: "wrote"},
	"thunderbird_yes.eml": {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address",
		language: "en", refs: refs, text: "YES!", quoted: "wrote"},
	"phone_signature_fr.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address",
		language: "fr", refs: refs, text: "Refuser.", quoted: "Jean Martin"},
	"html_only.eml": {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "subject",
		language: "en", refs: refs, text: "ACCEPT", quoted: "wrote"},
	"base64_fr.eml": {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "subject",
		language: "fr", refs: refs, text: "Non, merci.", quoted: "a écrit"},
	"base64_non.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "subject",
		language: "fr", refs: refs, text: "NON !", quoted: "a écrit"},
	"iso8859_1_fr.eml": {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address",
		language: "fr", refs: refs, text: "François Hérault", quoted: "a écrit"},
	"windows1252_fr.eml": {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "subject",
		language: "fr", text: "Merci – c’est parfait", quoted: "Message d'origine"},
	"ooo_en.eml": {from: "tech@example.com", automatic: true, refs: refs},
	"ooo_fr.eml": {from: "tech@example.com", automatic: true, refs: refs},
	"bounce_dsn.eml": {from: "mailer-daemon@mx.example.com", automatic: true, bounce: &Bounce{Failed: true,
		MessageIDs: refs, Requests: []string{fixtureRequest}, Tokens: []string{fixtureToken}, Recipients: []string{"new1@example.net"}}},
	"delayed_dsn.eml": {from: "mailer-daemon@mx.example.com", automatic: true, bounce: &Bounce{Failed: false,
		MessageIDs: refs, Requests: []string{fixtureRequest}, Tokens: []string{fixtureToken}, Recipients: []string{"new1@example.net"}}},
	// A read receipt carries our email's headers but tells of no failed delivery.
	"read_receipt_mdn.eml": {from: "new1@example.net", automatic: true},
	"forwarded.eml": {from: "paul@example.org", decision: workflow.Accept, token: fixtureToken, tokenFrom: "subject",
		language: "en", text: "Yes", quoted: "Forwarded"},
	"two_tokens.eml": {from: "tech@example.com", problem: ReasonTwoTokens, token: fixtureToken, tokenFrom: "address",
		language: "en", text: "accept"},
	"two_decisions.eml": {from: "tech@example.com", problem: ReasonTwoDecisions, token: fixtureToken, tokenFrom: "address",
		language: "en", text: "ACCEPT / DECLINE", quoted: "wrote"},
	"no_decision.eml": {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address",
		language: "en", text: "Nora New", quoted: "wrote"},
	"reference_only.eml": {from: "tech@example.com", decision: workflow.Decline, language: "en",
		refs: []string{fixtureMsgID, "older.1@contactd.example.com"}, text: "decline."},
	"no_token.eml": {from: "someone@example.org", decision: workflow.Accept, language: "en", text: "Yes"},
}

func TestReadFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/replies/*.eml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(fixtures) {
		t.Errorf("%d fixture files, %d expectations: every file needs one", len(files), len(fixtures))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			w, ok := fixtures[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkReply(t, Read(raw, replyAddress), w)
		})
	}
}

func checkReply(t *testing.T, r *Reply, w want) {
	t.Helper()
	if got := r.Automatic != ""; got != w.automatic {
		t.Errorf("automatic = %q, want automatic %v", r.Automatic, w.automatic)
	}
	got := want{from: r.From, decision: r.Decision, problem: r.Problem, token: r.Token, tokenFrom: r.TokenFrom,
		automatic: w.automatic, bounce: r.Bounce, language: r.Language, refs: r.References, text: w.text, quoted: w.quoted}
	if diff := cmp.Diff(w, got, cmp.AllowUnexported(want{})); diff != "" {
		t.Errorf("read (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.Text, w.text) {
		t.Errorf("own text %q does not contain %q", r.Text, w.text)
	}
	if w.quoted != "" && strings.Contains(r.Text, w.quoted) {
		t.Errorf("own text %q still has the quoted %q", r.Text, w.quoted)
	}
}

func TestDecisionGrammar(t *testing.T) {
	cases := []struct {
		text    string
		want    workflow.Decision
		problem string
	}{
		{"ACCEPT", workflow.Accept, ""},
		{"  accepter  ", workflow.Accept, ""},
		{"Yes.", workflow.Accept, ""},
		{"oui !!!", workflow.Accept, ""},
		{"\n\n  Valider\nthanks", workflow.Accept, ""},
		{"DECLINE", workflow.Decline, ""},
		{"Refuser...", workflow.Decline, ""},
		{"no", workflow.Decline, ""},
		{"Non.", workflow.Decline, ""},
		{"yes yes", workflow.Accept, ""},
		{"yes / no", "", ReasonTwoDecisions},
		{"ACCEPT or DECLINE", "", ReasonNoDecision},
		{"no problem, I will check", "", ReasonNoDecision},
		{"Yesterday", "", ReasonNoDecision},
		{"", "", ReasonNoDecision},
		{"...yes", "", ReasonNoDecision},
		{"non-stop", "", ReasonNoDecision},
		{"yes 2", "", ReasonNoDecision},
		{"no 1/2", "", ReasonNoDecision},
	}
	for _, c := range cases {
		d, p := decision(c.text)
		if d != c.want || p != c.problem {
			t.Errorf("decision(%q) = %q, %q; want %q, %q", c.text, d, p, c.want, c.problem)
		}
	}
}

func TestAuthenticated(t *testing.T) {
	msg := func(from string, results ...string) *Reply {
		var b strings.Builder
		for _, r := range results {
			b.WriteString("Authentication-Results: " + r + "\r\n")
		}
		b.WriteString("From: " + from + "\r\nSubject: x\r\n\r\nyes\r\n")
		return Read([]byte(b.String()), replyAddress)
	}
	cases := []struct {
		name string
		r    *Reply
		want bool
	}{
		{"dmarc pass", msg("a@example.org", "mx.example.com; dmarc=pass header.from=example.org"), true},
		{"dkim pass own domain", msg("a@example.org", "mx.example.com; dkim=pass header.d=example.org"), true},
		{"dkim pass parent domain", msg("a@mail.example.org", "mx.example.com; dkim=pass header.d=example.org"), true},
		{"dkim pass header.i", msg("a@example.org", "mx.example.com; dkim=pass header.i=@example.org"), true},
		{"dkim pass other domain", msg("a@example.org", "mx.example.com; dkim=pass header.d=evil.example"), false},
		{"dmarc fail", msg("a@example.org", "mx.example.com; dmarc=fail header.from=example.org"), false},
		{"spf only", msg("a@example.org", "mx.example.com; spf=pass smtp.mailfrom=example.org"), false},
		{"other server", msg("a@example.org", "mx.evil.example; dmarc=pass header.from=example.org"), false},
		{"topmost of ours wins", msg("a@example.org", "mx.example.com; dmarc=fail header.from=example.org",
			"mx.example.com; dmarc=pass header.from=example.org"), false},
		{"forged below ours", msg("a@example.org", "mx.example.com; dmarc=pass header.from=example.org",
			"mx.example.com; dmarc=fail header.from=example.org"), true},
		{"ours unreadable, forged pass below", msg("a@example.org", "mx.example.com; dmarc=pass header.from=example.org; x y z",
			"mx.example.com; dmarc=pass header.from=example.org"), false},
		{"none", msg("a@example.org"), false},
	}
	for _, c := range cases {
		if got := c.r.Authenticated("mx.example.com"); got != c.want {
			t.Errorf("%s: authenticated = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAutomaticHeaders(t *testing.T) {
	cases := map[string]bool{
		"Auto-Submitted: no":              false,
		"Auto-Submitted: auto-replied":    true,
		"Precedence: bulk":                true,
		"Precedence: list":                true,
		"Precedence: first-class":         false,
		"X-Autoreply: yes":                true,
		"X-Autorespond: 1":                true,
		"Return-Path: <>":                 true,
		"Return-Path: <tech@example.com>": false,
	}
	for h, want := range cases {
		raw := "From: tech@example.com\r\n" + h + "\r\nSubject: x\r\n\r\nyes\r\n"
		if got := Read([]byte(raw), replyAddress).Automatic != ""; got != want {
			t.Errorf("%s: automatic = %v, want %v", h, got, want)
		}
	}
}

func TestReadHeaderOfLargeMessage(t *testing.T) {
	raw := "From: Tom <tech@example.com>\r\nSubject: Re: x\r\nMessage-ID: <big@x>\r\n\r\nyes\r\n" + strings.Repeat("x", 100)
	r := ReadHeader([]byte(raw[:80]))
	if r.Problem != ReasonTooLarge || r.From != "tech@example.com" || r.MessageID != "big@x" {
		t.Errorf("header of a large message = %+v", r)
	}
	auto := ReadHeader([]byte("From: x@example.com\r\nAuto-Submitted: auto-replied\r\n\r\n"))
	if auto.Automatic == "" || auto.Problem != "" {
		t.Errorf("a large automatic message must read as automatic: %+v", auto)
	}
}

func TestUnreadable(t *testing.T) {
	for _, raw := range []string{"", "\x00\x01", "no colon here\r\n\r\n", "From: x\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"} {
		r := Read([]byte(raw), replyAddress)
		if r.Decision != "" {
			t.Errorf("Read(%q) found a decision %q", raw, r.Decision)
		}
	}
}

// FuzzRead feeds the reader arbitrary messages; the seeds in
// testdata/fuzz/FuzzRead and the reply fixtures run in every test run.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/replies/*.eml")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := Read(raw, replyAddress)
		if r.Decision != "" && r.Problem != "" && r.Problem != ReasonTwoTokens {
			t.Errorf("decision %q with problem %q", r.Decision, r.Problem)
		}
		if r.Token != "" {
			if _, ok := workflow.NormalizeToken(r.Token); !ok {
				t.Errorf("token %q has not the shape of a token", r.Token)
			}
		}
		_ = ReadHeader(raw)
		_ = r.Authenticated("mx.example.com")
	})
}
