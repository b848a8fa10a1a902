package mailhub_test

import (
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"contactd/internal/mailhub"
)

func TestDeliverAndRead(t *testing.T) {
	h, err := mailhub.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.AddUser("contacts@example.com", "pw")
	msg := "From: a@example.org\r\nTo: contacts+tok@example.com\r\nSubject: hello\r\n\r\nACCEPT\r\n"
	if err := smtp.SendMail(h.SMTPAddr, nil, "a@example.org", []string{"Contacts+tok@Example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	got, err := h.Wait("contacts@example.com", time.Second, func(m mailhub.Message) bool { return strings.Contains(string(m.Data), "ACCEPT") })
	if err != nil {
		t.Fatal(err)
	}
	if got.To != "Contacts+tok@Example.com" {
		t.Errorf("To = %q", got.To)
	}
	c, err := imapclient.DialInsecure(h.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("contacts@example.com", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 {
		t.Fatalf("INBOX holds %d messages, want 1", sel.NumMessages)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "hello" {
		t.Fatalf("fetch = %+v, %v", msgs, err)
	}
}
