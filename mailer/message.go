package mailer

import (
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"regexp"
	"strings"

	"contactd/templates"
	"contactd/workflow"

	gomail "github.com/wneessen/go-mail"
)

// Threading: every email of a request names, in In-Reply-To and
// References, one root Message-ID derived from the request id. No email
// carries the root itself, so none is a reply to a particular approver's
// email, yet mail clients show a request's emails as one conversation.

// rootID is the Message-ID (without angle brackets) threading a request.
func rootID(request, domain string) string { return request + ".request@" + domain }

var msgIDRe = regexp.MustCompile(`^<?([^<>\s"]{1,250}@[^<>\s"]{1,250})>?$`)

// cleanMsgID returns the Message-ID s as <...>, or "" when s is not one.
func cleanMsgID(s string) string {
	m := msgIDRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return ""
	}
	return "<" + m[1] + ">"
}

// plusAddress writes local+token@domain.
func plusAddress(addr, token string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || token == "" {
		return addr
	}
	return addr[:at] + "+" + token + addr[at:]
}

// buildMsg writes the email: addresses, threading and automatic-mail
// headers, and the text and HTML alternatives (UTF-8, quoted-printable).
// Every value from outside (names, subject, a received Message-ID) is one
// line by then: templates.OneLine and cleanMsgID see to it. Addresses are
// net/mail Addresses written by formatAddress: a display name is quoted
// or encoded as RFC 5322 and 2047 say, whatever it contains. The SMTP
// envelope is read back from the From and To written (see envelope).
func (m *Mailer) buildMsg(l *letter, e *workflow.OutboxEntry, mail *templates.Email) (*gomail.Msg, string, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP))
	msg.SetGenHeaderPreformatted(gomail.Header(gomail.HeaderFrom), formatAddress(m.from))
	to, err := recipient(l.toName, l.to)
	if err != nil {
		return nil, "", permanent(err)
	}
	msg.SetGenHeaderPreformatted(gomail.Header(gomail.HeaderTo), formatAddress(to))
	reply, err := m.replyTo(l.kind, l.token)
	if err != nil {
		return nil, "", err
	}
	msg.ReplyToMailAddress(reply)
	id := workflow.MessageID(e, l.kind, m.domain)
	msg.Subject(templates.OneLine(mail.Subject))
	msg.SetMessageIDWithValue(id)
	msg.SetDateWithValue(m.now())
	setThread(msg, cleanMsgID(l.inReplTo), l.request, m.domain)
	msg.SetGenHeader("Auto-Submitted", autoSubmitted(l.kind))
	// Out-of-office and automatic replies only: delivery and read reports
	// still come back, and an undeliverable approver is told by them.
	msg.SetGenHeader("X-Auto-Response-Suppress", "OOF, AutoReply")
	switch {
	case e.Handover != "":
		// A hand-over's email is about every request of it: it names the
		// hand-over, whose id the API reads back.
		msg.SetGenHeader("X-Contactd-Handover", templates.OneLine(e.Handover))
	case l.request != "":
		msg.SetGenHeader("X-Contactd-Request", templates.OneLine(l.request))
	}
	msg.SetGenHeader("X-Contactd-Kind", string(l.kind))
	msg.SetBodyString(gomail.TypeTextPlain, mail.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, mail.HTML)
	return msg, id, nil
}

// recipient returns the address of a contact: addr, which must be a bare
// address, with name reduced to one line as its display name.
func recipient(name, addr string) (*mail.Address, error) {
	addr = strings.TrimSpace(addr)
	a, err := mail.ParseAddress(addr)
	if err == nil && a.Name != "" {
		err = errors.New("a display name is not part of an address")
	}
	if err != nil {
		return nil, fmt.Errorf("mailer: recipient address %q: %w", templates.OneLine(addr), err)
	}
	return &mail.Address{Name: templates.OneLine(name), Address: a.Address}, nil
}

// formatAddress writes a as a mailbox that mail clients and net/mail
// read back as the same name and address: the name as a quoted string
// when it is printable ASCII, else as RFC 2047 "B" encoded-words, one per
// folded line. (mail.Address.String is not used for the name: it leaves
// a backslash raw inside a "Q" encoded-word, which no parser reads back,
// golang/go#80592.)
func formatAddress(a *mail.Address) string {
	bare := &mail.Address{Address: a.Address}
	switch {
	case a.Name == "":
		return bare.String()
	case printableASCII(a.Name):
		return a.String()
	default:
		words := mime.BEncoding.Encode("utf-8", a.Name)
		return strings.ReplaceAll(words, " ", "\r\n ") + " " + bare.String()
	}
}

// printableASCII reports whether s is only printable ASCII, spaces and
// tabs, which a quoted string carries as they are.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < ' ' || s[i] > '~') && s[i] != '\t' {
			return false
		}
	}
	return true
}

// replyTo returns imap.reply_address, with the token as a sub-address
// when imap.plus_addressing is on and the email of kind carries one.
func (m *Mailer) replyTo(kind workflow.Kind, token string) (*mail.Address, error) {
	reply := m.cfg.IMAP.ReplyAddress
	if m.cfg.IMAP.PlusAddressing && kind.CarriesToken() {
		reply = plusAddress(reply, token)
	}
	a, err := mail.ParseAddress(reply)
	if err != nil {
		// The parser's error may quote the address, token included: not kept.
		return nil, fmt.Errorf("mailer: imap.reply_address %q is not a valid address", m.cfg.IMAP.ReplyAddress)
	}
	return a, nil
}

// setThread writes In-Reply-To and References: the Message-ID answered,
// if any, then the request's root.
func setThread(msg *gomail.Msg, parent, request, domain string) {
	var refs []string
	if parent != "" {
		refs = append(refs, parent)
	}
	if request != "" {
		refs = append(refs, "<"+rootID(request, domain)+">")
	}
	if len(refs) > 0 {
		msg.SetGenHeaderPreformatted(gomail.HeaderInReplyTo, refs[0])
		msg.SetGenHeaderPreformatted(gomail.HeaderReferences, strings.Join(refs, " "))
	}
}

// autoSubmitted is the Auto-Submitted value of an email of kind (RFC
// 3834): not_understood answers a message, the others are sent on their
// own.
func autoSubmitted(kind workflow.Kind) string {
	if kind == workflow.KindNotUnderstood {
		return "auto-replied"
	}
	return "auto-generated"
}
