package workflow

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Keys names every Redis key contactd uses; this file is the only place a
// key is spelt. All keys live under the configured prefix. Keys that change
// together carry the hash tag of their shard, "{sN}", so one script
// touches one Cluster slot; the global ones (directory contacts, the
// per-NIC and per-address indexes, the events stream, inbox claims, locks)
// are only read and written outside those scripts.
//
// Scripts never build a key name: every key a script touches is computed
// here, in Go, and passed in KEYS (see scripts.go).
type Keys struct{ Prefix string }

// The suffixes of the per-shard keys, after "PREFIX:{sN}:".
const (
	sfxService    = "svc:"       // + service id
	sfxRequest    = "req:"       // + request id
	sfxHandover   = "ho:"        // + hand-over id
	sfxToken      = "t:"         // + token reference
	sfxDueExpire  = "due:expire" //
	sfxDueRemind  = "due:remind" //
	sfxDueApply   = "due:apply"  //
	sfxQuarantine = "due:bad"    //
	sfxOutbox     = "ob"         //
	sfxOutboxQ    = "ob:q"       //
	sfxOutboxDead = "ob:dead"    //
	sfxOutboxSeq  = "ob:seq"     //
	sfxOutboxWake = "ob:wake"    // pub/sub channel
	sfxStats      = "stats"      //
	sfxHistory    = ":h"         // after a request's or a hand-over's key
	sfxItems      = ":l"         // after a hand-over's key
	sfxRefused    = ":x"         // after a hand-over's key
	sfxOutcomes   = ":o"         // after a hand-over's key
	sfxHoExpire   = "due:ho:expire"
	sfxHoRemind   = "due:ho:remind"
	sfxHoCreate   = "due:ho:create"
)

// Contact is a HASH of a directory contact: e (email), n (name), l
// (language), payment_ok ("1" or "0"). Contacts written before the
// directory indexes were bucketed spell the first three email, name and
// language; decodeContact reads both, and `contactd directory reindex`
// rewrites them.
func (k Keys) Contact(nic string) string { return k.Prefix + ":contact:" + nic }

// IndexBuckets is the number of buckets of each directory index (EmailIndex
// and NICIndex): enough for every bucket of a directory of two million
// services to stay under Redis's default listpack limit of 128 entries.
const IndexBuckets = 1 << 15

// EmailIndex is a HASH, bucket n of the index of contacts by email address:
// field TAG+NIC, value "", for each contact whose address (lower case)
// falls in bucket n with the three-character TAG (see indexSlot). Readers
// re-check each contact.
func (k Keys) EmailIndex(n int) string { return k.Prefix + ":ix:e:" + strconv.Itoa(n) }

// NICIndex is a HASH, bucket n of the index of services by role holder:
// field TAG+SERVICE, value "", for each service where a NIC that falls in
// bucket n with TAG held a role when last written. Readers re-check each
// service.
func (k Keys) NICIndex(n int) string { return k.Prefix + ":ix:n:" + strconv.Itoa(n) }

// LegacyContactsByEmail is a SET of NICs by email address (lower case),
// the email index written before EmailIndex. Readers still look at it
// until `contactd directory reindex` has removed it.
func (k Keys) LegacyContactsByEmail(address string) string {
	return k.Prefix + ":email:" + strings.ToLower(address)
}

// LegacyContactsByEmailPattern matches every LegacyContactsByEmail key.
func (k Keys) LegacyContactsByEmailPattern() string { return globQuote(k.Prefix) + ":email:*" }

// LegacyNICServices is a SET of service ids by role holder, the index
// written before NICIndex. Readers still look at it until `contactd
// directory reindex` has removed it.
func (k Keys) LegacyNICServices(nic string) string { return k.Prefix + ":nic:" + nic + ":services" }

// LegacyNICServicesPattern matches every LegacyNICServices key.
func (k Keys) LegacyNICServicesPattern() string { return globQuote(k.Prefix) + ":nic:*:services" }

// ContactPattern matches every Contact key.
func (k Keys) ContactPattern() string { return globQuote(k.Prefix) + ":contact:*" }

// ServicePattern matches every Service key, of every shard.
func (k Keys) ServicePattern() string { return globQuote(k.Prefix) + ":{s*}:" + sfxService + "*" }

// globQuote escapes the characters special to Redis's glob patterns.
func globQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// NICRequests is a ZSET of request ids (score: creation time in ms) where
// nic is requester, approver or informed.
func (k Keys) NICRequests(nic string) string { return k.Prefix + ":nic:" + nic + ":requests" }

// Events is the STREAM of ended and disputed requests (SPEC section 9),
// capped at about EventsMaxLen entries.
func (k Keys) Events() string { return k.Prefix + ":events" }

// EventPublished is a STRING marking that the outbox entry ref ("shard/id")
// appended its event to Events. Its hash tag is the stream's name, so it
// lives in the stream's Cluster slot and one script writes both.
func (k Keys) EventPublished(ref string) string { return "{" + k.Events() + "}:pub:" + ref }

// NICHandovers is a ZSET of hand-over ids (score: creation time in ms)
// where nic is the requester or an approver; "My requests" lists their
// requests as it lists the others.
func (k Keys) NICHandovers(nic string) string { return k.Prefix + ":nic:" + nic + ":handovers" }

// OutboxWake is the pub/sub channel of shard n on which every script that
// queues an entry publishes, so that the mailers of every daemon wake up
// at once; OutboxWakePattern matches the channels of every shard.
func (k Keys) OutboxWake(n int) string { return k.Shard(n) + sfxOutboxWake }

// OutboxWakePattern is the PSUBSCRIBE pattern of every shard's OutboxWake.
func (k Keys) OutboxWakePattern() string { return k.Prefix + ":{s*}:" + sfxOutboxWake }

// Shard is the prefix of every key in shard n, hash tag included.
func (k Keys) Shard(n int) string { return fmt.Sprintf("%s:{s%d}:", k.Prefix, n) }

// Service is a HASH of a service: kind, admin, tech, billing, and, for
// each role an open request would change, o:ROLE = "ID EXPIRES": the id of
// that request and its expiry time in ms (0 once it is approved: it then
// holds the role until it is applied or fails).
func (k Keys) Service(id string) string { return k.Shard(ShardOf(id)) + sfxService + id }

// Request is a HASH of a request (see scripts.go for its fields).
func (k Keys) Request(shard int, id string) string { return k.Shard(shard) + sfxRequest + id }

// History is a STRING of a request's history, one "ms event nic channel"
// line per event, appended to (kept apart from the request's HASH so that
// the hash stays small enough for Redis's compact encoding).
func (k Keys) History(shard int, id string) string { return k.Request(shard, id) + sfxHistory }

// Handover is a HASH of a hand-over (see handover.go for its fields).
func (k Keys) Handover(shard int, id string) string { return k.Shard(shard) + sfxHandover + id }

// HandoverHistory is a STRING of a hand-over's history, as History.
func (k Keys) HandoverHistory(shard int, id string) string {
	return k.Handover(shard, id) + sfxHistory
}

// HandoverItems is a STRING listing a hand-over's requests, one line each
// (see handover.go).
func (k Keys) HandoverItems(shard int, id string) string { return k.Handover(shard, id) + sfxItems }

// HandoverRefused is a STRING of the services a hand-over left out, one
// JSON object per line: {"service","code","message"}.
func (k Keys) HandoverRefused(shard int, id string) string {
	return k.Handover(shard, id) + sfxRefused
}

// HandoverOutcomes is a STRING of how a hand-over's requests ended once
// its decision was carried out, one "request-id status reason" line each.
func (k Keys) HandoverOutcomes(shard int, id string) string {
	return k.Handover(shard, id) + sfxOutcomes
}

// DueHandoverExpire is a ZSET of pending hand-over ids by expiry time (ms).
func (k Keys) DueHandoverExpire(shard int) string { return k.Shard(shard) + sfxHoExpire }

// DueHandoverRemind is a ZSET of "HANDOVER NIC" by the time the reminder
// of that approver is due (ms).
func (k Keys) DueHandoverRemind(shard int) string { return k.Shard(shard) + sfxHoRemind }

// DueHandoverCreate is a ZSET of the ids of hand-overs being created, by
// the time a sweep finishes a creation its daemon left half done (ms).
func (k Keys) DueHandoverCreate(shard int) string { return k.Shard(shard) + sfxHoCreate }

// HandoverIdempotency is a STRING naming the hand-over an idempotency key
// created (the key, which comes from a client, hashed), kept a day.
func (k Keys) HandoverIdempotency(key string) string {
	return k.Prefix + ":idem:" + hashMessageID(key)
}

// Token is a STRING naming what a token is for, under the token's
// reference (TokenRef; the token itself is never stored): "v REQ NIC
// SERVICE" for an approver's token of a request, "h HANDOVER NIC" for an
// approver's token of a hand-over, "r REQ NIC UNTIL" and "g HANDOVER NIC
// UNTIL" for "this wasn't me" tokens (UNTIL in ms; " used" is appended
// once used). It outlives its token by workflow.request_ttl so that a dead
// token reads as gone, not unknown.
func (k Keys) Token(shard int, ref string) string { return k.Shard(shard) + sfxToken + ref }

// DueExpire is a ZSET of pending request ids by expiry time (ms).
func (k Keys) DueExpire(shard int) string { return k.Shard(shard) + sfxDueExpire }

// DueRemind is a ZSET of "ID NIC" by the time its reminder is due (ms),
// ID being a request's or a hand-over's.
func (k Keys) DueRemind(shard int) string { return k.Shard(shard) + sfxDueRemind }

// DueApply is a ZSET of approved request ids by approval time (ms).
func (k Keys) DueApply(shard int) string { return k.Shard(shard) + sfxDueApply }

// Quarantine is a ZSET of "set member" items a sweep could not handle
// (a due entry naming no request, say), by the time they were set aside;
// they are kept for an operator and never retried by themselves.
func (k Keys) Quarantine(shard int) string { return k.Shard(shard) + sfxQuarantine }

// Stats is a HASH status -> number of the shard's requests in it, kept
// by the scripts as requests move (requests stored before it existed
// are not counted).
func (k Keys) Stats(shard int) string { return k.Shard(shard) + sfxStats }

// Outbox is a HASH of the shard's outbox entries: ID -> entry JSON, and,
// while an entry is claimed, ID:o -> its claim (owner and fence).
func (k Keys) Outbox(shard int) string { return k.Shard(shard) + sfxOutbox }

// OutboxQueue is a ZSET of the ids of the outbox entries still to be
// handled, by the time to look at each again (ms): when it may be sent,
// for a ready entry; when its lease lapses, for a claimed one.
func (k Keys) OutboxQueue(shard int) string { return k.Shard(shard) + sfxOutboxQ }

// OutboxDead is a ZSET of outbox ids given up on, by time (ms); they are
// forgotten after DeadRetention.
func (k Keys) OutboxDead(shard int) string { return k.Shard(shard) + sfxOutboxDead }

// OutboxSeq is a STRING counter numbering the shard's outbox entries.
func (k Keys) OutboxSeq(shard int) string { return k.Shard(shard) + sfxOutboxSeq }

// hashMessageID is the hex SHA-256 of a Message-ID without angle brackets.
func hashMessageID(id string) string {
	sum := sha256.Sum256([]byte(strings.Trim(id, "<>")))
	return hex.EncodeToString(sum[:16])
}

// InboxClaim is a STRING set with NX by the daemon that acts on a received
// message, named by mailbox UIDVALIDITY and UID or by Message-ID, so a
// message is acted on once whatever crashes or daemons share the mailbox.
// The id (which comes from a received message) is hashed. It lives
// InboxClaimTTL.
func (k Keys) InboxClaim(id string) string { return k.Prefix + ":inbox:claim:" + hashMessageID(id) }

// NotUnderstood is a STRING set with NX and a one-hour TTL per sender
// address, so a sender gets at most one "reply not understood" an hour.
func (k Keys) NotUnderstood(address string) string {
	return k.Prefix + ":inbox:nu:" + strings.ToLower(address)
}

// Lock is a STRING holding the owner and fencing token of a lock.
func (k Keys) Lock(name string) string { return k.Prefix + ":lock:" + name }

// Fence is a STRING counter handing out fencing tokens for lock name.
func (k Keys) Fence(name string) string { return k.Prefix + ":fence:" + name }
