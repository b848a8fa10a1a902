package workflow

import "github.com/redis/go-redis/v9"

// Every state change is one Lua script below, run on one shard. The rules
// every script follows:
//
//   - Every key it touches is in KEYS, computed in Go from keys.go; a
//     script never builds a key name. The per-request scripts take the
//     same eleven keys (requestKeys): the request, its history, its
//     service, the shard's due sets and tally, and the shard's outbox.
//   - ARGV[1] is the time in ms (scripts never read the server clock, so
//     tests drive it) and ARGV[2] the pub/sub channel that wakes the
//     mailers when the script queues an entry ("" when it never does).
//   - It reads and checks everything first, and writes only once nothing
//     can make it stop half-way: a record it cannot read (its changes not
//     JSON, say) is reported with nothing written.
//
// A request is a HASH with the fields:
//
//	svc  service id             req  requester NIC
//	st   status                 why  reason code (failed, see Reason)
//	c    created (ms)           x    expires (ms)
//	k    the service's kind when the request was made
//	chg  JSON {role: {"from","to"}}
//	apv  approvers, space-separated      inf  informed, space-separated
//	pay  billing NICs whose payments are re-checked when applying
//	n    number of approvers who have not accepted yet
//	ho   id of its hand-over, if it belongs to one
//	h    history of requests stored before it moved to Keys.History
//	s:NIC approver state    c:NIC channel   a:NIC answer time (ms)
//	r:NIC reminders sent    u:NIC "1" once an email to NIC bounced
//	t:NIC "E REF REF..." the approver's live tokens: the references of
//	      the tokens of outbox entry E, the last email to NIC the mail
//	      server accepted (every attempt of it: a copy may have arrived)
//	p:NIC "E:REF E:REF..." tokens of emails not yet known to have been
//	      accepted, with the outbox entry each was issued for
//
// A token works while it is live or pending. When the mail server accepts
// entry E's email, the tokens of E become the live ones and revoke those
// of earlier emails; tokens of later entries stay pending. A failed or
// retried attempt revokes nothing: its token may have reached the
// approver (a relay that accepted the email but whose answer was lost).
//
// Each transition queues the emails it causes in the shard's outbox in
// the same script (a transactional outbox): one entry per recipient, with
// the kinds of email it gets, in order. An email is never missed and
// never sent for a change that did not happen.

// luaLib is prepended to every script.
//
// Scripts write through a buffer (hset, hdel, zadd, zrem, append, incr,
// mail) that commit() turns into one command per key and kind of write,
// the last write of a field or member winning: a transition that
// approves and applies a request in one step writes its status once and
// counts it once in the tally (pending to applied). Reads go to Redis
// before any write, or to what the script already read (F, SVC).
const luaLib = `
local NOW = tonumber(ARGV[1])
local WAKE = ARGV[2]

local function split(s)
  local t = {}
  for w in string.gmatch(s or '', '%S+') do t[#t + 1] = w end
  return t
end

local function has(s, w)
  for _, x in ipairs(split(s)) do if x == w then return true end end
  return false
end

local function hgetall(k)
  local t, f = {}, redis.call('HGETALL', k)
  for i = 1, #f, 2 do t[f[i]] = f[i + 1] end
  return t
end

-- The write buffer: per key, in the order keys were first written.
local WK, WH, WZ, WA, WI = {}, {}, {}, {}, {}
local function touch(k)
  if not (WH[k] or WZ[k] or WA[k] or WI[k]) then WK[#WK + 1] = k end
end
local R, F = {}, nil
local function field(t, k, f, v)
  touch(k)
  local h = t[k]
  if not h then h = {o = {}, v = {}}; t[k] = h end
  if h.v[f] == nil then h.o[#h.o + 1] = f end
  h.v[f] = v
  -- F, the request's fields as read, follows what the script writes.
  if t == WH and F and k == R.k then
    if v == false then F[f] = nil else F[f] = tostring(v) end
  end
end
local function hset(k, ...)
  local a = {...}
  for i = 1, #a, 2 do field(WH, k, a[i], a[i + 1]) end
end
local function hdel(k, ...)
  for _, f in ipairs({...}) do field(WH, k, f, false) end
end
local function zadd(k, score, m) field(WZ, k, m, score) end
local function zrem(k, m) field(WZ, k, m, false) end
local function append(k, text) touch(k); WA[k] = (WA[k] or '') .. text end
local function incr(k, f, n)
  touch(k)
  local h = WI[k]
  if not h then h = {o = {}, v = {}}; WI[k] = h end
  if h.v[f] == nil then h.o[#h.o + 1] = f end
  h.v[f] = (h.v[f] or 0) + n
end

-- snapshot is the record in F (a request's or a hand-over's) as it stands,
-- its tokens left out: it goes with the emails a transition queues, so
-- the mailer need not read the record again.
local function snapshot()
  local snap = {}
  for f, v in pairs(F or {}) do
    local p = string.sub(f, 1, 2)
    if p ~= 't:' and p ~= 'p:' then snap[f] = v end
  end
  return snap
end

-- The outbox: OB is bound by outbox(i) to KEYS[i..i+3] (entries,
-- queue, sequence, dead). mail() collects entries; commit() writes them
-- with one command per structure, sets each one's id in e.qid, and wakes
-- the mailers once.
local OB = {}
local function outbox(i)
  OB.ob, OB.q, OB.seq, OB.dead = KEYS[i], KEYS[i + 1], KEYS[i + 2], KEYS[i + 3]
end
local OUT = {}
local function mail(e) OUT[#OUT + 1] = e end

local function commit()
  for _, k in ipairs(WK) do
    local h = WH[k]
    if h then
      local set, del = {}, {}
      for _, f in ipairs(h.o) do
        local v = h.v[f]
        if v == false then del[#del + 1] = f else set[#set + 1] = f; set[#set + 1] = v end
      end
      if #set > 0 then redis.call('HSET', k, unpack(set)) end
      if #del > 0 then redis.call('HDEL', k, unpack(del)) end
    end
    local z = WZ[k]
    if z then
      local add, rem = {}, {}
      for _, m in ipairs(z.o) do
        local v = z.v[m]
        if v == false then rem[#rem + 1] = m else add[#add + 1] = v; add[#add + 1] = m end
      end
      if #add > 0 then redis.call('ZADD', k, unpack(add)) end
      if #rem > 0 then redis.call('ZREM', k, unpack(rem)) end
    end
    if WA[k] then redis.call('APPEND', k, WA[k]) end
    local c = WI[k]
    if c then
      for _, f in ipairs(c.o) do
        if c.v[f] ~= 0 then redis.call('HINCRBY', k, f, c.v[f]) end
      end
    end
  end
  if #OUT == 0 then return end
  local snap = nil
  for _, e in ipairs(OUT) do
    if e.snap == nil and R.id and (e.request == R.id or e.handover == R.id) then
      snap = snap or snapshot()
      e.snap = snap
    end
  end
  local last = redis.call('INCRBY', OB.seq, #OUT)
  local h, z = {}, {}
  for i, e in ipairs(OUT) do
    e.at = NOW
    local id = tostring(last - #OUT + i)
    h[#h + 1] = id
    h[#h + 1] = cjson.encode(e)
    e.qid = id
    z[#z + 1] = NOW
    z[#z + 1] = id
  end
  redis.call('HSET', OB.ob, unpack(h))
  redis.call('ZADD', OB.q, unpack(z))
  if WAKE ~= '' then redis.call('PUBLISH', WAKE, '1') end
end

-- A request: R holds its keys, bound by request(i) to KEYS[i..i+6] and
-- the outbox at KEYS[i+7..]; load() reads it into F (fields) and CHG (its
-- changes); svc() reads its service's holders and open roles into SVC
-- when first needed.
local CHG, SVC, APPROVED_NOW = nil, nil, false
local ROLES = {'admin', 'tech', 'billing'}
local function request(i, id)
  R.id, R.k, R.h, R.svc, R.exp, R.rem, R.app, R.stats =
    id, KEYS[i], KEYS[i + 1], KEYS[i + 2], KEYS[i + 3], KEYS[i + 4], KEYS[i + 5], KEYS[i + 6]
  outbox(i + 7)
end

-- bind makes the request id, at the keys k (record), h (history) and sk
-- (service), the one the functions below work on, in a script that goes
-- through several requests of a shard (a hand-over's).
local function bind(id, k, h, sk)
  R.id, R.k, R.h, R.svc = id, k, h, sk
  F, CHG, SVC, APPROVED_NOW = nil, nil, nil, false
end

-- load returns nil when the request is there and readable, else why not:
-- 'unknown' (no such request), 'keys' (the caller named another service
-- than the request's) or 'corrupt'.
local function load(svcid)
  F = hgetall(R.k)
  if F.st == nil then return 'unknown' end
  if svcid ~= nil and F.svc ~= svcid then return 'keys' end
  local ok, c = pcall(cjson.decode, F.chg or '')
  if not ok or type(c) ~= 'table' or tonumber(F.x) == nil or tonumber(F.n) == nil then return 'corrupt' end
  for role, ch in pairs(c) do
    if type(ch) ~= 'table' or type(ch.to) ~= 'string' or type(ch.from) ~= 'string' then return 'corrupt' end
  end
  CHG = c
  return nil
end

local function svc()
  if SVC then return SVC end
  SVC = {}
  local f = redis.call('HMGET', R.svc, 'admin', 'tech', 'billing', 'o:admin', 'o:tech', 'o:billing')
  for i, role in ipairs(ROLES) do
    SVC[role] = f[i] or ''
    SVC['o:' .. role] = f[i + 3] or ''
  end
  return SVC
end

local function hist(ev, nic, ch)
  if nic == nil or nic == '' then nic = '-' end
  append(R.h, NOW .. ' ' .. ev .. ' ' .. nic .. ' ' .. ch .. '\n')
end

-- setst moves the request to status st, in its record and the tally.
local function setst(st)
  if F.st then incr(R.stats, F.st, -1) end
  incr(R.stats, st, 1)
  hset(R.k, 'st', st)
  F.st = st
end

-- live reports whether ref is a token of nic that still works.
local function live(nic, ref)
  local t = split(F['t:' .. nic])
  for i = 2, #t do if t[i] == ref then return true end end
  for _, p in ipairs(split(F['p:' .. nic])) do
    if string.sub(p, string.find(p, ':', 1, true) + 1) == ref then return true end
  end
  return false
end

-- holds reports whether the open role field value v names this request.
local function holds(v) return split(v)[1] == R.id end

-- finish ends the request: status and reason, history, the roles it held
-- on its service released, its due entries removed, its tokens dead, and
-- its emails queued: to each approver first[nic] (if any) then the ending
-- kind, to each informed contact "informed" when applied, and the event.
-- A request of a hand-over queues only its event: the hand-over sends
-- one email per person for all its requests.
local function finish(st, nic, ch, why, first)
  local was = F.st
  setst(st)
  if why ~= nil and why ~= '' then hset(R.k, 'why', why) end
  hist(st, nic, ch)
  local s = svc()
  for role, _ in pairs(CHG) do
    if holds(s['o:' .. role]) then hdel(R.svc, 'o:' .. role) end
  end
  local apv = split(F.apv)
  if F.ho == nil then
    if was == 'pending' then zrem(R.exp, R.id) elseif not APPROVED_NOW then zrem(R.app, R.id) end
    for _, a in ipairs(apv) do
      if F['s:' .. a] == 'pending' then zrem(R.rem, R.id .. ' ' .. a) end
      if (F['t:' .. a] or '') ~= '' then hdel(R.k, 't:' .. a) end
      if (F['p:' .. a] or '') ~= '' then hdel(R.k, 'p:' .. a) end
    end
    for _, a in ipairs(apv) do
      local kinds = {}
      if first and first[a] then kinds[1] = first[a] end
      kinds[#kinds + 1] = st
      mail({kinds = kinds, request = R.id, nic = a})
    end
    if st == 'applied' then
      for _, n in ipairs(split(F.inf)) do mail({kinds = {'informed'}, request = R.id, nic = n}) end
    end
  end
  mail({kinds = {'event'}, request = R.id, event = st, snap = snapshot()})
end

-- expired reports whether a pending request is past its expiry, and
-- then expires it on the spot.
local function expired()
  if F.st == 'pending' and NOW >= tonumber(F.x) then
    finish('expired', '', 'system', '')
    return true
  end
  return false
end

-- applyNow makes an approved request effective if each role is still held
-- by the contact the request was made against and payments are up to
-- date (payReason, from the caller, is "" when they are): the service's
-- contacts change in the same step. first is passed on to finish.
local function applyNow(payReason, first)
  local s = svc()
  for _, role in ipairs(ROLES) do
    local c = CHG[role]
    if c and s[role] ~= c.from then
      finish('failed', '', 'system', 'role_changed:' .. role, first)
      return 'failed'
    end
  end
  if payReason ~= '' then
    finish('failed', '', 'system', payReason, first)
    return 'failed'
  end
  for _, role in ipairs(ROLES) do
    local c = CHG[role]
    if c then hset(R.svc, role, c.to) end
  end
  finish('applied', '', 'system', '', first)
  return 'applied'
end

-- result is a script's reply: an outcome, then the request's fields as
-- they stand after the script (what a caller shows without reading the
-- request again).
local function result(outcome)
  local out = {outcome}
  for f, v in pairs(F) do out[#out + 1] = f; out[#out + 1] = v end
  return out
end

-- approve marks a request approved: it keeps its roles until applied.
local function approve()
  APPROVED_NOW = true
  setst('approved')
  hist('approved', '', 'system')
  local s = svc()
  for role, _ in pairs(CHG) do
    if holds(s['o:' .. role]) then hset(R.svc, 'o:' .. role, R.id .. ' 0') end
  end
  if F.ho == nil then zrem(R.exp, R.id) end
end

-- resendTo queues a fresh email to approver only, or to every approver
-- who has not answered (only ""), of the record in F (a request or a
-- hand-over, named so in the entries by field), their reminders due
-- delay ms from now (on the due set rem). It ends the script.
local function resendTo(field, rem, only, delay)
  local targets = {}
  if only ~= '' then
    local st = F['s:' .. only]
    if not st then return {'notapprover'} end
    if st ~= 'pending' then return {'answered'} end
    targets = {only}
  else
    for _, a in ipairs(split(F.apv)) do
      if F['s:' .. a] == 'pending' then targets[#targets + 1] = a end
    end
  end
  for _, a in ipairs(targets) do
    if F['u:' .. a] then hdel(R.k, 'u:' .. a) end
    zadd(rem, NOW + delay, R.id .. ' ' .. a)
    mail({kinds = {'resend'}, [field] = R.id, nic = a})
  end
  commit()
  return {'ok', tostring(#targets)}
end

-- undeliverableTo records that an email to approver nic of the record in
-- F bounced: its reminders stop (due set rem) and, while the record is
-- pending, its requester is told. It ends the script.
local function undeliverableTo(field, rem, nic)
  if not F['s:' .. nic] then return {'unknown'} end
  if F['u:' .. nic] == '1' then return {'already'} end
  hset(R.k, 'u:' .. nic, '1')
  zrem(rem, R.id .. ' ' .. nic)
  hist('undeliverable', nic, 'email')
  if F.st == 'pending' then
    mail({kinds = {'undeliverable'}, [field] = R.id, nic = F.req, about = nic})
  end
  commit()
  return {'ok'}
end
`

// script prepends luaLib to a script's body.
func script(body string) *redis.Script { return redis.NewScript(luaLib + body) }

// The per-request scripts take KEYS = requestKeys(...) and, after
// ARGV[1] (time) and ARGV[2] (wake channel), ARGV[3] = the request id and
// ARGV[4] = its service id (the service the caller believes it is on: a
// request on another one is refused with "keys").

// createScript stores a new request if the service still has the holders
// the rules were checked against and no open request touches its roles.
//
// KEYS: requestKeys. ARGV[5] requester, [6] expires (ms), [7] changes
// JSON, [8] approvers, [9] informed, [10] payment NICs, [11] channel,
// [12] first reminder time (ms), [13] the service's kind, [14] hand-over
// id or "", then role/from pairs.
// Returns {"ok"}, {"stale"} (the service changed since it was read) or
// {"conflict", other request id}.
var createScript = script(`
request(1, ARGV[3])
local s = svc()
for i = 15, #ARGV, 2 do
  local role, from = ARGV[i], ARGV[i + 1]
  if s[role] ~= from then return {'stale'} end
  local o = split(s['o:' .. role])
  if o[1] and o[1] ~= R.id and (o[2] == '0' or NOW < tonumber(o[2] or '0')) then
    return {'conflict', o[1]}
  end
end
local apv, ho = split(ARGV[8]), ARGV[14]
F = {}
hset(R.k, 'svc', ARGV[4], 'req', ARGV[5], 'c', NOW, 'x', ARGV[6], 'chg', ARGV[7],
  'apv', ARGV[8], 'inf', ARGV[9], 'pay', ARGV[10], 'n', #apv, 'k', ARGV[13])
if ho ~= '' then hset(R.k, 'ho', ho) end
setst('pending')
for _, a in ipairs(apv) do hset(R.k, 's:' .. a, 'pending', 'r:' .. a, '0') end
hist('created', ARGV[5], ARGV[11])
for i = 15, #ARGV, 2 do hset(R.svc, 'o:' .. ARGV[i], R.id .. ' ' .. ARGV[6]) end
if ho == '' then
  zadd(R.exp, ARGV[6], R.id)
  for _, a in ipairs(apv) do
    zadd(R.rem, ARGV[12], R.id .. ' ' .. a)
    mail({kinds = {'validation'}, request = R.id, nic = a})
  end
end
commit()
return {'ok'}
`)

// decideScript records an approver's decision made with a token. When it
// is the last accept, the request is approved and, unless a billing
// contact's payments must be checked first (the caller then applies it),
// applied in the same step.
//
// KEYS: requestKeys. ARGV[5] nic, [6] the token's reference (the caller
// read the token's record: it names this request and approver), [7]
// accept|decline, [8] channel.
// Returns {"unknown"} (no such request), {"corrupt"}, {"gone"} (used,
// revoked or the request left pending), or {outcome, field, value, ...}:
// the outcome (accepted: others still awaited; approved: to apply;
// applied, failed or declined) and the request's fields as they stand.
var decideScript = script(`
request(1, ARGV[3])
local nic, ref, ch = ARGV[5], ARGV[6], ARGV[8]
local why = load(ARGV[4])
if why == 'keys' or why == 'unknown' then return {'unknown'} end
if why then return {why} end
if F.st ~= 'pending' then return {'gone'} end
if expired() then commit(); return {'gone'} end
if F['s:' .. nic] ~= 'pending' or not live(nic, ref) then return {'gone'} end
-- Its tokens die: emptied rather than deleted, written with its answer.
hset(R.k, 't:' .. nic, '', 'p:' .. nic, '')
zrem(R.rem, R.id .. ' ' .. nic)
if ARGV[7] == 'decline' then
  hset(R.k, 's:' .. nic, 'declined', 'c:' .. nic, ch, 'a:' .. nic, NOW)
  finish('declined', nic, ch, '', {[nic] = 'recorded'})
  commit()
  return result('declined')
end
local n = tonumber(F.n) - 1
hset(R.k, 's:' .. nic, 'accepted', 'c:' .. nic, ch, 'a:' .. nic, NOW, 'n', n)
hist('accepted', nic, ch)
if n > 0 then
  mail({kinds = {'recorded'}, request = R.id, nic = nic})
  commit()
  return result('accepted')
end
approve()
if (F.pay or '') ~= '' then
  zadd(R.app, NOW, R.id)
  mail({kinds = {'recorded'}, request = R.id, nic = nic})
  commit()
  return result('approved')
end
local out = applyNow('', {[nic] = 'recorded'})
commit()
return result(out)
`)

// applyScript makes an approved request effective (see applyNow).
// Applying twice is a no-op.
//
// KEYS: requestKeys. ARGV[5] "" when payments are up to date, else the
// reason code the request fails with.
// Returns {status} when not approved (nothing done), {"applied"},
// {"failed"}, {"unknown"} or {"corrupt"}.
var applyScript = script(`
request(1, ARGV[3])
local why = load(ARGV[4])
if why then
  if why == 'unknown' then redis.call('ZREM', R.app, R.id) end
  return {why}
end
if F.st ~= 'approved' then
  redis.call('ZREM', R.app, R.id)
  return {F.st}
end
local out = applyNow(ARGV[5])
commit()
return {out}
`)

// cancelScript ends a pending request at its requester's demand.
//
// KEYS: requestKeys. ARGV[5] nic asking, [6] channel.
// Returns {"cancelled"}, {"unknown"}, {"corrupt"}, {"forbidden"} (not the
// requester), {"handover", id} (part of a hand-over) or {"notpending",
// status}.
var cancelScript = script(`
request(1, ARGV[3])
local why = load(ARGV[4])
if why then return {why} end
if F.req ~= ARGV[5] then return {'forbidden'} end
if F.ho and F.st == 'pending' then return {'handover', F.ho} end
if F.st ~= 'pending' then return {'notpending', F.st} end
if expired() then commit(); return {'notpending', 'expired'} end
finish('cancelled', ARGV[5], ARGV[6], '')
commit()
return {'cancelled'}
`)

// expireScript expires a request whose time is up; anything else is just
// taken off the expiry schedule.
//
// KEYS: requestKeys. Returns {status after the call}, {"unknown"} or
// {"corrupt"}.
var expireScript = script(`
request(1, ARGV[3])
local why = load(ARGV[4])
if why == 'unknown' then
  redis.call('ZREM', R.exp, R.id)
  return {'unknown'}
end
if why then return {why} end
if F.st == 'pending' and not expired() then return {'pending'} end
zrem(R.exp, R.id)
commit()
return {F.st}
`)

// remindScript queues a reminder to an approver whose reminder is due, if
// the request still waits for them and they have reminders left. It
// re-reads the due time, so sweeps that overlap send one reminder per due
// time.
//
// KEYS: requestKeys. ARGV[5] nic, [6] max reminders, [7] remind after
// (ms). Returns {"reminded"}, {"notdue"}, {"skipped"}, {"unknown"} or
// {"corrupt"}.
var remindScript = script(`
request(1, ARGV[3])
local nic = ARGV[5]
local member = R.id .. ' ' .. nic
local due = redis.call('ZSCORE', R.rem, member)
if not due or tonumber(due) > NOW then return {'notdue'} end
local why = load(ARGV[4])
if why == 'unknown' then redis.call('ZREM', R.rem, member); return {'skipped'} end
if why then return {why} end
if F.st == 'pending' and not expired() and F['s:' .. nic] == 'pending' and F['u:' .. nic] ~= '1'
  and tonumber(F['r:' .. nic] or '0') < tonumber(ARGV[6]) then
  hset(R.k, 'r:' .. nic, tonumber(F['r:' .. nic] or '0') + 1)
  zadd(R.rem, NOW + tonumber(ARGV[7]), member)
  mail({kinds = {'reminder'}, request = R.id, nic = nic})
  commit()
  return {'reminded'}
end
zrem(R.rem, member)
commit()
return {'skipped'}
`)

// resendScript queues a fresh email to one approver, or to every approver
// who has not answered, e.g. after a contact fixed its address.
//
// KEYS: requestKeys. ARGV[5] nic or "", [6] remind after (ms).
// Returns {"ok", count}, {"unknown"}, {"corrupt"}, {"notpending",
// status}, {"handover", id}, {"notapprover"} or {"answered"}.
var resendScript = script(`
request(1, ARGV[3])
local why = load(ARGV[4])
if why then return {why} end
local only = ARGV[5]
if F.ho and F.st == 'pending' then return {'handover', F.ho} end
if F.st ~= 'pending' then return {'notpending', F.st} end
if expired() then commit(); return {'notpending', 'expired'} end
return resendTo('request', R.rem, only, tonumber(ARGV[6]))
`)

// undeliverableScript records that an email to an approver bounced: its
// reminders stop and the requester is told.
//
// KEYS: requestKeys. ARGV[5] nic. Returns {"ok"}, {"unknown"},
// {"corrupt"} or {"already"}.
var undeliverableScript = script(`
request(1, ARGV[3])
local nic = ARGV[5]
local why = load(ARGV[4])
if why then return {why} end
return undeliverableTo('request', R.rem, nic)
`)

// disputeScript records a "this wasn't me" report made with a report
// token; the token is single-use.
//
// KEYS: requestKeys, then [12] the token's record. ARGV[5] nic, [6]
// channel.
// Returns {"unknown"}, {"gone"} or {"disputed"}.
var disputeScript = script(`
request(1, ARGV[3])
local raw = redis.call('GET', KEYS[12])
local t = split(raw)
if t[1] ~= 'r' or t[2] ~= R.id or t[3] ~= ARGV[5] then return {'unknown'} end
if t[5] or NOW >= tonumber(t[4] or '0') then return {'gone'} end
local why = load(ARGV[4])
if why then return {'unknown'} end
redis.call('SET', KEYS[12], raw .. ' used', 'KEEPTTL')
hist('disputed', ARGV[5], ARGV[6])
mail({kinds = {'disputed'}, request = R.id, nic = ARGV[5]})
mail({kinds = {'event'}, request = R.id, event = 'disputed'})
commit()
return {'disputed'}
`)
