package inbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"contactd/locale"
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
		language: "fr", refs: refs, text: "Oui", quoted: "Envoyé de mon iPhone"},
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
	// Replies written under the quote or inline, replies with nothing typed
	// above an original, and the markers of other languages and clients.
	// The quoted piece must be cut from the reply's own text.
	"bottom_posted_thunderbird.eml":           {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "ACCEPT", quoted: "Hello Tom"},
	"bottom_posted_mutt_fr.eml":               {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "fr", refs: refs, text: "Oui.", quoted: "a écrit"},
	"inline_reply.eml":                        {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "I will call Alice about it.", quoted: "Reference:"},
	"inline_decision.eml":                     {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "No", quoted: "asked to change"},
	"nothing_typed_quote_says_accept.eml":     {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, quoted: "ACCEPT"},
	"nothing_typed_original_message.eml":      {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, quoted: "ACCEPT"},
	"nothing_typed_outlook_rule.eml":          {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", refs: refs, quoted: "Yes"},
	"nothing_typed_signature_only.eml":        {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, quoted: "iPhone"},
	"unquoted_original_after_attribution.eml": {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, quoted: "ACCEPT"},
	"gmail_wrapped_attribution_en.eml":        {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "yes", quoted: "wrote"},
	"gmail_wrapped_attribution_fr.eml":        {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "fr", refs: refs, text: "NON", quoted: "écrit"},
	"gmail_wrapped_three_lines_fr.eml":        {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "fr", refs: refs, text: "Valider", quoted: "écrit"},
	"gmail_wrapped_attribution_de.eml":        {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "de", refs: refs, text: "Decline", quoted: "schrieb"},
	"gmail_locale_date.eml":                   {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "DECLINE", quoted: "GMT"},
	"attribution_de.eml":                      {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "de", refs: refs, text: "ACCEPT", quoted: "schrieb"},
	"attribution_nl.eml":                      {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "nl", refs: refs, text: "ACCEPT", quoted: "schreef"},
	"attribution_es.eml":                      {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "es", refs: refs, text: "ACCEPT", quoted: "escribió"},
	"attribution_pt.eml":                      {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "pt", refs: refs, text: "ACCEPT", quoted: "escreveu"},
	"attribution_it.eml":                      {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "it", refs: refs, text: "ACCEPT", quoted: "ha scritto"},
	"attribution_sv.eml":                      {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "ACCEPT", quoted: "skrev"},
	"attribution_no.eml":                      {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "ACCEPT", quoted: "skrev"},
	"attribution_pl.eml":                      {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "pl", refs: refs, text: "ACCEPT", quoted: "napisał"},
	"attribution_ru.eml":                      {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "ACCEPT", quoted: "написал"},
	"outlook_block_de.eml":                    {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", refs: refs, quoted: "Gesendet"},
	"outlook_block_es.eml":                    {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", refs: refs, quoted: "Asunto"},
	"outlook_block_it.eml":                    {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", language: "it", refs: refs, quoted: "Oggetto"},
	"outlook_block_sv.eml":                    {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", refs: refs, quoted: "Ämne"},
	"outlook_block_nl.eml":                    {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", language: "nl", refs: refs, quoted: "Onderwerp"},
	"outlook_block_pt.eml":                    {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", refs: refs, quoted: "Assunto"},
	"outlook_block_fr_nothing_typed.eml":      {from: "tech@example.com", problem: ReasonNoDecision, token: fixtureToken, tokenFrom: "address", language: "fr", refs: refs, quoted: "OUI"},
	"hotmail_date_block.eml":                  {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "Accept", quoted: "YES or NO"},
	"outlook_hyphen_rule.eml":                 {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "No", quoted: "YES"},
	"original_message_de.eml":                 {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "de", refs: refs, text: "ACCEPT", quoted: "DECLINE"},
	"sent_from_iphone_en.eml":                 {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "Yes", quoted: "Sent from my iPhone"},
	"get_outlook_ios.eml":                     {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "Yes", quoted: "Get Outlook"},
	"sent_from_galaxy.eml":                    {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "Yes", quoted: "Galaxy"},
	"sent_from_samsung.eml":                   {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "Yes", quoted: "Samsung"},
	"von_meinem_iphone_de.eml":                {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "Yes", quoted: "iPhone"},
	"enviado_desde_iphone_es.eml":             {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "Yes", quoted: "iPhone"},
	"signature_first_then_answer.eml":         {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "oui", quoted: "Outlook"},
	// Each language's Gmail (attribution line, quoted original) and
	// Outlook (header block, unquoted original) reply to our email in
	// that language, with that language's words, accents left out or not.
	"gmail_en.eml":   {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "Yes", quoted: "wrote"},
	"outlook_en.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "en", refs: refs, text: "DECLINE", quoted: "Sent:"},
	"gmail_fr.eml":   {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "fr", refs: refs, text: "Accepter", quoted: "a écrit"},
	"outlook_fr.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "fr", refs: refs, text: "non.", quoted: "Envoyé"},
	"gmail_de.eml":   {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "de", refs: refs, text: "Ja", quoted: "schrieb"},
	"outlook_de.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "de", refs: refs, text: "ABLEHNEN", quoted: "Gesendet"},
	"gmail_es.eml":   {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "es", refs: refs, text: "si", quoted: "escribió"},
	"outlook_es.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "es", refs: refs, text: "Rechazar", quoted: "Enviado el"},
	"gmail_it.eml":   {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "it", refs: refs, text: "Sì!", quoted: "ha scritto"},
	"outlook_it.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "it", refs: refs, text: "rifiuto", quoted: "Inviato"},
	"gmail_nl.eml":   {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "nl", refs: refs, text: "accepteren", quoted: "schreef"},
	"outlook_nl.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "nl", refs: refs, text: "Nee", quoted: "Verzonden"},
	"gmail_pl.eml":   {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "pl", refs: refs, text: "akceptuje", quoted: "pisze"},
	"outlook_pl.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "pl", refs: refs, text: "NIE", quoted: "Wysłano"},
	"gmail_pt.eml":   {from: "tech@example.com", decision: workflow.Accept, token: fixtureToken, tokenFrom: "address", language: "pt", refs: refs, text: "Aceito", quoted: "escreveu"},
	"outlook_pt.eml": {from: "tech@example.com", decision: workflow.Decline, token: fixtureToken, tokenFrom: "address", language: "pt", refs: refs, text: "nao", quoted: "Enviada em"},
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
		{"AKCEPTUJĘ", workflow.Accept, ""},
		{"akceptuje.", workflow.Accept, ""},
		{"¡Sí!", workflow.Accept, ""},
		{"sì", workflow.Accept, ""},
		{"Tak", workflow.Accept, ""},
		{"Ja!", workflow.Accept, ""},
		{"NÃO", workflow.Decline, ""},
		{"nao", workflow.Decline, ""},
		{"Nein.", workflow.Decline, ""},
		{"weigeren", workflow.Decline, ""},
		{"Rifiuto", workflow.Decline, ""},
		{"Recuso", workflow.Decline, ""},
		{"tak / nie", "", ReasonTwoDecisions},
		{"Si, pero", "", ReasonNoDecision},
		{"Niet", "", ReasonNoDecision},
	}
	for _, c := range cases {
		d, p := decision(c.text)
		if d != c.want || p != c.problem {
			t.Errorf("decision(%q) = %q, %q; want %q, %q", c.text, d, p, c.want, c.problem)
		}
	}
}

// Every reply word of every language's catalogue is read as its decision,
// whatever the reader's own language: in capitals, in lower case, without
// its accents, with trailing punctuation.
func TestReplyWordsOfEveryLanguage(t *testing.T) {
	n := 0
	for _, l := range workflow.Languages {
		c := locale.For(l)
		for id, want := range map[string]workflow.Decision{"reply.accept": workflow.Accept, "reply.decline": workflow.Decline} {
			for _, w := range c.List(id) {
				for _, typed := range []string{w, strings.ToLower(w), locale.Fold(w) + "!", strings.ToUpper(locale.Fold(w)) + "."} {
					n++
					if d, p := decision(typed); d != want || p != "" {
						t.Errorf("%s: %q read as %q %q, want %s", l, typed, d, p, want)
					}
				}
			}
		}
	}
	if n < 8*4*4 {
		t.Errorf("only %d words tried", n)
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
	cases := []struct {
		header    string
		automatic bool
		null      bool // Return-Path present and empty
	}{
		{"Auto-Submitted: no", false, false},
		{"Auto-Submitted: auto-replied", true, false},
		{"Auto-Submitted: auto-generated; type=vacation", true, false},
		{"Precedence: bulk", true, false},
		{"Precedence: junk", true, false},
		{"Precedence: list", true, false},
		{"Precedence: auto_reply", true, false},
		{"Precedence: first-class", false, false},
		{"X-Autoreply: yes", true, false},
		{"X-Autorespond: 1", true, false},
		{"X-Autogenerated: Reply", true, false},
		{"X-Failed-Recipients: new1@example.net", true, false},
		{"X-Loop: contacts@example.com", true, false},
		{"List-Id: <ops.example.com>", true, false},
		{"Content-Type: message/delivery-status", true, false},
		{"Return-Path: <>", true, true},
		{"Return-Path: < >", true, true},
		{"Return-Path: <tech@example.com>", false, false},
		{"Return-Path: <>\r\nReturn-Path: <tech@example.com>", true, true},
		{"Return-Path: <tech@example.com>\r\nReturn-Path: <>", false, false},
		{"X-Mailer: Thunderbird", false, false},
	}
	for _, c := range cases {
		t.Run(c.header, func(t *testing.T) {
			raw := "From: tech@example.com\r\n" + c.header + "\r\nSubject: x\r\n\r\nyes\r\n"
			r := Read([]byte(raw), replyAddress)
			if got := r.Automatic != ""; got != c.automatic {
				t.Errorf("automatic = %q, want automatic %v", r.Automatic, c.automatic)
			}
			if r.NullReturnPath != c.null {
				t.Errorf("NullReturnPath = %v, want %v", r.NullReturnPath, c.null)
			}
		})
	}
}

// Mail from the mail system itself is automatic, whatever its headers.
func TestAutomaticSenders(t *testing.T) {
	cases := map[string]bool{
		"MAILER-DAEMON@mx.example.net":                     true,
		"Mail Delivery System <Mailer-Daemon@example.net>": true,
		"postmaster@example.net":                           true,
		"Postmaster <POSTMASTER@example.net>":              true,
		"Tom <tech@example.com>":                           false,
		"postmaster-team@example.net":                      false,
		"=?utf-8?q?MAILER-DAEMON?= <tech@example.com>":     false,
		"\"postmaster@example.net\" <tech@example.com>":    false,
	}
	for from, want := range cases {
		t.Run(from, func(t *testing.T) {
			r := Read([]byte("From: "+from+"\r\nSubject: x\r\n\r\nyes\r\n"), replyAddress)
			if got := r.Automatic != ""; got != want {
				t.Errorf("automatic = %q, want automatic %v", r.Automatic, want)
			}
			r = ReadHeader([]byte("From: " + from + "\r\nSubject: x\r\n\r\n"))
			if got := r.Automatic != ""; got != want {
				t.Errorf("header only: automatic = %q, want automatic %v", r.Automatic, want)
			}
		})
	}
}

// The From address is the one RFC 5322 parsing gives: encoded words are
// decoded inside the display name only, so they can never make up an
// address. A message without exactly one sender names nobody.
func TestFromParsing(t *testing.T) {
	cases := []struct {
		name, header string
		from         string // "" means no sender: Problem is ReasonBadFrom
	}{
		{"plain", "From: Tom Tech <Tech@Example.com>", "tech@example.com"},
		{"bare", "From: tech@example.com", "tech@example.com"},
		{"angle only", "From: <tech@example.com>", "tech@example.com"},
		{"comment name", "From: tech@example.com (Tom Tech)", "tech@example.com"},
		{"quoted comma", `From: "Martin, Jean" <tech@example.com>`, "tech@example.com"},
		{"period in name", "From: John Q. Public <tech@example.com>", "tech@example.com"},
		{"encoded name", "From: =?ISO-8859-1?Q?Fran=E7ois_H=E9rault?= <tech@example.com>", "tech@example.com"},
		{"unknown charset in name", "From: =?x-unknown?q?Tom?= <tech@example.com>", "tech@example.com"},
		{"utf-8 name", "From: Jérôme Hérault <tech@example.com>", "tech@example.com"},
		{"encoded word spoof", "From: =?utf-8?q?admin=40example.com_=28?= <attacker@evil.example> (=?utf-8?q?=29?=)", "attacker@evil.example"},
		{"encoded whole address", "From: =?utf-8?q?admin=40example.com?=", ""},
		{"quoted address as name", `From: "admin@example.com" <attacker@evil.example>`, "attacker@evil.example"},
		{"address in comment", "From: <attacker@evil.example> (<admin@example.com>)", "attacker@evil.example"},
		{"unquoted address as name", "From: admin@example.com <attacker@evil.example>", "attacker@evil.example"},
		{"brackets in name", "From: Tom [IT] <tech@example.com>", "tech@example.com"},
		{"two angle addresses", "From: Admin <admin@example.com> <attacker@evil.example>", ""},
		{"two addresses", "From: admin@example.com, attacker@evil.example", ""},
		{"two named addresses", "From: Admin <admin@example.com>, Eve <attacker@evil.example>", ""},
		{"two fields", "From: admin@example.com\r\nFrom: attacker@evil.example", ""},
		{"two equal fields", "From: admin@example.com\r\nFrom: admin@example.com", ""},
		{"empty group", "From: undisclosed-recipients:;", ""},
		{"unclosed", "From: Tom <tech@example.com", ""},
		{"empty", "From: ", ""},
		{"missing", "Sender: tech@example.com", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := c.header + "\r\nTo: contacts+" + fixtureToken + "@example.com\r\nSubject: x\r\n\r\nyes\r\n"
			for _, r := range []*Reply{Read([]byte(raw), replyAddress), ReadHeader([]byte(raw))} {
				if r.From != c.from {
					t.Errorf("From = %q, want %q", r.From, c.from)
				}
				if bad := r.Problem == ReasonBadFrom; bad != (c.from == "") {
					t.Errorf("Problem = %q for From %q", r.Problem, r.From)
				}
				if c.from == "" && r.Decision != "" {
					t.Errorf("a message with no single sender has the decision %q", r.Decision)
				}
			}
		})
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
		for _, line := range strings.Split(r.Text, "\n") {
			if quoted(line) {
				t.Errorf("quoted line %q in the reply's own text", line)
			}
		}
		if r.Decision != "" && r.Text == "" {
			t.Errorf("decision %q with no text of the reply's own", r.Decision)
		}
		if r.Problem == ReasonBadFrom && r.From != "" {
			t.Errorf("no single sender, yet From is %q", r.From)
		}
		_ = ReadHeader(raw)
		_ = r.Authenticated("mx.example.com")
	})
}
