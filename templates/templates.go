// Package templates renders contactd's emails: every kind of
// workflow.EmailKinds, in every language of workflow.Languages, each as a
// subject, a text/plain body and an HTML alternative.
//
// The templates (mail/KIND.txt, mail/KIND.html and the shared pieces in
// mail/common.txt and mail/common.html) hold no words: they lay out the
// messages of the language's catalogue (package locale), so the text and
// the HTML part say the same thing in every language, and adding a
// language is adding its catalogue. KIND.txt defines "subject" and is the
// text body. Text templates use text/template, HTML ones html/template,
// so names and service ids from the directory are escaped in HTML; in
// every part they are first reduced to one line of printable text.
//
// Load can read a directory of overrides: DIR/KIND.txt (or .html,
// common.txt, ...) replaces the built-in file for every language, and
// DIR/LANG/KIND.txt for that language alone, so an operator can rewrite
// one email, in words of their own, without touching the others.
//
// Render adds what the mailer need not compute: the approver's token
// grouped as a validation code for typing and the page where it is typed
// (Data.Code, Data.CodeURL), and, from the set's Options, the provider's
// name and support address and the time zone of the dates. Text bodies
// are wrapped at 78 columns, links whole; every part gets its language's
// typography (French no-break spaces).
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"contactd/locale"
	"contactd/workflow"
)

//go:embed mail
var embedded embed.FS

// Person is a contact as an email names it.
type Person struct {
	NIC  string
	Name string
}

// String writes "Name (nic)", or the NIC alone when the name is unknown.
func (p Person) String() string {
	switch {
	case p.Name == "":
		return p.NIC
	case p.NIC == "":
		return p.Name
	}
	return p.Name + " (" + p.NIC + ")"
}

// Greeting is how the email addresses the person: the name, else the NIC.
func (p Person) Greeting() string {
	if p.Name != "" {
		return p.Name
	}
	return p.NIC
}

// Change is one role moving from a holder to another.
type Change struct {
	Role string
	From Person
	To   Person
}

// MaxItems is the most services a hand-over's email lists; the others are
// counted (Data.More) and shown on the page its link opens.
const MaxItems = 20

// Item is one service of a hand-over as its emails list it.
type Item struct {
	Service     string
	ServiceKind string
	Changes     []Change
	// Reason says why this service's request failed (failed emails), in
	// the stored form of a workflow.Reason.
	Reason string
}

// Data is everything an email may show. Fields a kind does not use stay
// empty.
type Data struct {
	Kind     workflow.Kind
	Language workflow.Language
	// Recipient is who the email goes to.
	Recipient   Person
	RequestID   string
	Service     string
	ServiceKind string
	Requester   Person
	Changes     []Change
	// Status is the request's current status.
	Status    string
	CreatedAt time.Time
	ExpiresAt time.Time
	// Answer is the recipient's own answer ("accepted" or "declined"), for
	// the recorded kind.
	Answer string
	// Awaited lists the approvers who have not answered.
	Awaited []Person
	// Decliners lists the approvers who declined.
	Decliners []Person
	// Reason says why a request failed (the stored form of a
	// workflow.Reason, "role_changed:tech") or why a reply was not
	// understood (an inbox reason code); the templates write it in the
	// email's language.
	Reason string
	// Handover is the id of the hand-over the email is about, "" when it
	// is about one request. A hand-over's email lists Items, the services
	// it names (at most MaxItems, in service order), and says how many
	// More there are; Service, ServiceKind, Changes and RequestID are then
	// empty. Which services an email names depends on its kind: all of the
	// hand-over (validation, reminder, resend, recorded, declined, expired,
	// cancelled), those applied (applied), those that failed, each with
	// its Reason (failed), or those the recipient held (informed).
	Handover string
	Items    []Item
	More     int
	// About is the approver whose email bounced (undeliverable) or the
	// contact who reported a change (disputed).
	About Person
	// Token is the approver's token or the report token; Link the page it
	// opens; LinkUntil the end of the report window (informed).
	Token     string
	Link      string
	LinkUntil time.Time
	// ReplyAddress is where replies by email go.
	ReplyAddress string
	// Code is the token grouped for typing (kabc-defg-…), and CodeURL the
	// page where it can be typed ({http.base_url}/v); Render fills both for
	// the kinds that carry an approver's token, from Token and Link.
	Code    string
	CodeURL string
	// Brand and SupportURL name the provider in the signature; Render
	// fills them from the set's Options when empty.
	Brand      string
	SupportURL string
	// Subject is set by Render for the HTML part's title.
	Subject string
}

// Email is a rendered email.
type Email struct {
	Subject string
	Text    string
	HTML    string
}

// Set holds the parsed templates of every kind and language.
type Set struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
	opt  Options
}

// Load parses the templates, taking each file from dir when it is there
// (DIR/LANG/NAME first, then DIR/NAME) and from the embedded set
// otherwise. An empty dir means the embedded set alone. Every kind of
// every language is parsed at once, so a broken override is reported at
// start, naming the file.
func Load(dir string) (*Set, error) {
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("templates: %s is not a readable directory", dir)
		}
	}
	s := &Set{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, lang := range workflow.Languages {
		for _, kind := range workflow.EmailKinds {
			if err := s.parse(dir, lang, kind); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// MustEmbedded returns the embedded set; it panics only if the binary was
// built with broken templates, which the package's tests rule out.
func MustEmbedded() *Set {
	s, err := Load("")
	if err != nil {
		panic(err)
	}
	return s
}

// read returns the source of a template file of lang and where it came
// from: dir/LANG/NAME, dir/NAME or the embedded mail/NAME.
func read(dir string, lang workflow.Language, name string) (string, string, error) {
	if dir != "" {
		for _, p := range []string{filepath.Join(dir, string(lang), name), filepath.Join(dir, name)} {
			b, err := os.ReadFile(p)
			if err == nil {
				return string(b), p, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", p, fmt.Errorf("templates: %w", err)
			}
		}
	}
	b, err := embedded.ReadFile("mail/" + name)
	return string(b), string(lang) + "/" + name, err
}

func (s *Set) parse(dir string, lang workflow.Language, kind workflow.Kind) error {
	funcs := funcsFor(locale.For(lang))
	t := texttemplate.New("_").Funcs(funcs).Option("missingkey=error")
	h := htmltemplate.New("_").Funcs(funcs).Option("missingkey=error")
	for _, name := range []string{"common.txt", string(kind) + ".txt", "common.html", string(kind) + ".html"} {
		src, where, err := read(dir, lang, name)
		if err != nil {
			return fmt.Errorf("templates: %s: %w", where, err)
		}
		if strings.HasSuffix(name, ".txt") {
			_, err = t.New(name).Parse(src)
		} else {
			_, err = h.New(name).Parse(src)
		}
		if err != nil {
			return fmt.Errorf("templates: %s: %w", where, err)
		}
	}
	if t.Lookup("subject") == nil {
		return fmt.Errorf("templates: %s/%s.txt: no {{define \"subject\"}}", lang, kind)
	}
	s.text[string(lang)+"/"+string(kind)] = t
	s.html[string(lang)+"/"+string(kind)] = h
	return nil
}

// Render writes the email of d.Kind in d.Language (English when it is
// not one of workflow.Languages). Every string of d is first reduced to
// printable text on one line.
func (s *Set) Render(d Data) (*Email, error) {
	d = s.fill(clean(d))
	d.Language = d.Language.Or(workflow.English)
	key := string(d.Language) + "/" + string(d.Kind)
	t, ok := s.text[key]
	if !ok {
		return nil, fmt.Errorf("templates: no email of kind %q", d.Kind)
	}
	var subject, text, html bytes.Buffer
	if err := t.ExecuteTemplate(&subject, "subject", d); err != nil {
		return nil, fmt.Errorf("templates: %s subject: %w", key, err)
	}
	d.Subject = OneLine(subject.String())
	if err := t.ExecuteTemplate(&text, string(d.Kind)+".txt", d); err != nil {
		return nil, fmt.Errorf("templates: %s text: %w", key, err)
	}
	if err := s.html[key].ExecuteTemplate(&html, string(d.Kind)+".html", d); err != nil {
		return nil, fmt.Errorf("templates: %s html: %w", key, err)
	}
	c := locale.For(d.Language)
	return &Email{Subject: c.Typography(d.Subject), Text: c.Typography(wrap(tidy(text.String()), textWidth)),
		HTML: c.Typography(tidy(html.String()))}, nil
}

// Total is how many services a hand-over's email is about: those it
// lists and those it counts.
func (d Data) Total() int { return len(d.Items) + d.More }

// CarriesToken reports whether the email carries an approver's token.
func (d Data) CarriesToken() bool { return d.Kind.CarriesToken() }

// OneLine reduces s to one line of printable text: control characters
// (CR and LF included) become spaces, runs of spaces one space, and the
// result is cut at 200 characters. Nothing read from the directory or an
// email can thus add a line (or a header) to what contactd writes. The
// no-break spaces French puts before ":" and "?" are kept: they break no
// line.
func OneLine(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || (unicode.IsSpace(r) && r != '\u00a0' && r != '\u202f') ||
			r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
			space = b.Len() > 0
			continue
		}
		if space {
			if n+2 > 200 {
				break
			}
			b.WriteByte(' ')
			space = false
			n++
		}
		b.WriteRune(r)
		if n++; n >= 200 {
			break
		}
	}
	return b.String()
}

func clean(d Data) Data {
	p := func(v Person) Person { return Person{NIC: OneLine(v.NIC), Name: OneLine(v.Name)} }
	ps := func(vs []Person) []Person {
		out := make([]Person, len(vs))
		for i, v := range vs {
			out[i] = p(v)
		}
		return out
	}
	d.Recipient, d.Requester, d.About = p(d.Recipient), p(d.Requester), p(d.About)
	d.Awaited, d.Decliners = ps(d.Awaited), ps(d.Decliners)
	changes := make([]Change, len(d.Changes))
	for i, c := range d.Changes {
		changes[i] = Change{Role: OneLine(c.Role), From: p(c.From), To: p(c.To)}
	}
	d.Changes = changes
	items := make([]Item, len(d.Items))
	for i, it := range d.Items {
		cs := make([]Change, len(it.Changes))
		for j, c := range it.Changes {
			cs[j] = Change{Role: OneLine(c.Role), From: p(c.From), To: p(c.To)}
		}
		items[i] = Item{Service: OneLine(it.Service), ServiceKind: OneLine(it.ServiceKind), Changes: cs, Reason: OneLine(it.Reason)}
	}
	d.Items = items
	d.Kind = workflow.Kind(OneLine(string(d.Kind)))
	d.Language = workflow.Language(OneLine(string(d.Language)))
	for _, f := range []*string{&d.Handover, &d.RequestID, &d.Service, &d.ServiceKind,
		&d.Status, &d.Answer, &d.Reason, &d.Token, &d.Link, &d.ReplyAddress,
		&d.Code, &d.CodeURL, &d.Brand, &d.SupportURL} {
		*f = OneLine(*f)
	}
	return d
}

// tidy drops trailing spaces, collapses runs of blank lines and ends the
// text with one newline.
func tidy(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var out []string
	blank := true
	for _, l := range lines {
		if l != "-- " { // the signature delimiter keeps its space
			l = strings.TrimRight(l, " \t")
		}
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
}
