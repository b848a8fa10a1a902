package inbox

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"contactd/workflow"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode the common charsets
	"github.com/emersion/go-message/textproto"
)

// Reasons a reply cannot be used, as logged and as named in the Reason
// of the not_understood email (the templates explain each one; the two
// marked below are sent as no_decision). They are workflow's, written as
// strings.
const (
	ReasonUnreadable       = string(workflow.ReplyUnreadable)   // not a parseable email (sent as no_decision)
	ReasonTooLarge         = string(workflow.ReplyTooLarge)     // over inbox.max_message_bytes
	ReasonNoToken          = string(workflow.ReplyNoToken)      // no token anywhere, no reference to our emails
	ReasonTwoTokens        = string(workflow.ReplyConflict)     // two carriers name different tokens
	ReasonUnknownToken     = string(workflow.ReplyUnknownToken) // a token that never existed
	ReasonUsedToken        = string(workflow.ReplyDeadToken)    // used, revoked, or its request has ended
	ReasonNoDecision       = string(workflow.ReplyNoDecision)   // the first line is not a decision word
	ReasonTwoDecisions     = string(workflow.ReplyTwoDecisions) // the first line says both (sent as no_decision)
	ReasonWrongSender      = string(workflow.ReplyWrongSender)  // From is not the approver's email on file
	ReasonNotAuthenticated = string(workflow.ReplyNotAuthentic) // no dmarc or dkim pass from inbox.authserv_id
	// ReasonBadFrom: no From field, several, several addresses in it, or
	// none that parses. From is then "": there is nobody to answer.
	ReasonBadFrom = string(workflow.ReplyBadFrom)
)

// mailReason is the reason the not_understood email names.
func mailReason(reason string) string { return string(workflow.ReplyReason(reason).Mailed()) }

// Reply is what a received email says, read without trusting any of it.
type Reply struct {
	// MessageID is the reply's own Message-ID, without angle brackets.
	MessageID string
	// From is the sender's address, lower-cased, as RFC 5322 parsing of
	// the one From field gives it: encoded words are decoded only inside
	// the display name. It is "" when the field is missing, repeated,
	// names several addresses or cannot be read (Problem is then
	// ReasonBadFrom).
	From    string
	Subject string
	// Automatic says why the message was written by a machine (an
	// auto-reply, a delivery report, ...), or is "" when a person wrote it.
	Automatic string
	// NullReturnPath is true when the topmost Return-Path field is present
	// and empty (<>): the null sender that delivery reports, and only
	// automatic mail, are sent with.
	NullReturnPath bool
	// Bounce is set for a delivery report.
	Bounce *Bounce
	// Decision is the answer read on the first line of the reply's own
	// text, or "" (see Problem).
	Decision workflow.Decision
	// Token is the token found in the reply, normalized, or "".
	Token string
	// TokenFrom names where Token was found: address, subject or body.
	TokenFrom string
	// References lists the Message-IDs the reply answers, without angle
	// brackets: In-Reply-To first, then References from the newest.
	References []string
	// Problem is a Reason* code when reading alone shows the reply cannot
	// be used; the decision problems come after the token ones.
	Problem string
	// Language is a guess of the writer's language (en or fr, "" unknown).
	Language string
	// Text is the reply's own text: the lines above the original it
	// answers, less quoted lines, attributions and signatures, wherever
	// they stand.
	Text string

	header textproto.Header
}

// Bounce is what a delivery report says about the email that bounced.
type Bounce struct {
	// Failed is true unless the report only tells of a delay or a success.
	Failed bool
	// MessageIDs, Requests, Tokens and Recipients come from the attached
	// original (its headers): Message-ID, X-Contactd-Request, tokens in the
	// subject or recipient, and the recipients.
	MessageIDs []string
	Requests   []string
	Tokens     []string
	Recipients []string
}

// maxHTML bounds the HTML converted to text; a reply's own words come first.
const maxHTML = 256 << 10

// Read reads a raw message. replyAddress is imap.reply_address, whose
// sub-address carries a token. Read never fails: a message it cannot
// parse comes back with Problem set to ReasonUnreadable.
func Read(raw []byte, replyAddress string) *Reply {
	r := &Reply{}
	e, err := message.Read(bytes.NewReader(raw))
	if e == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
		r.Problem = ReasonUnreadable
		return r
	}
	r.readHeader(e.Header)
	if t, p, _ := e.Header.ContentType(); t == "multipart/report" && deliveryReport(p["report-type"]) {
		r.Bounce = readBounce(e)
	}
	if r.Automatic != "" {
		return r
	}
	text := bodyText(e, 0)
	r.readTokens(replyAddress, text)
	own, lang := ownText(text)
	r.Text = own
	r.Language = lang
	if r.Problem == "" {
		r.Decision, r.Problem = decision(own)
	}
	if r.Language == "" {
		r.Language = languageOfWords(own)
	}
	return r
}

// deliveryReport reports whether a multipart/report of that report-type
// tells of a delivery: read receipts (disposition-notification) and abuse
// reports (feedback-report) carry our headers too but are no bounce.
func deliveryReport(reportType string) bool {
	switch strings.ToLower(reportType) {
	case "", "delivery-status", "global-delivery-status":
		return true
	}
	return false
}

// ReadHeader reads only the header of a message, for one too large to be
// read whole: it says whether the message is automatic and who sent it.
func ReadHeader(raw []byte) *Reply {
	r := &Reply{}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		r.Problem = ReasonUnreadable
		return r
	}
	r.readHeader(message.Header{Header: h})
	if r.Automatic == "" && r.Problem == "" {
		r.Problem = ReasonTooLarge
	}
	return r
}

func (r *Reply) readHeader(h message.Header) {
	r.header = h.Header
	r.MessageID = messageID(h.Get("Message-Id"))
	if from, ok := fromAddress(h.Header); ok {
		r.From = from
	} else {
		r.Problem = ReasonBadFrom
	}
	r.Subject = decodeWords(h.Get("Subject"))
	r.References = references(h)
	r.NullReturnPath = h.Has("Return-Path") && strings.Trim(h.Get("Return-Path"), "<> \t") == ""
	r.Automatic = automatic(h, r.From)
}

// messageID strips the angle brackets and spaces of a Message-ID.
func messageID(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
	}
	if f := strings.Fields(v); len(f) > 0 {
		return f[0]
	}
	return ""
}

// references lists In-Reply-To then References, newest first, deduplicated.
func references(h message.Header) []string {
	var out []string
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] && len(out) < 50 {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, id := range msgIDList(h.Get("In-Reply-To")) {
		add(id)
	}
	refs := msgIDList(h.Get("References"))
	for i := len(refs) - 1; i >= 0; i-- {
		add(refs[i])
	}
	return out
}

func msgIDList(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return out
		}
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" {
			out = append(out, id)
		}
		v = v[i+j+1:]
	}
}

// decodeWords decodes RFC 2047 encoded words, keeping the raw text when
// they are broken.
func decodeWords(v string) string {
	f := message.HeaderFromMap(map[string][]string{"X": {v}})
	s, err := f.Text("X")
	if err != nil {
		return v
	}
	return s
}

// automatic says why a message was written by a machine, or "". from is
// the sender's address as parsed.
func automatic(h message.Header, from string) string {
	if v := headerWord(h.Get("Auto-Submitted")); v != "" && v != "no" {
		return "auto-submitted: " + v
	}
	switch v := headerWord(h.Get("Precedence")); v {
	case "bulk", "junk", "list", "auto_reply":
		return "precedence: " + v
	}
	// X-Autoreply and X-Autorespond: vacation programs; X-Autogenerated:
	// Exchange's replies and forwards; X-Failed-Recipients: bounces of
	// Exim; X-Loop: procmail, mailing lists and ticket systems.
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-Failed-Recipients", "X-Loop", "List-Id"} {
		if h.Has(k) {
			return strings.ToLower(k)
		}
	}
	if t, p, err := h.ContentType(); err == nil {
		if t == "multipart/report" || t == "message/delivery-status" {
			return "delivery report (" + strings.ToLower(p["report-type"]) + ")"
		}
	}
	if h.Has("Return-Path") && strings.Trim(h.Get("Return-Path"), "<> \t") == "" {
		return "empty return path"
	}
	if l := senderLocal(from, h.Get("From")); l == "mailer-daemon" || l == "postmaster" {
		return "sender " + l
	}
	return ""
}

// senderLocal returns the lower-cased local part of the sender: of the
// parsed address, else the first word of a From field that did not parse
// ("MAILER-DAEMON (Mail Delivery System)" has no domain).
func senderLocal(from, raw string) string {
	if local, _, ok := splitAddress(from); ok {
		return strings.ToLower(local)
	}
	raw = strings.TrimLeft(strings.TrimSpace(raw), "<")
	if i := strings.IndexAny(raw, " \t(<>@"); i >= 0 {
		raw = raw[:i]
	}
	return strings.ToLower(raw)
}

// headerWord is the first word of a structured header field, lower-cased.
func headerWord(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.IndexAny(v, "; \t("); i >= 0 {
		v = v[:i]
	}
	return v
}

// maxParts bounds the walk of a message's MIME tree.
const (
	maxDepth = 8
	maxParts = 64
)

// bodyText returns the text a person wrote in e: the first text/plain
// part, else the first text/html part as text. Attachments and attached
// messages are skipped.
func bodyText(e *message.Entity, depth int) string {
	var plain, html string
	walkText(e, depth, new(int), &plain, &html)
	if strings.TrimSpace(plain) != "" {
		return plain
	}
	if html != "" {
		return htmlText(html)
	}
	return plain
}

func walkText(e *message.Entity, depth int, parts *int, plain, html *string) {
	*parts++
	if depth > maxDepth || *parts > maxParts || *plain != "" {
		return
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err != nil && p == nil {
				return
			}
			walkText(p, depth+1, parts, plain, html)
			if *plain != "" || *parts > maxParts {
				return
			}
		}
	}
	if disp, _, _ := e.Header.ContentDisposition(); disp == "attachment" {
		return
	}
	t, _, err := e.Header.ContentType()
	if err != nil && e.Header.Get("Content-Type") != "" {
		return
	}
	switch t {
	case "", "text/plain":
		*plain = readLimited(e.Body, maxHTML)
	case "text/html":
		if *html == "" {
			*html = readLimited(e.Body, maxHTML)
		}
	}
}

func readLimited(r io.Reader, n int64) string {
	b, _ := io.ReadAll(io.LimitReader(r, n))
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
