package workflow

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"hash/fnv"
	"strings"
	"unicode"
)

// Shards is the fixed number of Redis hash-tag shards. A service and
// everything that changes with it (its requests, their due times and
// outbox entries) live in one shard, so each transition is one script
// on one Cluster slot.
const Shards = 32

// b32 is lower-case base32 without padding: a case-insensitive alphabet
// that survives mail systems that change the case of addresses.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ShardOf returns the shard of a service id.
func ShardOf(serviceID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(serviceID))
	return int(h.Sum32() % Shards)
}

// shardChar writes a shard as the first character of ids and tokens.
func shardChar(shard int) byte { return b32Alphabet[shard] }

const b32Alphabet = "abcdefghijklmnopqrstuvwxyz234567"

// shardFromID reads the shard from the first character of an id or token.
func shardFromID(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	i := strings.IndexByte(b32Alphabet, s[0])
	return i, i >= 0 && i < Shards
}

// randomB32 returns n bytes from crypto/rand in lower-case base32.
func randomB32(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("workflow: crypto/rand failed: " + err.Error())
	}
	return b32.EncodeToString(b)
}

// newRequestID returns a fresh request id of the given shard: one shard
// character and 80 random bits.
func newRequestID(shard int) string {
	return string(shardChar(shard)) + randomB32(10)
}

// ValidRequestID reports whether s has the shape of a request id.
func ValidRequestID(s string) bool { return validB32(s, 17) }

// TokenLen is the length of a token: one shard character and 160 random bits.
const TokenLen = 33

// newToken returns a fresh token of the given shard.
func newToken(shard int) string {
	return string(shardChar(shard)) + randomB32(20)
}

// NormalizeToken reads a token as found in a link or an email, or as a
// person typed it as a validation code: case does not matter, and spaces
// and dashes (the grouping of the code as emails show it) are dropped. It
// returns the token in lower case and reports whether it has the shape
// of one of ours.
func NormalizeToken(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r), r == '-', r >= '\u2010' && r <= '\u2015', r == '\u2212':
			return -1
		}
		return unicode.ToLower(r)
	}, s)
	return s, validB32(s, TokenLen)
}

func validB32(s string, n int) bool {
	if len(s) != n {
		return false
	}
	if _, ok := shardFromID(s); !ok {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(b32Alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// HashToken is the only form in which a token is stored, its reference:
// the first 128 bits of its SHA-256, in lower-case base32 (26 characters).
// A token record is named by it, a request keeps it for the approver's
// live tokens, and the Message-ID of the email that carried the token
// shows it, so that a reply or a delivery report quoting that Message-ID
// finds the token without the token being known.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b32.EncodeToString(sum[:16])
}

// TokenRefLen is the length of a token's reference (HashToken).
const TokenRefLen = 26

// ValidTokenRef reports whether s has the shape of a token's reference.
func ValidTokenRef(s string) bool {
	if len(s) != TokenRefLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(b32Alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
