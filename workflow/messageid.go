package workflow

import (
	"fmt"
	"strconv"
	"strings"
)

// MessageID returns the Message-ID (without angle brackets) of the email
// of kind that entry e sends, at domain. It is unique per entry and kind,
// and stable across retries, except that an email carrying an approver's
// token (e.TokenRef set) names that token's reference: a reply or a
// delivery report quoting the Message-ID is then matched to the token
// (LookupSent) without the token being written anywhere but in the email.
//
//	RECORD.KIND.SHARD-ENTRY.QUEUED[.tREF]@DOMAIN
//
// RECORD is the request's or hand-over's id ("x" for none), KIND the
// kind with dashes, QUEUED the time the entry was queued in base 36.
func MessageID(e *OutboxEntry, kind Kind, domain string) string {
	rec := e.Request
	if e.Handover != "" {
		rec = e.Handover
	}
	if rec == "" {
		rec = "x"
	}
	tail := ""
	if kind.CarriesToken() && e.TokenRef != "" {
		tail = ".t" + e.TokenRef
	}
	return fmt.Sprintf("%s.%s.%d-%s.%s%s@%s", rec, strings.ReplaceAll(string(kind), "_", "-"), e.Shard, e.ID,
		strconv.FormatInt(e.At, 36), tail, domain)
}

// MessageRef is what a Message-ID written by MessageID says.
type MessageRef struct {
	// Record is the request's or hand-over's id.
	Record string
	Kind   Kind
	// TokenRef is the reference of the approver's token the email
	// carried, if any.
	TokenRef string
}

// ParseMessageID reads a Message-ID written by MessageID (with or without
// angle brackets); ok is false for any other.
func ParseMessageID(id string) (MessageRef, bool) {
	id = strings.Trim(strings.TrimSpace(id), "<>")
	local, _, found := strings.Cut(id, "@")
	if !found || len(local) > 200 {
		return MessageRef{}, false
	}
	parts := strings.Split(local, ".")
	if len(parts) < 4 || !ValidRequestID(parts[0]) {
		return MessageRef{}, false
	}
	m := MessageRef{Record: parts[0], Kind: Kind(strings.ReplaceAll(parts[1], "-", "_"))}
	if last := parts[len(parts)-1]; len(parts) == 5 && strings.HasPrefix(last, "t") && ValidTokenRef(last[1:]) {
		m.TokenRef = last[1:]
	}
	return m, true
}
