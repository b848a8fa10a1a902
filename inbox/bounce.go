package inbox

import (
	"bufio"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// readBounce reads a delivery report (RFC 3464): whether delivery failed,
// from its message/delivery-status part, and which email it is about,
// from the headers of the attached original.
func readBounce(e *message.Entity) *Bounce {
	b := &Bounce{}
	sawAction, failed := false, false
	parts := 0
	var walk func(e *message.Entity, depth int)
	walk = func(e *message.Entity, depth int) {
		parts++
		if depth > maxDepth || parts > maxParts {
			return
		}
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if err != nil && p == nil {
					return
				}
				walk(p, depth+1)
			}
		}
		t, _, _ := e.Header.ContentType()
		switch t {
		case "message/delivery-status", "message/global-delivery-status":
			a, f := deliveryActions(e.Body)
			sawAction, failed = sawAction || a, failed || f
		case "message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers":
			b.original(e.Body)
		}
	}
	walk(e, 0)
	// A report that names no action is taken as a failure; one that only
	// tells of delays or successes is not.
	b.Failed = failed || !sawAction
	return b
}

// deliveryActions scans the per-recipient fields of a delivery-status
// body for Action: lines.
func deliveryActions(r io.Reader) (saw, failed bool) {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "action") {
			continue
		}
		saw = true
		if strings.EqualFold(headerWord(v), "failed") {
			failed = true
		}
	}
	return saw, failed
}

// original records what the headers of the email that bounced say.
func (b *Bounce) original(r io.Reader) {
	h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(r, 256<<10)))
	if err != nil && h.Len() == 0 {
		return
	}
	mh := message.Header{Header: h}
	if id := messageID(mh.Get("Message-Id")); id != "" {
		b.MessageIDs = append(b.MessageIDs, id)
	}
	if id := strings.TrimSpace(mh.Get("X-Contactd-Request")); id != "" {
		b.Requests = append(b.Requests, id)
	}
	if t := firstToken(decodeWords(mh.Get("Subject"))); t != "" {
		b.Tokens = append(b.Tokens, t)
	}
	for _, v := range mh.Values("To") {
		b.Recipients = append(b.Recipients, addresses(v)...)
	}
}
