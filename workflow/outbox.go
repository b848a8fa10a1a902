package workflow

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The outbox of each shard is three structures that the transitions write
// and the mailers move entries between (names in keys.go):
//
//	ob       HASH  ID -> entry JSON (a Message, plus the delivery fields
//	               of OutboxEntry once tried); ID:o -> its claim while
//	               an entry is claimed
//	ob:q     ZSET  ID of every entry still to handle, by the time to look
//	               at it again: when it may be sent (ready) or when its
//	               claim lapses (claimed)
//	ob:dead  ZSET  ID by the time it was given up
//
// An entry is one transition's emails to one recipient (or one event to
// publish). A claim is a short lease held by one mailer: its value names
// the daemon that holds it and a fence, new at each claim, and every
// script that moves a claimed entry (heartbeat, settle, token) checks it,
// so a mailer that stalled past its lease and lost its entries to
// another daemon can neither renew, settle nor send them. An entry whose
// lease lapsed is due again, and the next claim takes it over.

// DeadRetention is how long a dead outbox entry is kept for an operator
// to inspect and retry before a sweep forgets it.
const DeadRetention = 30 * 24 * time.Hour

// EventsMaxLen is the approximate number of entries the events stream
// keeps by default (XADD MAXLEN ~): older ones are trimmed. Consumers that
// fall further behind miss events; the webhook does not depend on it.
const EventsMaxLen = 100000

// Message is one entry of the transactional outbox: the emails one
// transition sends one recipient, in order (or, for KindEvent, a finished
// request to publish). The workflow writes it in the same step as the
// change that causes it; the mailer renders each email from the request's
// state when it sends it.
type Message struct {
	Kinds []Kind `json:"kinds"`
	// Request is the request the emails are about; Handover the hand-over,
	// for the emails a hand-over sends once for all its requests.
	Request  string `json:"request,omitempty"`
	Handover string `json:"handover,omitempty"`
	// NIC is the contact the emails go to.
	NIC string `json:"nic,omitempty"`
	// About is the approver an undeliverable notice is about.
	About string `json:"about,omitempty"`
	// Event is the status (or "disputed") a KindEvent publishes.
	Event string `json:"event,omitempty"`
	// Op is what a KindJob carries to the requests of its hand-over
	// (apply, declined, expired, cancelled, dispute), and Channel the
	// channel of the decision, for their history.
	Op      string  `json:"op,omitempty"`
	Channel Channel `json:"channel,omitempty"`
	// To, Language, Reason and InReplyTo address a not_understood reply to
	// a sender who may be in no directory.
	To        string `json:"to,omitempty"`
	Language  string `json:"language,omitempty"`
	Reason    string `json:"reason,omitempty"`
	InReplyTo string `json:"in_reply_to,omitempty"`
	// Snap is the request's record as the transition left it, for the
	// mailer to write the emails without reading it again.
	Snap map[string]string `json:"snap,omitempty"`
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
	// Sent counts the emails of Kinds the mail server already accepted:
	// a retry sends the others.
	Sent int `json:"sent,omitempty"`

	// Shard and ID locate the entry; Claim is this daemon's claim on it;
	// Unreadable is set when its JSON could not be read (the entry can
	// only be given up). TokenRef is the reference of the token issued
	// for the attempt under way, if any.
	Shard      int    `json:"-"`
	ID         string `json:"-"`
	Claim      string `json:"-"`
	Unreadable bool   `json:"-"`
	TokenRef   string `json:"-"`
	// Due is, for a listed entry, when it may be sent (ready), when its
	// claim lapses (claimed) or when it was given up (dead).
	Due time.Time `json:"-"`
}

// Kind is the kind of the entry's next email: the first not yet sent.
func (e *OutboxEntry) Kind() Kind {
	if e.Sent < len(e.Kinds) {
		return e.Kinds[e.Sent]
	}
	if len(e.Kinds) > 0 {
		return e.Kinds[len(e.Kinds)-1]
	}
	return ""
}

// Ref names the entry in logs and in the outbox commands: "shard/id".
func (e *OutboxEntry) Ref() string { return strconv.Itoa(e.Shard) + "/" + e.ID }

// ParseOutboxRef reads a Ref.
func ParseOutboxRef(ref string) (int, string, error) {
	sh, id, ok := strings.Cut(ref, "/")
	n, err := strconv.Atoi(sh)
	if !ok || err != nil || n < 0 || n >= Shards || id == "" || strings.ContainsAny(id, " /:") {
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
	} else if len(e.Kinds) == 0 {
		e.Unreadable, e.LastError = true, "unreadable entry: no kind"
	}
	return e
}

// owner names this process in the claims it takes; fences numbers them.
var (
	owner  = newOwner()
	fences atomic.Uint64
)

func newOwner() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return b32.EncodeToString(b)
}

// newClaim returns the value of a new claim: this process and a fence.
func newClaim() string { return owner + "." + strconv.FormatUint(fences.Add(1), 36) }

// outboxScript runs one of the outbox scripts on shard n with its outbox
// keys first, then extra keys.
func (s *Store) outboxScript(ctx context.Context, sc *redis.Script, n int, extra []string, args ...any) ([]string, error) {
	keys := append(s.outboxKeys(n), extra...)
	return s.run(ctx, sc, keys, s.keys.OutboxWake(n), args...)
}

// outboxKeys are the keys of shard n's outbox as the scripts take them.
func (s *Store) outboxKeys(n int) []string {
	return []string{s.keys.Outbox(n), s.keys.OutboxQueue(n), s.keys.OutboxSeq(n), s.keys.OutboxDead(n)}
}

// Enqueue adds a message that no transition writes (such as a reply not
// understood) to the outbox, in the shard of its request or recipient.
func (s *Store) Enqueue(ctx context.Context, m Message) error {
	shard := ShardOf(m.To)
	if sh, ok := shardFromID(m.Request); ok && m.Request != "" {
		shard = sh
	}
	if len(m.Kinds) == 0 {
		return Errorf(EInvalidRequest, "an outbox message needs a kind")
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = s.outboxScript(ctx, enqueueScript, shard, nil, string(body))
	return err
}

// enqueueScript queues one message.
//
// KEYS: the outbox. ARGV[3] message JSON (its "at" is set here).
// Returns {"ok"}.
var enqueueScript = script(`
outbox(1)
local ok, msg = pcall(cjson.decode, ARGV[3])
if not ok or type(msg) ~= 'table' then return {'corrupt'} end
mail(msg)
commit()
return {'ok'}
`)

// claimScript takes up to ARGV[4] entries due at ARGV[1]: ready ones and
// those whose claim lapsed (their daemon stopped or stalled), records the
// claim ARGV[5] on each, and pushes each one's next look to the lease
// expiry ARGV[3].
//
// KEYS: the outbox. Returns {next, taken back, id1, json1, id2, json2,
// ...}: next is the time the next entry falls due ("" when none waits,
// "now" when more are due than were taken), taken back the number of
// lapsed claims taken over.
var claimScript = script(`
outbox(1)
local max = tonumber(ARGV[4])
local z = redis.call('ZRANGE', OB.q, 0, max, 'WITHSCORES')
local ids, next = {}, ''
for i = 1, #z, 2 do
  if tonumber(z[i + 1]) > NOW then next = z[i + 1]; break end
  if #ids == max then next = 'now'; break end
  ids[#ids + 1] = z[i]
end
if #ids == 0 then return {next, '0'} end
local want = {}
for _, id in ipairs(ids) do want[#want + 1] = id; want[#want + 1] = id .. ':o' end
local f = redis.call('HMGET', OB.ob, unpack(want))
local out, back, claims, lease, orphans = {next, ''}, 0, {}, {}, {}
for i, id in ipairs(ids) do
  local body, was = f[2 * i - 1], f[2 * i]
  if body then
    if was then back = back + 1 end
    claims[#claims + 1] = id .. ':o'; claims[#claims + 1] = ARGV[5]
    lease[#lease + 1] = ARGV[3]; lease[#lease + 1] = id
    out[#out + 1] = id; out[#out + 1] = body
  else
    orphans[#orphans + 1] = id
  end
end
if #orphans > 0 then redis.call('ZREM', OB.q, unpack(orphans)) end
if #claims > 0 then
  redis.call('HSET', OB.ob, unpack(claims))
  redis.call('ZADD', OB.q, 'XX', unpack(lease))
end
out[2] = tostring(back)
return out
`)

// ClaimOutbox takes up to limit due entries of a shard for lease: ready
// ones, and first the ones whose claim lapsed. It returns the entries,
// the time the next entry of the shard falls due (zero when none waits,
// or when more are due now: then it is now), and how many lapsed claims
// it took over.
func (s *Store) ClaimOutbox(ctx context.Context, shard int, lease time.Duration, limit int) ([]*OutboxEntry, time.Time, int, error) {
	now := s.opt.Now()
	claim := newClaim()
	res, err := s.outboxScript(ctx, claimScript, shard, nil, ms(now.Add(lease)), limit, claim)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	var next time.Time
	switch res[0] {
	case "":
	case "now":
		next = now
	default:
		next = parseScore(res[0])
	}
	back, _ := strconv.Atoi(res[1])
	var out []*OutboxEntry
	for i := 2; i+1 < len(res); i += 2 {
		e := decodeEntry(shard, res[i], res[i+1])
		e.Claim = claim
		out = append(out, e)
	}
	return out, next, back, nil
}

// claimEntryScript claims one entry of a shard by its id, if it is due
// (ready, or its claim lapsed).
//
// KEYS: the outbox. ARGV[3] lease expiry (ms), [4] the entry's id, [5]
// the claim. Returns {body}, or {} when the entry is not there or another
// daemon holds it.
var claimEntryScript = script(`
outbox(1)
local at = redis.call('ZSCORE', OB.q, ARGV[4])
if not at or tonumber(at) > NOW then return {} end
local body = redis.call('HGET', OB.ob, ARGV[4])
if not body then return {} end
redis.call('HSET', OB.ob, ARGV[4] .. ':o', ARGV[5])
redis.call('ZADD', OB.q, 'XX', ARGV[3], ARGV[4])
return {body}
`)

// claimEntry claims entry id of shard for lease; nil when it is not due.
func (s *Store) claimEntry(ctx context.Context, shard int, id string, lease time.Duration) (*OutboxEntry, error) {
	claim := newClaim()
	res, err := s.outboxScript(ctx, claimEntryScript, shard, nil, ms(s.opt.Now().Add(lease)), id, claim)
	if err != nil || len(res) == 0 {
		return nil, err
	}
	e := decodeEntry(shard, id, res[0])
	e.Claim = claim
	return e, nil
}

// heartbeatScript pushes on the lease of the entries still claimed with
// the claim named.
//
// KEYS: the outbox. ARGV[3] new lease expiry (ms), then id, claim pairs.
// Returns the ids whose claim is no longer the one named (lost).
var heartbeatScript = script(`
outbox(1)
local want = {}
for i = 4, #ARGV, 2 do want[#want + 1] = ARGV[i] .. ':o' end
local f = redis.call('HMGET', OB.ob, unpack(want))
local lease, lost = {}, {}
for j, v in ipairs(f) do
  local id = ARGV[2 + 2 * j]
  if v == ARGV[3 + 2 * j] then
    lease[#lease + 1] = ARGV[3]; lease[#lease + 1] = id
  else
    lost[#lost + 1] = id
  end
end
if #lease > 0 then redis.call('ZADD', OB.q, 'XX', unpack(lease)) end
return lost
`)

// Heartbeat renews for lease the claims of entries still being worked on
// and returns those whose claim was lost (it lapsed and another daemon
// took them over, or an operator dropped them): they must not be sent.
func (s *Store) Heartbeat(ctx context.Context, entries []*OutboxEntry, lease time.Duration) ([]*OutboxEntry, error) {
	by := map[int][]*OutboxEntry{}
	for _, e := range entries {
		by[e.Shard] = append(by[e.Shard], e)
	}
	until := ms(s.opt.Now().Add(lease))
	var lost []*OutboxEntry
	for shard, es := range by {
		args := []any{until}
		for _, e := range es {
			args = append(args, e.ID, e.Claim)
		}
		res, err := s.outboxScript(ctx, heartbeatScript, shard, nil, args...)
		if err != nil {
			return lost, err
		}
		lost = append(lost, pick(es, res)...)
	}
	return lost, nil
}

// pick returns the entries of es whose ids are listed.
func pick(es []*OutboxEntry, ids []string) []*OutboxEntry {
	var out []*OutboxEntry
	for _, id := range ids {
		for _, e := range es {
			if e.ID == id {
				out = append(out, e)
			}
		}
	}
	return out
}

// Action is what a settlement does with a claimed entry.
type Action string

// The settlements of a claimed entry.
const (
	// Sent: the mail server accepted every email of the entry (or the
	// event was published): it leaves the outbox, its history event is
	// written and the token it carried becomes the approver's live one.
	ActSent Action = "sent"
	// Retry: back to ready at a later time, its delivery fields updated.
	ActRetry Action = "retry"
	// Release: back to ready now, untouched (a stop, a relay outage).
	ActRelease Action = "release"
	// Bury: kept as dead, with its last error, for DeadRetention.
	ActBury Action = "dead"
	// Drop: out of the outbox without sending (no longer due).
	ActDrop Action = "drop"
)

// Settlement is the outcome of one claimed entry.
type Settlement struct {
	Entry  *OutboxEntry
	Action Action
	// At is when a retried entry is due again.
	At time.Time
}

// settleScript moves a batch of claimed entries on, each checked to still
// hold its claim; the others are left alone and reported lost.
//
// KEYS: the outbox, then the records named by the entries (a request or
// a hand-over, and its history), in pairs. ARGV[3] number of entries,
// then 8 per entry: id, claim, action, score (ms), entry JSON or "" to
// keep it, index in KEYS of its record or 0, nic, history event or "".
// An entry sent with a history event whose token references are pending
// makes them the approver's live ones (see scripts.go).
// Returns the ids whose claim was lost.
var settleScript = script(`
outbox(1)
local n = tonumber(ARGV[3])
local want = {}
for i = 0, n - 1 do want[#want + 1] = ARGV[4 + 8 * i] .. ':o' end
local f = redis.call('HMGET', OB.ob, unpack(want))
local lost, recs = {}, {}
for i = 0, n - 1 do
  local a = 4 + 8 * i
  local id, claim, act, score, body = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  if f[i + 1] ~= claim then
    lost[#lost + 1] = id
  else
    hdel(OB.ob, id .. ':o')
    if act == 'sent' or act == 'drop' then
      zrem(OB.q, id)
      hdel(OB.ob, id)
      local ki = tonumber(ARGV[a + 5])
      if act == 'sent' and ki > 0 then
        local r = recs[ki]
        if not r then r = {nics = {}, fields = {}, sent = {}}; recs[ki] = r end
        local nic = ARGV[a + 6]
        if not r.nics[nic] then
          r.nics[nic] = true
          for _, x in ipairs({'s:', 't:', 'p:'}) do r.fields[#r.fields + 1] = x .. nic end
        end
        r.sent[#r.sent + 1] = {entry = tonumber(id), nic = nic, ev = ARGV[a + 7]}
      end
    elseif act == 'dead' then
      zrem(OB.q, id)
      zadd(OB.dead, score, id)
      if body ~= '' then hset(OB.ob, id, body) end
    else
      zadd(OB.q, score, id)
      if body ~= '' then hset(OB.ob, id, body) end
    end
  end
end
-- Each record is read once, then its approvers' tokens promoted.
for ki, r in pairs(recs) do
  local k, h = KEYS[ki], KEYS[ki + 1]
  local fields = {'st'}
  for _, x in ipairs(r.fields) do fields[#fields + 1] = x end
  local v = redis.call('HMGET', k, unpack(fields))
  local cur = {}
  for i, x in ipairs(fields) do cur[x] = v[i] or false end
  for _, e in ipairs(r.sent) do
    local nic = e.nic
    if e.ev ~= '' then append(h, NOW .. ' ' .. e.ev .. ' ' .. nic .. ' system\n') end
    local t, pend = split(cur['t:' .. nic] or ''), split(cur['p:' .. nic] or '')
    if cur.st == 'pending' and cur['s:' .. nic] == 'pending' and #pend > 0 then
      local live = tonumber(t[1] or '0')
      local mine, later = {}, {}
      for _, x in ipairs(pend) do
        local at = string.find(x, ':', 1, true)
        local ent = tonumber(string.sub(x, 1, at - 1))
        if ent == e.entry then mine[#mine + 1] = string.sub(x, at + 1)
        elseif ent > e.entry then later[#later + 1] = x end
      end
      if #mine > 0 and e.entry > live then
        cur['t:' .. nic] = e.entry .. ' ' .. table.concat(mine, ' ')
      elseif #mine > 0 and e.entry == live then
        local keep = {}
        for i = 2, #t do keep[#keep + 1] = t[i] end
        for _, m in ipairs(mine) do keep[#keep + 1] = m end
        cur['t:' .. nic] = e.entry .. ' ' .. table.concat(keep, ' ')
      end
      -- (an email older than the live one was superseded: its tokens go)
      cur['p:' .. nic] = table.concat(later, ' ')
      hset(k, 't:' .. nic, cur['t:' .. nic] or '', 'p:' .. nic, cur['p:' .. nic])
    end
  end
end
commit()
return lost
`)

// errClaimLost reports a settle of an entry this daemon no longer holds.
var errClaimLost = errors.New("workflow: outbox claim lost")

// IsClaimLost reports whether err says an outbox entry was no longer held.
func IsClaimLost(err error) bool { return errors.Is(err, errClaimLost) }

// Settle records the outcomes of claimed entries, one script per shard,
// and returns the entries whose claim was lost (nothing was done to
// them: another daemon holds them now).
func (s *Store) Settle(ctx context.Context, batch []Settlement) ([]*OutboxEntry, error) {
	by := map[int][]Settlement{}
	for _, st := range batch {
		by[st.Entry.Shard] = append(by[st.Entry.Shard], st)
	}
	var lost []*OutboxEntry
	for shard, sts := range by {
		l, err := s.settleShard(ctx, shard, sts)
		lost = append(lost, l...)
		if err != nil {
			return lost, err
		}
	}
	return lost, nil
}

func (s *Store) settleShard(ctx context.Context, shard int, sts []Settlement) ([]*OutboxEntry, error) {
	var extra []string
	index := map[string]int{}
	args := []any{len(sts)}
	es := make([]*OutboxEntry, len(sts))
	for i, st := range sts {
		e := st.Entry
		es[i] = e
		body := ""
		switch st.Action {
		case ActRetry, ActBury:
			body = e.json()
		}
		ki, ev := 0, ""
		if st.Action == ActSent && e.TokenRef != "" {
			ev = e.Kind().SentEvent()
			rec, hist := s.recordKeys(shard, e)
			if rec != "" {
				if _, ok := index[rec]; !ok {
					index[rec] = len(s.outboxKeys(shard)) + len(extra) + 1
					extra = append(extra, rec, hist)
				}
				ki = index[rec]
			}
		}
		at := st.At
		if at.IsZero() {
			at = s.opt.Now()
		}
		args = append(args, e.ID, e.Claim, string(st.Action), ms(at), body, ki, e.NIC, ev)
	}
	res, err := s.outboxScript(ctx, settleScript, shard, extra, args...)
	if err != nil {
		return nil, err
	}
	return pick(es, res), nil
}

// recordKeys are the keys of the record an entry is about: its request
// or hand-over, and its history.
func (s *Store) recordKeys(shard int, e *OutboxEntry) (string, string) {
	switch {
	case e.Handover != "":
		return s.keys.Handover(shard, e.Handover), s.keys.HandoverHistory(shard, e.Handover)
	case e.Request != "":
		return s.keys.Request(shard, e.Request), s.keys.History(shard, e.Request)
	}
	return "", ""
}

// settleOne settles a single entry and reports a lost claim as an error
// IsClaimLost recognises.
func (s *Store) settleOne(ctx context.Context, e *OutboxEntry, a Action, at time.Time) error {
	lost, err := s.Settle(ctx, []Settlement{{Entry: e, Action: a, At: at}})
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return errClaimLost
	}
	return nil
}

// RetryOutbox puts a claimed entry back in ready, due at when, with its
// delivery fields updated.
func (s *Store) RetryOutbox(ctx context.Context, e *OutboxEntry, when time.Time) error {
	return s.settleOne(ctx, e, ActRetry, when)
}

// ReleaseOutbox hands a claimed entry back untouched, due now.
func (s *Store) ReleaseOutbox(ctx context.Context, e *OutboxEntry) error {
	return s.settleOne(ctx, e, ActRelease, time.Time{})
}

// BuryOutbox gives up on a claimed entry: it is kept as dead, with its
// last error, for DeadRetention.
func (s *Store) BuryOutbox(ctx context.Context, e *OutboxEntry) error {
	return s.settleOne(ctx, e, ActBury, time.Time{})
}

// DropOutbox forgets a claimed entry that is no longer due.
func (s *Store) DropOutbox(ctx context.Context, e *OutboxEntry) error {
	return s.settleOne(ctx, e, ActDrop, time.Time{})
}

// RecordSent records that the mail server accepted every email of a
// claimed entry (see settleScript).
func (s *Store) RecordSent(ctx context.Context, e *OutboxEntry) error {
	return s.settleOne(ctx, e, ActSent, time.Time{})
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

// scanScript reads one shard's outbox in one step.
//
// KEYS: the outbox. Returns {first score or "", queued, dead, fields of
// the entries hash}: the claimed entries are those fields beyond one per
// queued or dead entry.
var scanScript = script(`
outbox(1)
local r = redis.call('ZRANGE', OB.q, 0, 0, 'WITHSCORES')
return {r[2] or '', tostring(redis.call('ZCARD', OB.q)), tostring(redis.call('ZCARD', OB.dead)),
  tostring(redis.call('HLEN', OB.ob))}
`)

// ScanOutbox looks at every shard's outbox in one round trip: one script
// per shard, pipelined (each on its own Cluster slot).
func (s *Store) ScanOutbox(ctx context.Context) (*OutboxScan, error) {
	now := s.opt.Now()
	cmds, err := s.pipelineScripts(ctx, scanScript, Shards, func(n int) ([]string, []any) {
		return s.outboxKeys(n), []any{ms(now), ""}
	})
	if err != nil {
		return nil, err
	}
	out := &OutboxScan{}
	for n, c := range cmds {
		f, err := c.StringSlice()
		if err != nil || len(f) != 4 {
			return nil, fmt.Errorf("workflow: outbox scan of shard %d: %v", n, err)
		}
		if f[0] != "" {
			at := parseScore(f[0])
			if !at.After(now) {
				out.Due = append(out.Due, n)
			} else if out.Next.IsZero() || at.Before(out.Next) {
				out.Next = at
			}
		}
		queued, dead, fields := parseCount(f[1]), parseCount(f[2]), parseCount(f[3])
		claimed := max(fields-queued-dead, 0)
		out.Ready += max(queued-claimed, 0)
		out.Claimed += claimed
		out.Dead += dead
	}
	return out, nil
}

// pipelineScripts runs a script once per shard in one pipeline, loading
// it first if the server does not know it.
func (s *Store) pipelineScripts(ctx context.Context, sc *redis.Script, n int, args func(int) ([]string, []any)) ([]*redis.Cmd, error) {
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, n)
		for i := range cmds {
			keys, argv := args(i)
			cmds[i] = sc.EvalSha(ctx, pipe, keys, argv...)
		}
		_, err := pipe.Exec(ctx)
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := sc.Load(ctx, s.rdb).Err(); err != nil {
				return nil, storeErr(err)
			}
			continue
		}
		if err != nil {
			return nil, storeErr(err)
		}
		return cmds, nil
	}
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
	var set func(int) string
	switch state {
	case OutboxReady, OutboxClaimed:
		set = s.keys.OutboxQueue
	case OutboxDead:
		set = s.keys.OutboxDead
	default:
		return nil, Errorf(EInvalidRequest, "unknown outbox state %q", clip(string(state)))
	}
	var out []*OutboxEntry
	for n := 0; n < Shards; n++ {
		es, err := s.listShard(ctx, n, set(n), state, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

func (s *Store) listShard(ctx context.Context, n int, set string, state OutboxState, limit int64) ([]*OutboxEntry, error) {
	z, err := s.rdb.ZRangeWithScores(ctx, set, 0, -1).Result()
	if err != nil || len(z) == 0 {
		return nil, storeErr(err)
	}
	fields := make([]string, 0, 2*len(z))
	for i := range z {
		id := fmt.Sprint(z[i].Member)
		fields = append(fields, id, id+":o")
	}
	vals, err := s.rdb.HMGet(ctx, s.keys.Outbox(n), fields...).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	var out []*OutboxEntry
	for i := range z {
		body, _ := vals[2*i].(string)
		_, claimed := vals[2*i+1].(string)
		if state != OutboxDead && claimed != (state == OutboxClaimed) {
			continue
		}
		e := decodeEntry(n, fields[2*i], body)
		e.Due = fromMS(int64(z[i].Score))
		out = append(out, e)
		if int64(len(out)) == limit {
			break
		}
	}
	return out, nil
}

// reviveScript moves a dead entry back to ready, due now, with its
// attempts reset.
//
// KEYS: the outbox. ARGV[3] id, [4] entry JSON.
// Returns {"ok"} or {"unknown"}.
var reviveScript = script(`
outbox(1)
if not redis.call('ZSCORE', OB.dead, ARGV[3]) then return {'unknown'} end
redis.call('ZREM', OB.dead, ARGV[3])
redis.call('HSET', OB.ob, ARGV[3], ARGV[4])
redis.call('ZADD', OB.q, NOW, ARGV[3])
if WAKE ~= '' then redis.call('PUBLISH', WAKE, '1') end
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
	res, err := s.outboxScript(ctx, reviveScript, shard, nil, id, e.json())
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
// KEYS: the outbox. ARGV[3] id. Returns {"ok"}, {"claimed"} or
// {"unknown"}.
var dropScript = script(`
outbox(1)
local id = ARGV[3]
if redis.call('HEXISTS', OB.ob, id .. ':o') == 1 then return {'claimed'} end
local n = redis.call('ZREM', OB.q, id) + redis.call('ZREM', OB.dead, id)
if n == 0 then return {'unknown'} end
redis.call('HDEL', OB.ob, id)
return {'ok'}
`)

// DropOutboxEntry forgets the ready or dead entry ref ("shard/id"); an
// entry being sent cannot be dropped.
func (s *Store) DropOutboxEntry(ctx context.Context, ref string) error {
	shard, id, err := ParseOutboxRef(ref)
	if err != nil {
		return err
	}
	res, err := s.outboxScript(ctx, dropScript, shard, nil, id)
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
// KEYS: the outbox. ARGV[3] cutoff (ms). Returns {count}.
var purgeDeadScript = script(`
outbox(1)
local ids = redis.call('ZRANGEBYSCORE', OB.dead, '-inf', ARGV[3], 'LIMIT', 0, 500)
if #ids > 0 then
  redis.call('ZREM', OB.dead, unpack(ids))
  redis.call('HDEL', OB.ob, unpack(ids))
end
return {tostring(#ids)}
`)

// publishScript appends an event to the events stream once: a marker
// key, in the stream's slot, remembers the outbox entry that published
// it, so that a daemon killed between the append and the record of the
// entry does not append it again when the entry is retried.
//
// KEYS[1] the events stream, [2] the entry's marker. ARGV[3] the most
// entries kept (MAXLEN ~), [4] event, [5] request id, [6] JSON, [7] how
// long the marker is kept (ms). Returns {"added"} or {"already"}.
var publishScript = script(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[7]) then return {'already'} end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[4], 'request', ARGV[5], 'json', ARGV[6])
return {'added'}
`)

// PublishEvent appends a finished or disputed request to the events
// stream (capped near EventsMaxLen), as the fields event, request and
// json, once for the outbox entry named entryRef whatever retries follow.
func (s *Store) PublishEvent(ctx context.Context, entryRef, event, requestID string, body []byte) error {
	keys := []string{s.keys.Events(), s.keys.EventPublished(entryRef)}
	_, err := s.run(ctx, publishScript, keys, "", s.opt.EventsMaxLen, event, requestID, string(body),
		(DeadRetention + 5*24*time.Hour).Milliseconds())
	return err
}

// WatchOutbox calls wake with the shard each time a script queues an
// entry in it, from any daemon, until ctx ends. It returns when the
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
