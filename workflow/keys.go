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
// together carry the hash tag of their service's shard, "{sN}", so one
// script touches one Cluster slot; the global ones (directory contacts,
// the per-NIC and per-address indexes, the events stream, inbox claims,
// locks) are only ever pointers or lookups outside those scripts.
//
// The Lua scripts build the names of a shard's keys from the shard prefix
// they receive and the suffixes below, through the table luaKeys writes, so
// a rename here renames the key in every script too.
type Keys struct{ Prefix string }

// The suffixes of the per-shard keys, after "PREFIX:{sN}:".
const (
	sfxService     = "svc:"           // + service id
	sfxOpen        = "open:"          // + service id
	sfxRequest     = "req:"           // + request id
	sfxToken       = "tok:"           // + token hash
	sfxSent        = "msg:"           // + Message-ID hash
	sfxDueExpire   = "due:expire"     //
	sfxDueRemind   = "due:remind"     //
	sfxDueApply    = "due:apply"      //
	sfxQuarantine  = "due:bad"        //
	sfxOutbox      = "outbox"         //
	sfxOutboxReady = "outbox:ready"   //
	sfxOutboxClaim = "outbox:claimed" //
	sfxOutboxDead  = "outbox:dead"    //
	sfxOutboxSeq   = "outbox:seq"     //
	sfxOutboxWake  = "outbox:wake"    // pub/sub channel
	sfxStats       = "stats"          //
	sfxHistory     = ":h"             // after a request's key
)

// luaKeys is the Lua prelude that names the shard's keys for the scripts:
// K.outbox(P) is the outbox of the shard whose prefix is P, and so on.
func luaKeys() string {
	var b strings.Builder
	b.WriteString("local K = {}\n")
	fmt.Fprintf(&b, "K.hist = function(k) return k .. %q end\n", sfxHistory)
	for _, k := range []struct{ name, sfx string }{
		{"svc", sfxService}, {"open", sfxOpen}, {"req", sfxRequest}, {"tok", sfxToken}, {"sent", sfxSent},
		{"due_expire", sfxDueExpire}, {"due_remind", sfxDueRemind}, {"due_apply", sfxDueApply},
		{"quarantine", sfxQuarantine}, {"outbox", sfxOutbox}, {"ready", sfxOutboxReady},
		{"claimed", sfxOutboxClaim}, {"dead", sfxOutboxDead}, {"seq", sfxOutboxSeq}, {"wake", sfxOutboxWake}, {"stats", sfxStats},
	} {
		fmt.Fprintf(&b, "K.%s = function(p, s) return p .. %q .. (s or '') end\n", k.name, k.sfx)
	}
	return b.String()
}

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

// OutboxWake is the pub/sub channel of shard n on which every script that
// queues an email publishes, so that the mailers of every daemon wake up
// at once; OutboxWakePattern matches the channels of every shard.
func (k Keys) OutboxWake(n int) string { return k.Shard(n) + sfxOutboxWake }

// OutboxWakePattern is the PSUBSCRIBE pattern of every shard's OutboxWake.
func (k Keys) OutboxWakePattern() string { return k.Prefix + ":{s*}:" + sfxOutboxWake }

// Shard is the prefix of every key in shard n, hash tag included.
func (k Keys) Shard(n int) string { return fmt.Sprintf("%s:{s%d}:", k.Prefix, n) }

// Service is a HASH of a service: kind, admin, tech, billing.
func (k Keys) Service(id string) string { return k.Shard(ShardOf(id)) + sfxService + id }

// Open is a HASH role -> id of the open request on the service touching it.
func (k Keys) Open(id string) string { return k.Shard(ShardOf(id)) + sfxOpen + id }

// Request is a HASH of a request (see scripts.go for its fields).
func (k Keys) Request(shard int, id string) string { return k.Shard(shard) + sfxRequest + id }

// History is a STRING of a request's history, one "ms event nic channel"
// line per event, appended to (kept apart from the request's HASH so that
// the hash stays small enough for Redis's compact encoding).
func (k Keys) History(shard int, id string) string { return k.Request(shard, id) + sfxHistory }

// Token is a HASH of a token's hash: r (request id), n (nic), k (v for a
// validation token, r for a report token), x (ms after which a report
// token is dead). It outlives its token by workflow.request_ttl so a dead
// token reads as gone, not unknown.
func (k Keys) Token(shard int, hash string) string { return k.Shard(shard) + sfxToken + hash }

// SentMessage is a HASH describing an email contactd sent, named by the
// hash of its Message-ID (a Message-ID shows in every relay's log; the
// hash does not lead back to a request): r (request id), n (recipient
// NIC), k (kind), h (hash of the token it carried, if any). It lives in
// the shard of the request, whose id starts the Message-ID (its first
// character names the shard; "" for a Message-ID that cannot be ours).
// Replies and delivery reports that quote the Message-ID are matched
// through it. It expires with the request's tokens.
func (k Keys) SentMessage(messageID string) string {
	id := strings.Trim(strings.TrimSpace(messageID), "<>")
	shard, ok := shardFromID(id)
	if !ok {
		return ""
	}
	return k.Shard(shard) + sfxSent + hashMessageID(id)
}

// hashMessageID is the hex SHA-256 of a Message-ID without angle brackets.
func hashMessageID(id string) string {
	sum := sha256.Sum256([]byte(strings.Trim(id, "<>")))
	return hex.EncodeToString(sum[:16])
}

// DueExpire is a ZSET of pending request ids by expiry time (ms).
func (k Keys) DueExpire(shard int) string { return k.Shard(shard) + sfxDueExpire }

// DueRemind is a ZSET of "id nic" by the time its reminder is due (ms).
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

// Outbox is a HASH of outbox message id -> message JSON.
func (k Keys) Outbox(shard int) string { return k.Shard(shard) + sfxOutbox }

// OutboxReady is a ZSET of outbox message ids by the time they may be sent (ms).
func (k Keys) OutboxReady(shard int) string { return k.Shard(shard) + sfxOutboxReady }

// OutboxClaimed is a ZSET of outbox message ids being sent, by the time
// their claim lapses (ms); the sending daemon's heartbeat pushes it on.
func (k Keys) OutboxClaimed(shard int) string { return k.Shard(shard) + sfxOutboxClaim }

// OutboxDead is a ZSET of outbox message ids given up on, by time (ms);
// they are forgotten after DeadRetention.
func (k Keys) OutboxDead(shard int) string { return k.Shard(shard) + sfxOutboxDead }

// OutboxSeq is a STRING counter numbering the shard's outbox messages.
func (k Keys) OutboxSeq(shard int) string { return k.Shard(shard) + sfxOutboxSeq }

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
