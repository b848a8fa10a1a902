package workflow

import "github.com/redis/go-redis/v9"

// Every state change of a request is one Lua script below, run on the
// request's shard. Each script receives the shard's key prefix (ending in
// the hash tag, e.g. "contactd:{s7}:") as ARGV[1] and the current time in
// milliseconds as ARGV[2]; it builds the names of the shard's other keys
// from that prefix, so they all hash to KEYS[1]'s slot. Scripts never read
// the server clock: time comes from the caller, so tests drive it.
//
// A request is a HASH with the fields:
//
//	svc  service id             req  requester NIC
//	st   status                 why  reason (failed)
//	c    created (ms)           x    expires (ms)
//	chg  JSON {role: {"from","to"}}
//	apv  approvers, space-separated      inf  informed, space-separated
//	pay  billing NICs whose payments are re-checked when applying
//	n    number of approvers who have not accepted yet
//	h    history of requests stored before it moved to Keys.History
//	s:NIC approver status   c:NIC channel   a:NIC answer time (ms)
//	t:NIC hash of the approver's live token (absent when none)
//	p:NIC hashes of tokens issued for emails not yet accepted by the mail
//	      server, space-separated, oldest first (at most maxPending)
//	r:NIC reminders sent    u:NIC "1" once an email to NIC bounced
//
// Each transition writes the emails it causes to the shard's outbox in the
// same script (a transactional outbox): an email is never missed and never
// sent for a change that did not happen.

// luaLib is prepended to every script.
const luaLib = `
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local WOKE = false

local function split(s)
  local t = {}
  for w in string.gmatch(s or '', '%S+') do t[#t + 1] = w end
  return t
end

-- hist appends an event to the history of the request whose key is k.
local function hist(k, ev, nic, ch)
  if nic == nil or nic == '' then nic = '-' end
  redis.call('APPEND', K.hist(k), NOW .. ' ' .. ev .. ' ' .. nic .. ' ' .. ch .. '\n')
end

-- enqueue adds one message to the shard's outbox, ready now, and wakes
-- the mailers (once per script).
local function enqueue(msg)
  msg.at = NOW
  local mid = tostring(redis.call('INCR', K.seq(P)))
  redis.call('HSET', K.outbox(P), mid, cjson.encode(msg))
  redis.call('ZADD', K.ready(P), NOW, mid)
  if not WOKE then
    redis.call('PUBLISH', K.wake(P), '1')
    WOKE = true
  end
end

local function mail_all(k, id, kind, list)
  for _, nic in ipairs(split(redis.call('HGET', k, list))) do
    enqueue({kind = kind, request = id, nic = nic})
  end
end

-- move_status counts a request leaving status from for status to in the
-- shard's tally (from nil: a new request).
local function move_status(from, to)
  if from then redis.call('HINCRBY', K.stats(P), from, -1) end
  redis.call('HINCRBY', K.stats(P), to, 1)
end

-- has reports whether the space-separated list s holds w.
local function has(s, w)
  for _, x in ipairs(split(s)) do if x == w then return true end end
  return false
end

-- live_token reports whether hash is a token of nic that still works:
-- the live one, or one whose email may be in the approver's hands.
local function live_token(k, nic, hash)
  local f = redis.call('HMGET', k, 't:' .. nic, 'p:' .. nic)
  return f[1] == hash or has(f[2], hash)
end

-- finish ends a request: status, history, open roles released, due
-- entries removed, tokens dead (they are only live while pending), the
-- ending emails and the event for other systems queued.
local function finish(k, id, status, nic, ch, reason)
  move_status(redis.call('HGET', k, 'st'), status)
  redis.call('HSET', k, 'st', status)
  if reason ~= nil and reason ~= '' then redis.call('HSET', k, 'why', reason) end
  hist(k, status, nic, ch)
  local open = K.open(P, redis.call('HGET', k, 'svc'))
  for role, _ in pairs(cjson.decode(redis.call('HGET', k, 'chg'))) do
    if redis.call('HGET', open, role) == id then redis.call('HDEL', open, role) end
  end
  redis.call('ZREM', K.due_expire(P), id)
  redis.call('ZREM', K.due_apply(P), id)
  for _, a in ipairs(split(redis.call('HGET', k, 'apv'))) do
    redis.call('ZREM', K.due_remind(P), id .. ' ' .. a)
    redis.call('HDEL', k, 't:' .. a, 'p:' .. a)
  end
  mail_all(k, id, status, 'apv')
  if status == 'applied' then mail_all(k, id, 'informed', 'inf') end
  enqueue({kind = 'event', request = id, event = status})
end

-- live_pending is true while k is pending and not past its expiry; a
-- request found past it is expired on the spot.
local function live_pending(k, id)
  if redis.call('HGET', k, 'st') ~= 'pending' then return false end
  if NOW >= tonumber(redis.call('HGET', k, 'x')) then
    finish(k, id, 'expired', '', 'system', '')
    return false
  end
  return true
end
`

// script prepends the key names and luaLib to a script's body.
func script(body string) *redis.Script { return redis.NewScript(luaKeys() + luaLib + body) }

// maxPending bounds the tokens of one approver issued for emails whose
// delivery is not yet known.
const maxPending = 4

// createScript stores a new request if the service still has the holders
// the rules were checked against and no open request touches its roles.
//
// KEYS[1] request, KEYS[2] service, KEYS[3] open roles of the service.
// ARGV[3] id, [4] service, [5] requester, [6] expires (ms), [7] changes
// JSON, [8] approvers, [9] informed, [10] payment NICs, [11] channel,
// [12] first reminder time (ms), then role/from pairs.
// Returns {"ok"}, {"stale"} (the service changed since it was read), or
// {"conflict", other request id}.
var createScript = script(`
local k, svc, open = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[3]
for i = 13, #ARGV, 2 do
  local role, from = ARGV[i], ARGV[i + 1]
  if (redis.call('HGET', svc, role) or '') ~= from then return {'stale'} end
  local other = redis.call('HGET', open, role)
  if other then
    local ok = K.req(P, other)
    local st = redis.call('HGET', ok, 'st')
    if st == 'approved' or (st == 'pending' and NOW < tonumber(redis.call('HGET', ok, 'x'))) then
      return {'conflict', other}
    end
  end
end
local apv = split(ARGV[8])
redis.call('HSET', k, 'svc', ARGV[4], 'req', ARGV[5], 'st', 'pending', 'c', NOW, 'x', ARGV[6],
  'chg', ARGV[7], 'apv', ARGV[8], 'inf', ARGV[9], 'pay', ARGV[10], 'n', #apv)
hist(k, 'created', ARGV[5], ARGV[11])
move_status(nil, 'pending')
for i = 13, #ARGV, 2 do redis.call('HSET', open, ARGV[i], id) end
redis.call('ZADD', K.due_expire(P), ARGV[6], id)
for _, a in ipairs(apv) do
  redis.call('HSET', k, 's:' .. a, 'pending', 'r:' .. a, 0)
  redis.call('ZADD', K.due_remind(P), ARGV[12], id .. ' ' .. a)
  enqueue({kind = 'validation', request = id, nic = a})
end
return {'ok'}
`)

// tokenScript issues an approver a token for an email about to be sent.
// The token is pending: it works, but the approver's earlier token is only
// revoked once the mail server accepts this email (recordSentScript), so
// an email that never leaves revokes nothing.
//
// KEYS[1] request, KEYS[2] the new token's key.
// ARGV[3] id, [4] nic, [5] token hash, [6] how long a dead token is
// remembered (ms), [7] most pending tokens kept.
// Returns {"ok"}, {"gone", status} (not pending), {"answered"} (the
// approver already answered) or {"unknown"}.
var tokenScript = script(`
local k, tok = KEYS[1], KEYS[2]
local id, nic = ARGV[3], ARGV[4]
if redis.call('EXISTS', k) == 0 then return {'unknown'} end
if not live_pending(k, id) then return {'gone', redis.call('HGET', k, 'st')} end
local s = redis.call('HGET', k, 's:' .. nic)
if s == false then return {'unknown'} end
if s ~= 'pending' then return {'answered'} end
local p = split(redis.call('HGET', k, 'p:' .. nic))
p[#p + 1] = ARGV[5]
while #p > tonumber(ARGV[7]) do table.remove(p, 1) end
redis.call('HSET', k, 'p:' .. nic, table.concat(p, ' '))
redis.call('HSET', tok, 'r', id, 'n', nic, 'k', 'v')
redis.call('PEXPIRE', tok, tonumber(redis.call('HGET', k, 'x')) - NOW + tonumber(ARGV[6]))
return {'ok'}
`)

// decideScript records an approver's decision made with a token.
//
// KEYS[1] the token's key. ARGV[3] token hash, [4] accept|decline, [5] channel.
// Returns {"unknown"} (no such token), {"gone", id, nic} (used, revoked or
// the request left pending), or {outcome, id, nic} where outcome is
// accepted (others still awaited), approved or declined.
var decideScript = script(`
local t = redis.call('HMGET', KEYS[1], 'r', 'n', 'k')
if not t[1] or t[3] ~= 'v' then return {'unknown'} end
local id, nic = t[1], t[2]
local k = K.req(P, id)
if not live_pending(k, id) then return {'gone', id, nic} end
if not live_token(k, nic, ARGV[3]) then return {'gone', id, nic} end
local ch = ARGV[5]
redis.call('HDEL', k, 't:' .. nic, 'p:' .. nic)
redis.call('ZREM', K.due_remind(P), id .. ' ' .. nic)
redis.call('HSET', k, 'c:' .. nic, ch, 'a:' .. nic, NOW)
if ARGV[4] == 'decline' then
  redis.call('HSET', k, 's:' .. nic, 'declined')
  enqueue({kind = 'recorded', request = id, nic = nic})
  finish(k, id, 'declined', nic, ch, '')
  return {'declined', id, nic}
end
redis.call('HSET', k, 's:' .. nic, 'accepted')
hist(k, 'accepted', nic, ch)
enqueue({kind = 'recorded', request = id, nic = nic})
if redis.call('HINCRBY', k, 'n', -1) > 0 then return {'accepted', id, nic} end
move_status('pending', 'approved')
redis.call('HSET', k, 'st', 'approved')
hist(k, 'approved', '', 'system')
redis.call('ZREM', K.due_expire(P), id)
redis.call('ZADD', K.due_apply(P), NOW, id)
return {'approved', id, nic}
`)

// applyScript makes an approved request effective: the service's contacts
// change in the same step, after checking each role is still held by the
// contact the request was made against. Applying twice is a no-op.
//
// KEYS[1] request. ARGV[3] id, [4] "" when payments are up to date, else
// the reason the request fails.
// Returns {status} when not approved (nothing done), {"applied"} or
// {"failed", reason}.
var applyScript = script(`
local k, id = KEYS[1], ARGV[3]
local st = redis.call('HGET', k, 'st')
if st ~= 'approved' then
  redis.call('ZREM', K.due_apply(P), id)
  return {st or 'unknown'}
end
local sid = redis.call('HGET', k, 'svc')
local svc = K.svc(P, sid)
local chg = cjson.decode(redis.call('HGET', k, 'chg'))
for _, role in ipairs({'admin', 'tech', 'billing'}) do
  local c = chg[role]
  if c and (redis.call('HGET', svc, role) or '') ~= c.from then
    local why = 'the ' .. role .. ' contact of ' .. sid .. ' changed since the request was made'
    finish(k, id, 'failed', '', 'system', why)
    return {'failed', why}
  end
end
if ARGV[4] ~= '' then
  finish(k, id, 'failed', '', 'system', ARGV[4])
  return {'failed', ARGV[4]}
end
for role, c in pairs(chg) do redis.call('HSET', svc, role, c.to) end
finish(k, id, 'applied', '', 'system', '')
return {'applied'}
`)

// cancelScript ends a pending request at its requester's demand.
//
// KEYS[1] request. ARGV[3] id, [4] nic asking, [5] channel.
// Returns {"cancelled"}, {"unknown"}, {"forbidden"} (not the requester) or
// {"notpending", status}.
var cancelScript = script(`
local k, id = KEYS[1], ARGV[3]
if redis.call('EXISTS', k) == 0 then return {'unknown'} end
if redis.call('HGET', k, 'req') ~= ARGV[4] then return {'forbidden'} end
if not live_pending(k, id) then return {'notpending', redis.call('HGET', k, 'st')} end
finish(k, id, 'cancelled', ARGV[4], ARGV[5], '')
return {'cancelled'}
`)

// expireScript expires a request whose time is up; anything else is just
// taken off the expiry schedule.
//
// KEYS[1] request. ARGV[3] id. Returns {status after the call}.
var expireScript = script(`
local k, id = KEYS[1], ARGV[3]
if redis.call('EXISTS', k) == 0 then
  redis.call('ZREM', K.due_expire(P), id)
  return {'unknown'}
end
if live_pending(k, id) then return {'pending'} end
redis.call('ZREM', K.due_expire(P), id)
return {redis.call('HGET', k, 'st')}
`)

// remindScript queues a reminder to an approver whose reminder is due, if
// the request still waits for them and they have reminders left. It
// re-reads the due time, so sweeps that overlap send one reminder per due
// time.
//
// KEYS[1] request. ARGV[3] id, [4] nic, [5] max reminders, [6] remind
// after (ms). Returns {"reminded"}, {"notdue"} or {"skipped"}.
var remindScript = script(`
local k, id, nic = KEYS[1], ARGV[3], ARGV[4]
local member = id .. ' ' .. nic
local due = redis.call('ZSCORE', K.due_remind(P), member)
if not due or tonumber(due) > NOW then return {'notdue'} end
if redis.call('EXISTS', k) == 1 and live_pending(k, id)
  and redis.call('HGET', k, 's:' .. nic) == 'pending'
  and redis.call('HGET', k, 'u:' .. nic) ~= '1'
  and tonumber(redis.call('HGET', k, 'r:' .. nic) or '0') < tonumber(ARGV[5]) then
  redis.call('HINCRBY', k, 'r:' .. nic, 1)
  enqueue({kind = 'reminder', request = id, nic = nic})
  redis.call('ZADD', K.due_remind(P), NOW + tonumber(ARGV[6]), member)
  return {'reminded'}
end
redis.call('ZREM', K.due_remind(P), member)
return {'skipped'}
`)

// resendScript queues a fresh email to one approver, or to every approver
// who has not answered, e.g. after a contact fixed its address.
//
// KEYS[1] request. ARGV[3] id, [4] nic or "", [5] remind after (ms).
// Returns {"ok", count}, {"unknown"}, {"notpending", status},
// {"notapprover"} or {"answered"}.
var resendScript = script(`
local k, id, only = KEYS[1], ARGV[3], ARGV[4]
if redis.call('EXISTS', k) == 0 then return {'unknown'} end
if not live_pending(k, id) then return {'notpending', redis.call('HGET', k, 'st')} end
local targets = {}
if only ~= '' then
  local s = redis.call('HGET', k, 's:' .. only)
  if not s then return {'notapprover'} end
  if s ~= 'pending' then return {'answered'} end
  targets = {only}
else
  for _, a in ipairs(split(redis.call('HGET', k, 'apv'))) do
    if redis.call('HGET', k, 's:' .. a) == 'pending' then targets[#targets + 1] = a end
  end
end
for _, a in ipairs(targets) do
  redis.call('HDEL', k, 'u:' .. a)
  redis.call('ZADD', K.due_remind(P), NOW + tonumber(ARGV[5]), id .. ' ' .. a)
  enqueue({kind = 'resend', request = id, nic = a})
end
return {'ok', tostring(#targets)}
`)

// undeliverableScript records that an email to an approver bounced: its
// reminders stop and the requester is told.
//
// KEYS[1] request. ARGV[3] id, [4] nic. Returns {"ok"}, {"unknown"} or
// {"already"}.
var undeliverableScript = script(`
local k, id, nic = KEYS[1], ARGV[3], ARGV[4]
if redis.call('EXISTS', k) == 0 or not redis.call('HGET', k, 's:' .. nic) then return {'unknown'} end
if redis.call('HGET', k, 'u:' .. nic) == '1' then return {'already'} end
redis.call('HSET', k, 'u:' .. nic, '1')
redis.call('ZREM', K.due_remind(P), id .. ' ' .. nic)
hist(k, 'undeliverable', nic, 'email')
if redis.call('HGET', k, 'st') == 'pending' then
  enqueue({kind = 'undeliverable', request = id, nic = redis.call('HGET', k, 'req'), about = nic})
end
return {'ok'}
`)

// reportTokenScript gives a previous holder told of an applied change a
// "this wasn't me" token.
//
// KEYS[1] request, KEYS[2] the token's key. ARGV[3] id, [4] nic, [5] token
// hash, [6] report window (ms), [7] how long a dead token is remembered (ms).
// Returns {"ok"} or {"unknown"} (no such request or nic not informed).
var reportTokenScript = script(`
local k, tok, id, nic = KEYS[1], KEYS[2], ARGV[3], ARGV[4]
if redis.call('HGET', k, 'st') ~= 'applied' then return {'unknown'} end
local found = false
for _, n in ipairs(split(redis.call('HGET', k, 'inf'))) do if n == nic then found = true end end
if not found then return {'unknown'} end
redis.call('HSET', tok, 'r', id, 'n', nic, 'k', 'r', 'x', NOW + tonumber(ARGV[6]))
redis.call('PEXPIRE', tok, tonumber(ARGV[6]) + tonumber(ARGV[7]))
return {'ok'}
`)

// disputeScript records a "this wasn't me" report made with a report
// token; the token is single-use.
//
// KEYS[1] the token's key. ARGV[3] channel.
// Returns {"unknown"}, {"gone", id, nic} or {"disputed", id, nic}.
var disputeScript = script(`
local t = redis.call('HMGET', KEYS[1], 'r', 'n', 'k', 'x', 'used')
if not t[1] or t[3] ~= 'r' then return {'unknown'} end
local id, nic = t[1], t[2]
if t[5] or NOW >= tonumber(t[4]) then return {'gone', id, nic} end
redis.call('HSET', KEYS[1], 'used', '1')
local k = K.req(P, id)
hist(k, 'disputed', nic, ARGV[3])
enqueue({kind = 'disputed', request = id, nic = nic})
enqueue({kind = 'event', request = id, event = 'disputed'})
return {'disputed', id, nic}
`)
