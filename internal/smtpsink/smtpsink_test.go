package smtpsink

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	gomail "github.com/wneessen/go-mail"
)

const token = "k7qzv3mlw2xy4abcdefghijklmnopqrs2"

// validationEmail is written by go-mail as the mailer writes its emails:
// text and HTML alternatives, quoted-printable, the link on a line long
// enough to be cut by a soft line break.
func validationEmail(t *testing.T) []byte {
	t.Helper()
	m := gomail.NewMsg()
	if err := m.From("contacts@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := m.To("ad1@example.com"); err != nil {
		t.Fatal(err)
	}
	m.Subject("Validate " + token)
	m.SetGenHeader("X-Contactd-Kind", "validation")
	m.SetGenHeader("X-Contactd-Request", "r-42")
	m.SetMessageIDWithValue("abc@example.com")
	link := "https://contacts.example.com/v/" + token
	m.SetBodyString(gomail.TypeTextPlain, "Bonjour, à valider : open this page to accept or decline the change "+link+" soon.\n")
	m.AddAlternativeString(gomail.TypeTextHTML, `<p><a href="https://elsewhere.example/v/`+strings.Repeat("b", 33)+`">x</a></p>`)
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "=\r\n") {
		t.Fatal("the test email has no soft line break: the decoding is not exercised")
	}
	return b.Bytes()
}

func TestSinkHandsOverAndParses(t *testing.T) {
	var mu sync.Mutex
	var got []Message
	s, err := Start(func(m Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := validationEmail(t)
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("contacts@example.com", []string{"ad1@example.com"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if n := s.Sessions(); n != 1 {
		t.Errorf("sessions open = %d, want 1", n)
	}
	c2, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Hello("two"); err != nil {
		t.Fatal(err)
	}
	if err := c2.Quit(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if p := s.Peak(); p != 2 {
		t.Errorf("peak = %d, want 2", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d messages handed over, want 1", len(got))
	}
	m := got[0]
	if m.From != "contacts@example.com" || len(m.To) != 1 || m.To[0] != "ad1@example.com" {
		t.Errorf("envelope from %q to %q", m.From, m.To)
	}
	e, err := Parse(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	want := Email{Kind: "validation", Request: "r-42", MessageID: "<abc@example.com>",
		Link: "https://contacts.example.com/v/" + token, Token: token}
	if e != want {
		t.Errorf("Parse =\n%+v, want\n%+v", e, want)
	}
}

func TestParseOtherKindsReadsHeadersOnly(t *testing.T) {
	data := bytes.Replace(validationEmail(t), []byte("X-Contactd-Kind: validation"), []byte("X-Contactd-Kind: applied"), 1)
	e, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != "applied" || e.Request != "r-42" || e.Link != "" || e.Token != "" {
		t.Errorf("Parse = %+v, want the applied kind, the request and no link", e)
	}
}
