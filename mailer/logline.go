package mailer

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"contactd/templates"
)

// The "email sent" log line says where an email went without saying to
// whom or carrying anything that acts as a token: the recipient's domain,
// a hash of the Message-ID (which shows in the relay's log too, and, for
// an email with a token, names the token's reference, which a reply may
// quote), and what the relay answered (its queue id, usually).

// domainOf is the domain of an address, lower-cased.
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(addr[at+1:]))
}

// hashID is a short hex SHA-256 of a Message-ID (without angle
// brackets): enough to find the email in the relay's log by hashing its
// Message-ID the same way.
func hashID(id string) string {
	sum := sha256.Sum256([]byte(strings.Trim(id, "<>")))
	return hex.EncodeToString(sum[:8])
}

// relayReply is the relay's answer to the message, one line, at most
// 120 characters: "2.0.0 Ok: queued as 4ZXY", say.
func relayReply(s string) string {
	s = templates.OneLine(s)
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
