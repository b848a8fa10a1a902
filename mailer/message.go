package mailer

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
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

// messageID is the Message-ID of an outbox entry: unique per entry and
// stable across retries, so a receiving system can drop a copy it already
// has. An email carrying a token adds nonce (".tNONCE"): each attempt
// carries a new token, so it must not be dropped as a copy of the last
// one, and a reply quoting the Message-ID acts as the token does, so it
// must not be guessed from another email of the request.
func messageID(e *workflow.OutboxEntry, domain, nonce string) string {
	req := e.Request
	if req == "" {
		req = "x"
	}
	if nonce != "" {
		nonce = ".t" + nonce
	}
	return fmt.Sprintf("%s.%s.%d-%s.%s%s@%s", req, strings.ReplaceAll(string(e.Kind), "_", "-"), e.Shard, e.ID,
		strconv.FormatInt(e.At, 36), nonce, domain)
}

// newNonce returns 80 random bits in lower-case base32.
func newNonce() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))
}

var msgIDRe = regexp.MustCompile(`^<?([^<>\s"]{1,250}@[^<>\s"]{1,250})>?$`)

// cleanMsgID returns the Message-ID s as <...>, or "" when s is not one.
func cleanMsgID(s string) string {
	m := msgIDRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return ""
	}
	return "<" + m[1] + ">"
}

// header is what the mailer adds to the rendered email.
type header struct {
	from      *mail.Address
	domain    string
	replyTo   string
	messageID string
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
// line by then: templates.OneLine and cleanMsgID see to it.
func (m *Mailer) buildMsg(l *letter, e *workflow.OutboxEntry, mail *templates.Email) (*gomail.Msg, string, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP))
	if err := msg.From(m.from.String()); err != nil {
		return nil, "", fmt.Errorf("mailer: smtp.from: %w", err)
	}
	if err := msg.AddToFormat(templates.OneLine(l.toName), strings.TrimSpace(l.to)); err != nil {
		return nil, "", permanent(fmt.Errorf("mailer: recipient address %q: %w", templates.OneLine(l.to), err))
	}
	reply := m.cfg.IMAP.ReplyAddress
	if m.cfg.IMAP.PlusAddressing && e.Kind.CarriesToken() {
		reply = plusAddress(reply, l.token)
	}
	if err := msg.ReplyTo(reply); err != nil {
		// go-mail's error quotes the address, token included: not kept.
		return nil, "", fmt.Errorf("mailer: imap.reply_address %q is not a valid address", m.cfg.IMAP.ReplyAddress)
	}
	nonce := ""
	if l.token != "" {
		nonce = newNonce()
	}
	id := messageID(e, m.domain, nonce)
	msg.Subject(templates.OneLine(mail.Subject))
	msg.SetMessageIDWithValue(id)
	msg.SetDateWithValue(m.now())
	var refs []string
	if parent := cleanMsgID(l.inReplTo); parent != "" {
		refs = append(refs, parent)
	}
	if l.request != "" {
		refs = append(refs, "<"+rootID(l.request, m.domain)+">")
	}
	if len(refs) > 0 {
		msg.SetGenHeaderPreformatted(gomail.HeaderInReplyTo, refs[0])
		msg.SetGenHeaderPreformatted(gomail.HeaderReferences, strings.Join(refs, " "))
	}
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Auto-Response-Suppress", "All")
	if l.request != "" {
		msg.SetGenHeader("X-Contactd-Request", templates.OneLine(l.request))
	}
	msg.SetGenHeader("X-Contactd-Kind", string(e.Kind))
	msg.SetBodyString(gomail.TypeTextPlain, mail.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, mail.HTML)
	return msg, id, nil
}
