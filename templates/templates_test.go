package templates_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"contactd/locale"
	"contactd/templates"
	"contactd/workflow"

	"github.com/jaytaylor/html2text"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

const token = "kabcdefghijklmnopqrstuvwxyz234567"

// sample is the data of one email of each kind, as the mailer fills it.
func sample(kind workflow.Kind, lang workflow.Language) templates.Data {
	created := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	d := templates.Data{
		Kind: kind, Language: lang, RequestID: "kq7vxkz2mfa3b4c5d",
		Service: "example.com", ServiceKind: "domain",
		Recipient: templates.Person{NIC: "nw1-ovh", Name: "Nora New"},
		Requester: templates.Person{NIC: "ad1-ovh", Name: "Alice Admin"},
		Changes: []templates.Change{
			{Role: "tech", From: templates.Person{NIC: "te1-ovh", Name: "Tom Tech"}, To: templates.Person{NIC: "nw1-ovh", Name: "Nora New"}},
			{Role: "billing", From: templates.Person{NIC: "bi1-ovh", Name: "Bob Billing"}, To: templates.Person{NIC: "ad1-ovh", Name: "Alice Admin"}},
		},
		Status: "pending", CreatedAt: created, ExpiresAt: created.Add(336 * time.Hour),
		ReplyAddress: "contacts@example.com",
	}
	switch kind {
	case workflow.KindValidation, workflow.KindReminder, workflow.KindResend:
		d.Token, d.Link = token, "https://contacts.example.com/v/"+token
	case workflow.KindInformed:
		d.Recipient = templates.Person{NIC: "te1-ovh", Name: "Tom Tech"}
		d.Status = "applied"
		d.Token, d.Link = token, "https://contacts.example.com/r/"+token
		d.LinkUntil = created.Add(720 * time.Hour)
	case workflow.KindRecorded:
		d.Answer = "accepted"
		d.Awaited = []templates.Person{{NIC: "ad1-ovh", Name: "Alice Admin"}}
	case workflow.KindDeclined:
		d.Status = "declined"
		d.Decliners = []templates.Person{{NIC: "nw1-ovh", Name: "Nora New"}}
	case workflow.KindExpired:
		d.Status = "expired"
		d.Awaited = []templates.Person{{NIC: "nw1-ovh", Name: "Nora New"}, {NIC: "ad1-ovh", Name: "Alice Admin"}}
	case workflow.KindFailed:
		d.Status, d.Reason = "failed", workflow.Reason{Code: workflow.ReasonPaymentOverdue, Arg: "bi1-ovh"}.String()
	case workflow.KindNotUnderstood:
		d.Recipient, d.Reason = templates.Person{}, "no_decision"
	case workflow.KindUndeliverable:
		d.Recipient = d.Requester
		d.About = templates.Person{NIC: "nw1-ovh", Name: "Nora New"}
	case workflow.KindDisputed:
		d.Recipient = templates.Person{Name: "Security team"}
		d.About = templates.Person{NIC: "te1-ovh", Name: "Tom Tech"}
		d.Status = "applied"
	}
	return d
}

// TestGolden renders every kind in every language, about one request and
// (for the kinds a hand-over sends) about a hand-over, and compares each
// with its golden file: a change of wording shows as a diff to review.
func TestGolden(t *testing.T) {
	set, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range workflow.EmailKinds {
		for _, lang := range workflow.Languages {
			name := string(kind) + "." + string(lang)
			t.Run(name, func(t *testing.T) {
				e, err := set.Render(sample(kind, lang))
				if err != nil {
					t.Fatal(err)
				}
				golden(t, name+".txt", "Subject: "+e.Subject+"\n\n"+e.Text)
				golden(t, name+".html", e.HTML)
			})
		}
	}
	for _, kind := range workflow.HandoverKinds {
		for _, lang := range workflow.Languages {
			name := "handover/" + string(kind) + "." + string(lang)
			t.Run(name, func(t *testing.T) {
				e, err := set.Render(templates.SampleHandover(kind, lang, "https://contacts.example.com"))
				if err != nil {
					t.Fatal(err)
				}
				golden(t, name+".txt", "Subject: "+e.Subject+"\n\n"+e.Text)
				golden(t, name+".html", e.HTML)
			})
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./templates -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run go test ./templates -update and review the diff):\n%s", name, got)
	}
}

// decisionWord matches a line whose first word is one of the reply words
// of SPEC section 4: a client that sends our text back without quoting it
// must not turn it into a decision.
var decisionWord = func() *regexp.Regexp {
	var words []string
	for _, id := range []string{"reply.accept", "reply.decline"} {
		for w := range locale.Words(id) {
			words = append(words, regexp.QuoteMeta(w))
		}
	}
	return regexp.MustCompile(`^[\s>*_\-–•¿¡«„"]*(` + strings.Join(words, "|") + `)([^\pL]|$)`)
}()

// firstLine folds a line as the inbox reads a reply's first line.
func firstLine(l string) string { return locale.Fold(l) }

func TestNoLineStartsWithADecisionWord(t *testing.T) {
	set := templates.MustEmbedded()
	hostile := templates.Person{NIC: "yes", Name: "ACCEPT\nOUI\nTAK"}
	for _, kind := range workflow.EmailKinds {
		for _, lang := range workflow.Languages {
			for _, d := range []templates.Data{sample(kind, lang), withEveryone(sample(kind, lang), hostile),
				templates.SampleHandover(kind, lang, "https://contacts.example.com")} {
				e, err := set.Render(d)
				if err != nil {
					t.Fatal(err)
				}
				plain, err := html2text.FromString(e.HTML, html2text.Options{})
				if err != nil {
					t.Fatal(err)
				}
				for part, body := range map[string]string{"text": e.Text, "html": plain} {
					for i, line := range strings.Split(body, "\n") {
						if decisionWord.MatchString(firstLine(line)) {
							t.Errorf("%s/%s %s line %d starts with a decision word: %q", lang, kind, part, i+1, line)
						}
					}
				}
			}
		}
	}
}

func withEveryone(d templates.Data, p templates.Person) templates.Data {
	d.Recipient, d.Requester, d.About = p, p, p
	d.Service, d.ServiceKind, d.Reason = "NO", "OUI\nDECLINE", "YES"
	d.Awaited, d.Decliners = []templates.Person{p}, []templates.Person{p}
	for i := range d.Changes {
		d.Changes[i].From, d.Changes[i].To = p, p
	}
	return d
}

func TestUntrustedNamesAreEscapedAndKeptOnOneLine(t *testing.T) {
	d := sample(workflow.KindValidation, workflow.English)
	d.Requester = templates.Person{NIC: "ad1-ovh", Name: "Eve <script>alert(1)</script>\r\nBcc: victim@example.net"}
	d.Service = "evil.example\r\nX-Injected: 1"
	e, err := templates.MustEmbedded().Render(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.HTML, "<script>") {
		t.Errorf("HTML part carries a raw <script> from a name:\n%s", e.HTML)
	}
	if !strings.Contains(e.HTML, "&lt;script&gt;") {
		t.Errorf("HTML part lost the escaped name")
	}
	if strings.ContainsAny(e.Subject, "\r\n") {
		t.Errorf("subject holds a line break: %q", e.Subject)
	}
	if got, want := e.Subject, "Change of contacts for evil.example X-Injected: 1: your approval is requested (code "+token+")"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	for _, line := range strings.Split(e.Text, "\n") {
		if strings.HasPrefix(line, "Bcc:") || strings.HasPrefix(line, "X-Injected") {
			t.Errorf("a name started a line of its own: %q", line)
		}
	}
}

func TestEveryEmailCarriesWhatItMust(t *testing.T) {
	set := templates.MustEmbedded()
	for _, lang := range workflow.Languages {
		for _, kind := range []workflow.Kind{workflow.KindValidation, workflow.KindReminder, workflow.KindResend, workflow.KindInformed} {
			e, err := set.Render(sample(kind, lang))
			if err != nil {
				t.Fatal(err)
			}
			link := sample(kind, lang).Link
			for part, body := range map[string]string{"subject": e.Subject, "text": e.Text, "html": e.HTML} {
				if !strings.Contains(body, token) && (part != "subject" || kind.CarriesToken()) {
					t.Errorf("%s/%s: %s has no token", lang, kind, part)
				}
			}
			// A report token is for its link only: a subject travels further
			// (mail logs, notification previews) than a body.
			if kind == "informed" && strings.Contains(e.Subject, token) {
				t.Errorf("%s/informed: the report token is in the subject", lang)
			}
			if !strings.Contains(e.Text, link) || !strings.Contains(e.HTML, `href="`+link+`"`) {
				t.Errorf("%s/%s: link %s missing from a part", lang, kind, link)
			}
		}
		for _, kind := range workflow.EmailKinds {
			e, err := set.Render(sample(kind, lang))
			if err != nil {
				t.Fatal(err)
			}
			if kind != workflow.KindNotUnderstood && !strings.Contains(e.Text, "example.com") {
				t.Errorf("%s/%s: text does not name the service", lang, kind)
			}
			if kind != workflow.KindNotUnderstood && (!strings.Contains(e.Text, "te1-ovh") || !strings.Contains(e.Text, "→")) {
				t.Errorf("%s/%s: text does not show the role changes from → to", lang, kind)
			}
		}
	}
}

func TestLanguageFallsBackToEnglish(t *testing.T) {
	set := templates.MustEmbedded()
	xx, err := set.Render(sample(workflow.KindApplied, "xx"))
	if err != nil {
		t.Fatal(err)
	}
	en, _ := set.Render(sample(workflow.KindApplied, workflow.English))
	if xx.Text != en.Text {
		t.Errorf("an unknown language did not fall back to English")
	}
	if _, err := set.Render(sample("nonsense", workflow.English)); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("unknown kind: err = %v, want one naming the kind", err)
	}
}

func TestLoadOverridesFromADirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "fr"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "{{define \"subject\"}}Fait : {{.Service}}{{end}}Bonjour {{.Recipient.Greeting}}, c'est fait.\n"
	if err := os.WriteFile(filepath.Join(dir, "fr", "applied.txt"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := set.Render(sample(workflow.KindApplied, workflow.French))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.Subject, "Fait\u00a0: example.com"; got != want { // French spacing applies to overrides too
		t.Errorf("overridden subject = %q, want %q", got, want)
	}
	if got, want := e.Text, "Bonjour Nora New, c'est fait.\n"; got != want {
		t.Errorf("overridden text = %q, want %q", got, want)
	}
	embeddedEN, _ := templates.MustEmbedded().Render(sample(workflow.KindApplied, workflow.English))
	if e, _ := set.Render(sample(workflow.KindApplied, workflow.English)); e.Text != embeddedEN.Text {
		t.Errorf("a file not in the directory did not come from the embedded set")
	}

	// A file at the top of the directory replaces the kind in every
	// language; the language's own file still wins.
	if err := os.WriteFile(filepath.Join(dir, "applied.txt"), []byte("{{define \"subject\"}}{{t \"applied.subject\" .}}{{end}}{{t \"email.hello\" .}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if set, err = templates.Load(dir); err != nil {
		t.Fatal(err)
	}
	if e, err := set.Render(sample(workflow.KindApplied, workflow.German)); err != nil || e.Text != "Guten Tag Nora New,\n" {
		t.Errorf("top-level override in German: %v %q", err, e.Text)
	}
	if e, _ := set.Render(sample(workflow.KindApplied, workflow.French)); e.Text != "Bonjour Nora New, c'est fait.\n" {
		t.Errorf("the French override lost to the top-level one: %q", e.Text)
	}

	if err := os.WriteFile(filepath.Join(dir, "fr", "expired.html"), []byte("{{if}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := templates.Load(dir); err == nil || !strings.Contains(err.Error(), "fr/expired.html") {
		t.Errorf("broken override: err = %v, want one naming fr/expired.html", err)
	}
	if _, err := templates.Load(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("missing directory: no error")
	}
}
