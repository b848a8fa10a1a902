package workflow

import "fmt"

// Keys names every Redis key contactd uses. All live under the configured
// prefix. Keys that change together carry the hash tag of their service's
// shard, "{sN}", so one script touches one Cluster slot; the global ones
// (directory contacts and the per-NIC indexes) are only ever pointers or
// lookups outside those scripts.
type Keys struct{ Prefix string }

// Contact is a HASH of a directory contact: email, name, language, payment_ok.
func (k Keys) Contact(nic string) string { return k.Prefix + ":contact:" + nic }

// NICServices is a SET of service ids where nic held a role when last
// written; readers re-check each service.
func (k Keys) NICServices(nic string) string { return k.Prefix + ":nic:" + nic + ":services" }

// NICRequests is a ZSET of request ids (score: creation time in ms) where
// nic is requester, approver or informed.
func (k Keys) NICRequests(nic string) string { return k.Prefix + ":nic:" + nic + ":requests" }

// Events is the STREAM of ended and disputed requests (SPEC section 9).
func (k Keys) Events() string { return k.Prefix + ":events" }

// Shard is the prefix of every key in shard n, hash tag included.
func (k Keys) Shard(n int) string { return fmt.Sprintf("%s:{s%d}:", k.Prefix, n) }

// Service is a HASH of a service: kind, admin, tech, billing.
func (k Keys) Service(id string) string { return k.Shard(ShardOf(id)) + "svc:" + id }

// Open is a HASH role -> id of the open request on the service touching it.
func (k Keys) Open(id string) string { return k.Shard(ShardOf(id)) + "open:" + id }

// Request is a HASH of a request (see scripts.go for its fields).
func (k Keys) Request(shard int, id string) string { return k.Shard(shard) + "req:" + id }

// Token is a HASH of a token's hash: r (request id), n (nic), k (v for a
// validation token, r for a report token), x (ms after which a report
// token is dead). It outlives its token by workflow.request_ttl so a dead
// token reads as gone, not unknown.
func (k Keys) Token(shard int, hash string) string { return k.Shard(shard) + "tok:" + hash }

// DueExpire is a ZSET of pending request ids by expiry time (ms).
func (k Keys) DueExpire(shard int) string { return k.Shard(shard) + "due:expire" }

// DueRemind is a ZSET of "id nic" by the time its reminder is due (ms).
func (k Keys) DueRemind(shard int) string { return k.Shard(shard) + "due:remind" }

// DueApply is a ZSET of approved request ids by approval time (ms).
func (k Keys) DueApply(shard int) string { return k.Shard(shard) + "due:apply" }

// Outbox is a HASH of outbox message id -> message JSON.
func (k Keys) Outbox(shard int) string { return k.Shard(shard) + "outbox" }

// OutboxReady is a ZSET of outbox message ids by the time they may be sent (ms).
func (k Keys) OutboxReady(shard int) string { return k.Shard(shard) + "outbox:ready" }

// OutboxClaimed is a ZSET of outbox message ids being sent, by claim expiry (ms).
func (k Keys) OutboxClaimed(shard int) string { return k.Shard(shard) + "outbox:claimed" }

// OutboxDead is a ZSET of outbox message ids given up on, by time (ms).
func (k Keys) OutboxDead(shard int) string { return k.Shard(shard) + "outbox:dead" }

// OutboxSeq is a STRING counter numbering the shard's outbox messages.
func (k Keys) OutboxSeq(shard int) string { return k.Shard(shard) + "outbox:seq" }

// SentMessage is a HASH describing an email contactd sent, by its
// Message-ID (angle brackets stripped): r (request id), n (recipient NIC),
// k (kind), h (hash of the token it carried, if any). Replies that quote
// the Message-ID in In-Reply-To or References are matched through it. It
// expires with the request's tokens.
func (k Keys) SentMessage(messageID string) string { return k.Prefix + ":msg:" + messageID }

// InboxClaim is a STRING set with NX by the daemon that acts on a received
// message, named by mailbox UIDVALIDITY and UID or by Message-ID, so a
// message is acted on once whatever crashes or daemons share the mailbox.
func (k Keys) InboxClaim(id string) string { return k.Prefix + ":inbox:claim:" + id }

// NotUnderstood is a STRING set with NX and a one-hour TTL per sender
// address, so a sender gets at most one "reply not understood" an hour.
func (k Keys) NotUnderstood(address string) string { return k.Prefix + ":inbox:nu:" + address }

// Lock is a STRING holding the owner and fencing token of a sweep lock.
func (k Keys) Lock(name string) string { return k.Prefix + ":lock:" + name }

// Fence is a STRING counter handing out fencing tokens for lock name.
func (k Keys) Fence(name string) string { return k.Prefix + ":fence:" + name }
