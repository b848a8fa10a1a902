package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The outbox of each shard is four structures that the transitions write
// and the mailer moves entries between (names in keys.go):
//
//	outbox          HASH  id -> entry JSON (a Message, plus the delivery
//	                      fields of OutboxEntry once tried)
//	outbox:ready    ZSET  id by the time it may be sent (ms)
//	outbox:claimed  ZSET  id by the time its claim lapses (ms)
//	outbox:dead     ZSET  id by the time it was given up (ms)
//
// An id is in exactly one of the three sets; its JSON stays in the hash
// until it is sent, or, dead, for DeadRetention. Every move is one script
// on the shard's slot. A claim is a short lease that the sending daemon's
// heartbeat renews; a daemon that dies stops renewing, and its entries go
// back to ready as soon as the lease lapses.

// DeadRetention is how long a dead outbox entry is kept for an operator
// to inspect and retry before a sweep forgets it.
const DeadRetention = 30 * 24 * time.Hour

// EventsMaxLen is the approximate number of entries the events stream
// keeps by default (XADD MAXLEN ~): older ones are trimmed. Consumers that
// fall further behind miss events; the webhook does not depend on it.
const EventsMaxLen = 100000

// Message is one entry of the transactional outbox: an email to send (or,
// for KindEvent, a finished request to publish). The workflow writes it
// in the same step as the change that causes it; the mailer renders it
// from the request's state when it sends it.
type Message struct {
	Kind    Kind   `json:"kind"`
	Request string `json:"request,omitempty"`
	// NIC is the contact the email goes to.
	NIC string `json:"nic,omitempty"`
	// About is the approver an undeliverable notice is about.
	About string `json:"about,omitempty"`
	// Event is the status (or "disputed") a KindEvent publishes.
	Event string `json:"event,omitempty"`
	// To, Language, Reason and InReplyTo address a not_understood reply to
	// a sender who may be in no directory.
	To        string `json:"to,omitempty"`
	Language  string `json:"language,omitempty"`
	Reason    string `json:"reason,omitempty"`
	InReplyTo string `json:"in_reply_to,omitempty"`
	// At is when it was queued (ms).
	At int64 `json:"at"`
}

// OutboxEntry is an outbox message as the mailer handles it: the message
// and what delivery has learnt so far.
type OutboxEntry struct {
	Message
	// Attempts counts the deliveries tried.
	Attempts int `json:"attempts,omitempty"`
	// LastError is the last failure, for whoever inspects a dead entry.
	LastError string `json:"last_error,omitempty"`
	// Published is set once an event is on the events stream, so that a
	// retry of its webhook does not append it twice.
	Published bool `json:"published,omitempty"`

	// Shard and ID locate the entry; Unreadable is set when its JSON could
	// not be read (the entry can only be given up). TokenHash is the hash
	// of the token issued for the attempt under way, if any.
	Shard      int    `json:"-"`
	ID         string `json:"-"`
	Unreadable bool   `json:"-"`
	TokenHash  string `json:"-"`
	// Due is, for a listed entry, when it may be sent (ready), when its
	// claim lapses (claimed) or when it was given up (dead).
	Due time.Time `json:"-"`
}

// Ref names the entry in logs and in the outbox commands: "shard/id".
func (e *OutboxEntry) Ref() string { return strconv.Itoa(e.Shard) + "/" + e.ID }

// ParseOutboxRef reads a Ref.
func ParseOutboxRef(ref string) (int, string, error) {
	sh, id, ok := strings.Cut(ref, "/")
	n, err := strconv.Atoi(sh)
	if !ok || err != nil || n < 0 || n >= Shards || id == "" || strings.ContainsAny(id, " /") {
		return 0, "", Errorf(EInvalidRequest, "%q is not an outbox entry (shard/id, as listed)", clip(ref))
	}
	return n, id, nil
}

func (e *OutboxEntry) json() string {
	b, _ := json.Marshal(e)
	return string(b)
}

func decodeEntry(shard int, id, body string) *OutboxEntry {
	e := &OutboxEntry{Shard: shard, ID: id}
	if err := json.Unmarshal([]byte(body), e); err != nil {
		e.Unreadable, e.LastError = true, "unreadable entry: "+err.Error()
	}
	return e
}

// Enqueue adds a message that no transition writes (such as a reply not
// understood) to the outbox, in the shard of its request or recipient.
func (s *Store) Enqueue(ctx context.Context, m Message) error {
	shard := ShardOf(m.To)
	if sh, ok := shardFromID(m.Request); ok && m.Request != "" {
		shard = sh
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = s.run(ctx, enqueueScript, shard, []string{s.keys.Outbox(shard)}, string(body))
	return err
}

// enqueueScript queues one message.
//
// KEYS[1] outbox (for the slot). ARGV[3] message JSON (its "at" is set
// here). Returns {"ok"}.
var enqueueScript = script(`
local msg = cjson.decode(ARGV[3])
enqueue(msg)
return {'ok'}
`)

// claimScript first hands back to ready every claim whose lease has lapsed
// (its daemon died mid-send), then moves up to ARGV[4] due ids from ready
// to claimed with the lease expiry ARGV[3] as score.
//
// KEYS[1] ready (for the slot). ARGV[3] lease expiry (ms), [4] most ids.
// Returns {next, taken back, id1, json1, id2, json2, ...}: next is the
// score of the earliest entry still in ready ("" when empty), taken back
// the number of lapsed claims handed back.
var claimScript = script(`
local ready, claimed, box = K.ready(P), K.claimed(P), K.outbox(P)
local back = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', claimed, '-inf', NOW, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', claimed, id)
  redis.call('ZADD', ready, NOW, id)
  back = back + 1
end
local out = {'', tostring(back)}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', ready, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[4]))) do
  redis.call('ZREM', ready, id)
  local body = redis.call('HGET', box, id)
  if body then
    redis.call('ZADD', claimed, ARGV[3], id)
    out[#out + 1] = id
    out[#out + 1] = body
  end
end
local first = redis.call('ZRANGE', ready, 0, 0, 'WITHSCORES')
if first[2] then out[1] = first[2] end
return out
`)

// ClaimOutbox takes up to limit due entries of a shard for lease. It hands
// back first the entries whose claim lapsed. It returns the entries, the
// time the next entry of the shard falls due (zero when none waits), and
// how many lapsed claims it handed back.
func (s *Store) ClaimOutbox(ctx context.Context, shard int, lease time.Duration, limit int) ([]*OutboxEntry, time.Time, int, error) {
	now := s.opt.Now()
	res, err := s.run(ctx, claimScript, shard, []string{s.keys.OutboxReady(shard)}, ms(now.Add(lease)), limit)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	var next time.Time
	if res[0] != "" {
		f, _ := strconv.ParseFloat(res[0], 64)
		next = fromMS(int64(f))
	}
	back, _ := strconv.Atoi(res[1])
	var out []*OutboxEntry
	for i := 2; i+1 < len(res); i += 2 {
		out = append(out, decodeEntry(shard, res[i], res[i+1]))
	}
	return out, next, back, nil
}

// heartbeatScript pushes on the lease of the claims still held.
//
// KEYS[1] claimed (for the slot). ARGV[3] new expiry (ms), then ids.
// Returns the number of claims renewed.
var heartbeatScript = script(`
local n = 0
for i = 4, #ARGV do
  n = n + redis.call('ZADD', K.claimed(P), 'XX', 'CH', ARGV[3], ARGV[i])
end
return {tostring(n)}
`)

// Heartbeat renews for lease the claims of entries still being worked on.
// Entries whose claim was lost (it lapsed and another daemon took them)
// are not claimed again.
func (s *Store) Heartbeat(ctx context.Context, entries []*OutboxEntry, lease time.Duration) error {
	by := map[int][]any{}
	for _, e := range entries {
		by[e.Shard] = append(by[e.Shard], e.ID)
	}
	until := ms(s.opt.Now().Add(lease))
	for shard, ids := range by {
		if _, err := s.run(ctx, heartbeatScript, shard, []string{s.keys.OutboxClaimed(shard)}, append([]any{until}, ids...)...); err != nil {
			return err
		}
	}
	return nil
}

// settleScript moves a claimed entry on: back to ready at a time (retry,
// release), to dead, or out of the outbox (done without sending). The
// pending token of the attempt, if any, is dropped: its email did not
// reach the approver.
//
// KEYS[1] outbox (for the slot). ARGV[3] id, [4] where: ready, dead or
// done, [5] score (ms), [6] entry JSON or "" to keep it, [7] request id,
// [8] nic, [9] token hash ("" when none).
// Returns {"ok"} or {"lost"} when the entry was not claimed (another
// daemon took it over, or an operator moved it).
var settleScript = script(`
local id, where = ARGV[3], ARGV[4]
local lost = redis.call('ZREM', K.claimed(P), id) == 0
if ARGV[9] ~= '' then
  local k = K.req(P, ARGV[7])
  local f = 'p:' .. ARGV[8]
  local keep = {}
  for _, h in ipairs(split(redis.call('HGET', k, f))) do
    if h ~= ARGV[9] then keep[#keep + 1] = h end
  end
  if #keep > 0 then redis.call('HSET', k, f, table.concat(keep, ' ')) else redis.call('HDEL', k, f) end
end
if lost then return {'lost'} end
if where == 'done' then
  redis.call('HDEL', K.outbox(P), id)
  return {'ok'}
end
if ARGV[6] ~= '' then redis.call('HSET', K.outbox(P), id, ARGV[6]) end
if where == 'dead' then
  redis.call('ZADD', K.dead(P), ARGV[5], id)
else
  redis.call('ZADD', K.ready(P), ARGV[5], id)
end
return {'ok'}
`)

// errClaimLost reports a settle of an entry this daemon no longer holds.
var errClaimLost = errors.New("workflow: outbox claim lost")

// IsClaimLost reports whether err says an outbox entry was no longer held.
func IsClaimLost(err error) bool { return errors.Is(err, errClaimLost) }

func (s *Store) settle(ctx context.Context, e *OutboxEntry, where string, at time.Time, body string) error {
	res, err := s.run(ctx, settleScript, e.Shard, []string{s.keys.Outbox(e.Shard)},
		e.ID, where, ms(at), body, e.Request, e.NIC, e.TokenHash)
	if err != nil {
		return err
	}
	if res[0] == "lost" {
		return errClaimLost
	}
	return nil
}

// RetryOutbox puts a claimed entry back in ready, due at when, with its
// delivery fields updated.
func (s *Store) RetryOutbox(ctx context.Context, e *OutboxEntry, when time.Time) error {
	return s.settle(ctx, e, "ready", when, e.json())
}

// ReleaseOutbox hands a claimed entry back untouched, due now (at
// shutdown, or while the mail server is unreachable).
func (s *Store) ReleaseOutbox(ctx context.Context, e *OutboxEntry) error {
	return s.settle(ctx, e, "ready", s.opt.Now(), "")
}

// BuryOutbox gives up on a claimed entry: it is kept as dead, with its
// last error, for DeadRetention.
func (s *Store) BuryOutbox(ctx context.Context, e *OutboxEntry) error {
	return s.settle(ctx, e, "dead", s.opt.Now(), e.json())
}

// DropOutbox forgets a claimed entry that is no longer due (its request
// left pending, say).
func (s *Store) DropOutbox(ctx context.Context, e *OutboxEntry) error {
	return s.settle(ctx, e, "done", s.opt.Now(), "")
}

// Sent describes an email the mail server accepted.
type Sent struct {
	// MessageID is the email's Message-ID, without angle brackets.
	MessageID string
	// TTL is how long a reply or a delivery report quoting the
	// Message-ID is matched to it; zero writes no record.
	TTL time.Duration
}

// recordSentScript records, in one step, that the mail server accepted an
// email: the entry leaves the outbox, the Message-ID is recorded for the
// replies and reports that will quote it, the history gets its event, and
// the token the email carries becomes the approver's live one, revoking
// the earlier ones. The entry is forgotten even if its claim was lost: the
// email is out.
//
// KEYS[1] outbox (for the slot). ARGV[3] id, [4] request id, [5] nic,
// [6] kind, [7] history event or "", [8] token hash or "", [9] sent-record
// key or "", [10] its TTL (ms).
// Returns {"ok"} or {"lost"} (the claim had lapsed: another daemon may
// send it again).
var recordSentScript = script(`
local id, rid, nic = ARGV[3], ARGV[4], ARGV[5]
local lost = redis.call('ZREM', K.claimed(P), id) == 0
redis.call('ZREM', K.ready(P), id)
redis.call('HDEL', K.outbox(P), id)
if ARGV[9] ~= '' then
  local f = {'r', rid, 'n', nic, 'k', ARGV[6]}
  if ARGV[8] ~= '' then f[#f + 1] = 'h'; f[#f + 1] = ARGV[8] end
  redis.call('HSET', ARGV[9], unpack(f))
  redis.call('PEXPIRE', ARGV[9], ARGV[10])
end
local k = K.req(P, rid)
if rid ~= '' and ARGV[7] ~= '' and redis.call('EXISTS', k) == 1 then
  hist(k, ARGV[7], nic, 'system')
  if ARGV[8] ~= '' then
    local p = split(redis.call('HGET', k, 'p:' .. nic))
    local newer, found = {}, false
    for _, h in ipairs(p) do
      if found then newer[#newer + 1] = h end
      if h == ARGV[8] then found = true end
    end
    if found and redis.call('HGET', k, 'st') == 'pending' and redis.call('HGET', k, 's:' .. nic) == 'pending' then
      redis.call('HSET', k, 't:' .. nic, ARGV[8])
      if #newer > 0 then redis.call('HSET', k, 'p:' .. nic, table.concat(newer, ' ')) else redis.call('HDEL', k, 'p:' .. nic) end
    end
  end
end
if lost then return {'lost'} end
return {'ok'}
`)

// RecordSent records that the mail server accepted the email of a claimed
// entry (see recordSentScript). A lost claim is reported with an error
// IsClaimLost recognises, after everything is recorded.
func (s *Store) RecordSent(ctx context.Context, e *OutboxEntry, sent Sent) error {
	rec := ""
	if sent.TTL > 0 && e.Request != "" && e.NIC != "" {
		if sh, ok := shardFromID(sent.MessageID); ok && sh == e.Shard {
			rec = s.keys.SentMessage(sent.MessageID)
		}
	}
	res, err := s.run(ctx, recordSentScript, e.Shard, []string{s.keys.Outbox(e.Shard)},
		e.ID, e.Request, e.NIC, string(e.Kind), e.Kind.SentEvent(), e.TokenHash, rec, sent.TTL.Milliseconds())
	if err != nil {
		return err
	}
	if res[0] == "lost" {
		return errClaimLost
	}
	return nil
}

// SentMessage is what the store knows of an email contactd sent, found by
// its Message-ID.
type SentMessage struct {
	Request   string
	NIC       string
	Kind      Kind
	TokenHash string
}

// LookupSent returns the email contactd sent with the Message-ID id (with
// or without angle brackets), or nil when it sent none (or forgot it).
func (s *Store) LookupSent(ctx context.Context, id string) (*SentMessage, error) {
	key := s.keys.SentMessage(id)
	if key == "" || len(id) > 1000 {
		return nil, nil
	}
	h, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	if !ValidRequestID(h["r"]) || h["n"] == "" {
		return nil, nil
	}
	return &SentMessage{Request: h["r"], NIC: h["n"], Kind: Kind(h["k"]), TokenHash: h["h"]}, nil
}

// OutboxScan is what one look at every shard's outbox found.
type OutboxScan struct {
	// Due lists the shards with entries due now or lapsed claims.
	Due []int
	// Next is when the earliest entry not yet due falls due (zero if none).
	Next time.Time
	// Ready, Claimed and Dead count the entries in each state.
	Ready, Claimed, Dead int64
}

// scanScript reads one shard's outbox in one step, so an entry moving
// between two sets is never missed by both counts.
//
// KEYS[1] ready (for the slot). Returns {first ready score or "", first
// claimed score or "", ready count, claimed count, dead count}.
var scanScript = script(`
local r = redis.call('ZRANGE', K.ready(P), 0, 0, 'WITHSCORES')
local c = redis.call('ZRANGE', K.claimed(P), 0, 0, 'WITHSCORES')
return {r[2] or '', c[2] or '', tostring(redis.call('ZCARD', K.ready(P))),
  tostring(redis.call('ZCARD', K.claimed(P))), tostring(redis.call('ZCARD', K.dead(P)))}
`)

// ScanOutbox looks at every shard's outbox in one round trip: one script
// per shard, pipelined (each on its own Cluster slot).
func (s *Store) ScanOutbox(ctx context.Context) (*OutboxScan, error) {
	now := s.opt.Now()
	var cmds []*redis.Cmd
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds = make([]*redis.Cmd, Shards)
		for n := range cmds {
			cmds[n] = scanScript.EvalSha(ctx, pipe, []string{s.keys.OutboxReady(n)}, s.keys.Shard(n), ms(now))
		}
		_, err := pipe.Exec(ctx)
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := scanScript.Load(ctx, s.rdb).Err(); err != nil {
				return nil, storeErr(err)
			}
			continue
		}
		if err != nil {
			return nil, storeErr(err)
		}
		break
	}
	out := &OutboxScan{}
	for n, c := range cmds {
		f, err := c.StringSlice()
		if err != nil || len(f) != 5 {
			return nil, fmt.Errorf("workflow: outbox scan of shard %d: %v", n, err)
		}
		due := false
		if f[0] != "" {
			at := parseScore(f[0])
			if !at.After(now) {
				due = true
			} else if out.Next.IsZero() || at.Before(out.Next) {
				out.Next = at
			}
		}
		if f[1] != "" && !parseScore(f[1]).After(now) {
			due = true
		}
		if due {
			out.Due = append(out.Due, n)
		}
		out.Ready += parseCount(f[2])
		out.Claimed += parseCount(f[3])
		out.Dead += parseCount(f[4])
	}
	return out, nil
}

func parseScore(v string) time.Time {
	f, _ := strconv.ParseFloat(v, 64)
	return fromMS(int64(f))
}

func parseCount(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// OutboxState names a set of the outbox.
type OutboxState string

// The sets an outbox entry can be in.
const (
	OutboxReady   OutboxState = "ready"
	OutboxClaimed OutboxState = "claimed"
	OutboxDead    OutboxState = "dead"
)

// ListOutbox returns the entries in one state across shards, at most limit
// per shard, oldest first within a shard.
func (s *Store) ListOutbox(ctx context.Context, state OutboxState, limit int64) ([]*OutboxEntry, error) {
	set := map[OutboxState]func(int) string{OutboxReady: s.keys.OutboxReady, OutboxClaimed: s.keys.OutboxClaimed, OutboxDead: s.keys.OutboxDead}[state]
	if set == nil {
		return nil, Errorf(EInvalidRequest, "unknown outbox state %q", clip(string(state)))
	}
	var out []*OutboxEntry
	for n := 0; n < Shards; n++ {
		z, err := s.rdb.ZRangeWithScores(ctx, set(n), 0, limit-1).Result()
		if err != nil {
			return nil, storeErr(err)
		}
		if len(z) == 0 {
			continue
		}
		ids := make([]string, len(z))
		for i := range z {
			ids[i] = fmt.Sprint(z[i].Member)
		}
		bodies, err := s.rdb.HMGet(ctx, s.keys.Outbox(n), ids...).Result()
		if err != nil {
			return nil, storeErr(err)
		}
		for i, id := range ids {
			body, _ := bodies[i].(string)
			e := decodeEntry(n, id, body)
			e.Due = fromMS(int64(z[i].Score))
			out = append(out, e)
		}
	}
	return out, nil
}

// reviveScript moves a dead entry back to ready, due now, with its
// attempts reset.
//
// KEYS[1] outbox (for the slot). ARGV[3] id, [4] entry JSON.
// Returns {"ok"} or {"unknown"}.
var reviveScript = script(`
if redis.call('ZREM', K.dead(P), ARGV[3]) == 0 then return {'unknown'} end
redis.call('HSET', K.outbox(P), ARGV[3], ARGV[4])
redis.call('ZADD', K.ready(P), NOW, ARGV[3])
redis.call('PUBLISH', K.wake(P), '1')
return {'ok'}
`)

// RetryDead puts the dead entry ref ("shard/id") back in ready, due now,
// with its attempts counted from zero.
func (s *Store) RetryDead(ctx context.Context, ref string) error {
	shard, id, err := ParseOutboxRef(ref)
	if err != nil {
		return err
	}
	body, err := s.rdb.HGet(ctx, s.keys.Outbox(shard), id).Result()
	if errors.Is(err, redis.Nil) {
		return Errorf(ENotFound, "no dead outbox entry %s", ref)
	} else if err != nil {
		return storeErr(err)
	}
	e := decodeEntry(shard, id, body)
	if e.Unreadable {
		return Errorf(EInvalidRequest, "outbox entry %s cannot be read; drop it instead", ref)
	}
	e.Attempts, e.LastError = 0, ""
	res, err := s.run(ctx, reviveScript, shard, []string{s.keys.Outbox(shard)}, id, e.json())
	if err != nil {
		return err
	}
	if res[0] != "ok" {
		return Errorf(ENotFound, "no dead outbox entry %s", ref)
	}
	return nil
}

// dropScript forgets an entry that is ready or dead (not one being sent).
//
// KEYS[1] outbox (for the slot). ARGV[3] id. Returns {"ok"}, {"claimed"}
// or {"unknown"}.
var dropScript = script(`
local id = ARGV[3]
if redis.call('ZSCORE', K.claimed(P), id) then return {'claimed'} end
local n = redis.call('ZREM', K.ready(P), id) + redis.call('ZREM', K.dead(P), id)
if n == 0 then return {'unknown'} end
redis.call('HDEL', K.outbox(P), id)
return {'ok'}
`)

// DropOutboxEntry forgets the ready or dead entry ref ("shard/id"); an
// entry being sent cannot be dropped.
func (s *Store) DropOutboxEntry(ctx context.Context, ref string) error {
	shard, id, err := ParseOutboxRef(ref)
	if err != nil {
		return err
	}
	res, err := s.run(ctx, dropScript, shard, []string{s.keys.Outbox(shard)}, id)
	if err != nil {
		return err
	}
	switch res[0] {
	case "claimed":
		return &Error{Code: EConflict, Message: fmt.Sprintf("outbox entry %s is being sent", ref)}
	case "unknown":
		return Errorf(ENotFound, "no ready or dead outbox entry %s", ref)
	}
	return nil
}

// purgeDeadScript forgets dead entries given up before ARGV[3].
//
// KEYS[1] dead (for the slot). ARGV[3] cutoff (ms). Returns {count}.
var purgeDeadScript = script(`
local ids = redis.call('ZRANGEBYSCORE', K.dead(P), '-inf', ARGV[3], 'LIMIT', 0, 500)
for _, id in ipairs(ids) do
  redis.call('ZREM', K.dead(P), id)
  redis.call('HDEL', K.outbox(P), id)
end
return {tostring(#ids)}
`)

// PublishEvent appends a finished or disputed request to the events
// stream (capped near EventsMaxLen), as the fields event, request and
// json.
func (s *Store) PublishEvent(ctx context.Context, event, requestID string, body []byte) error {
	err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.keys.Events(), MaxLen: s.opt.EventsMaxLen, Approx: true,
		Values: []any{"event", event, "request", requestID, "json", string(body)}}).Err()
	return storeErr(err)
}

// WatchOutbox calls wake with the shard each time a script queues an
// email in it, from any daemon, until ctx ends. It returns when the
// subscription is set up; a lost connection is re-established by the
// client.
func (s *Store) WatchOutbox(ctx context.Context, wake func(shard int)) error {
	sub := s.rdb.PSubscribe(ctx, s.keys.OutboxWakePattern())
	if _, err := sub.Receive(ctx); err != nil {
		_ = sub.Close()
		return storeErr(err)
	}
	go func() {
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				wake(s.shardOfChannel(m.Channel))
			}
		}
	}()
	return nil
}

// shardOfChannel reads the shard of an OutboxWake channel (-1 if none).
func (s *Store) shardOfChannel(ch string) int {
	rest, ok := strings.CutPrefix(ch, s.keys.Prefix+":{s")
	num, _, ok2 := strings.Cut(rest, "}")
	n, err := strconv.Atoi(num)
	if !ok || !ok2 || err != nil || n < 0 || n >= Shards || ch != s.keys.OutboxWake(n) {
		return -1
	}
	return n
}

// CountByStatus returns how many requests are in each status, from the
// tallies the scripts keep as requests move (no request is read). A
// pending request past its expiry counts as pending until a decision or a
// sweep marks it expired.
func (s *Store) CountByStatus(ctx context.Context) (map[Status]int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, Shards)
	for n := range cmds {
		cmds[n] = pipe.HGetAll(ctx, s.keys.Stats(n))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, storeErr(err)
	}
	out := map[Status]int64{}
	for _, st := range []Status{Pending, Approved, Applied, Declined, Expired, Cancelled, Failed} {
		out[st] = 0
	}
	for _, c := range cmds {
		for st, v := range c.Val() {
			n, _ := strconv.ParseInt(v, 10, 64)
			if ValidStatus(st) {
				out[Status(st)] += n
			}
		}
	}
	return out, nil
}
