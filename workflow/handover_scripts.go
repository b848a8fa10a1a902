package workflow

import "github.com/redis/go-redis/v9"

// The scripts of a hand-over (see handover.go). Those named ho...Script
// run on the hand-over's shard and take KEYS = handoverKeys: the
// hand-over's record, history, items, refused services, outcomes, the
// shard's hand-over due sets, then the shard's outbox. The batch scripts
// run on the shard of some of its requests and take KEYS = batchKeys: the
// shard's tally and outbox, then the record, history and service of each
// request named.
//
// A hand-over is a HASH with the fields:
//
//	req  requester NIC          chg  JSON {role: new NIC}
//	st   creating, pending, approved (its requests being applied), ending
//	     (being declined, expired or cancelled), applied, ended, refused
//	end  declined, expired or cancelled, for a hand-over that ended so
//	c    created (ms)           x    expires (ms)
//	ch   the channel it was made through
//	apv  approvers              n    approvers who have not accepted yet
//	total  requests made        applied, failed  how many, once carried out
//	inf  the previous holders told of the applied changes
//	s:NIC c:NIC a:NIC r:NIC u:NIC t:NIC p:NIC  each approver, as for a
//	     request: the hand-over's one token per approver lives here
//
// Its requests are ordinary requests with "ho" naming it; their approvals
// and the approvers' events (sent, accepted, reminded...) are the
// hand-over's, read with them (Get). A decision, an expiry or a
// cancellation is written on the hand-over and queues a job in the outbox
// that carries it to each request, shard by shard (RunJob).

// luaHandover binds and reads a hand-over.
const luaHandover = `
local HK = {}
local function handover(i, id)
  R.id, R.k, R.h = id, KEYS[i], KEYS[i + 1]
  HK.l, HK.x, HK.o, HK.exp, HK.rem, HK.cre = KEYS[i + 2], KEYS[i + 3], KEYS[i + 4], KEYS[i + 5], KEYS[i + 6], KEYS[i + 7]
  outbox(i + 8)
end

local function loadH()
  F = hgetall(R.k)
  if F.st == nil then return 'unknown' end
  if tonumber(F.x) == nil or tonumber(F.n) == nil then return 'corrupt' end
  return nil
end

-- hoEnd ends a pending hand-over as st (declined, expired, cancelled):
-- its approvers are told (first[nic] before, for the one who declined),
-- and a job carries the end to each of its requests.
local function hoEnd(st, nic, ch, first)
  hset(R.k, 'st', 'ending', 'end', st)
  for _, a in ipairs(split(F.apv)) do
    if F['s:' .. a] == 'pending' then zrem(HK.rem, R.id .. ' ' .. a) end
    if (F['t:' .. a] or '') ~= '' or (F['p:' .. a] or '') ~= '' then hset(R.k, 't:' .. a, '', 'p:' .. a, '') end
    local kinds = {}
    if first and first[a] then kinds[1] = first[a] end
    kinds[#kinds + 1] = st
    mail({kinds = kinds, handover = R.id, nic = a})
  end
  zrem(HK.exp, R.id)
  mail({kinds = {'job'}, handover = R.id, op = st, nic = nic, channel = ch})
end

-- withJob adds to a script's reply the outbox id of the job it queued
-- (after commit), for the caller to carry it out itself.
local function withJob(out)
  for _, e in ipairs(OUT) do
    if e.kinds[1] == 'job' then out[#out + 1] = '_job'; out[#out + 1] = e.qid end
  end
  return out
end

-- batch binds the shard's tally and outbox of a batch script.
local function batch()
  R.stats = KEYS[1]
  outbox(2)
end

-- request i of a batch: its record, history and service.
local function nth(i, id)
  local b = 5 + 3 * (i - 1)
  bind(id, KEYS[b + 1], KEYS[b + 2], KEYS[b + 3])
end
`

// hoScript prepends luaLib and luaHandover to a script's body.
func hoScript(body string) *redis.Script { return script(luaHandover + body) }

// hoCreateScript records a hand-over being created: what was planned, so
// that a sweep finishes the creation if its daemon stops half-way.
//
// KEYS: handoverKeys. ARGV[3] id, [4] requester, [5] changes JSON, [6]
// approvers, [7] expires (ms), [8] channel, [9] the planned items, [10]
// the refused services, [11] when a sweep may finish it (ms).
// Returns {"ok"} or {"exists"}.
var hoCreateScript = hoScript(`
handover(1, ARGV[3])
if redis.call('EXISTS', R.k) == 1 then return {'exists'} end
local apv = split(ARGV[6])
F = {}
hset(R.k, 'req', ARGV[4], 'chg', ARGV[5], 'apv', ARGV[6], 'n', #apv, 'c', NOW, 'x', ARGV[7], 'st', 'creating',
  'ch', ARGV[8])
for _, a in ipairs(apv) do hset(R.k, 's:' .. a, 'pending', 'r:' .. a, '0') end
redis.call('SET', HK.l, ARGV[9])
redis.call('SET', HK.x, ARGV[10])
zadd(HK.cre, ARGV[11], R.id)
commit()
return {'ok'}
`)

// hoFinalizeScript ends a creation: the requests made and the services
// refused are kept, and the approvers get their validation email (one for
// the whole hand-over). With no request made the hand-over is refused.
//
// KEYS: handoverKeys. ARGV[3] id, [4] the items made, [5] the refused
// services, [6] number of requests made, [7] first reminder time (ms).
// Returns {"ok"}, {"refused"}, {"done", status} (already finalized),
// {"unknown"} or {"corrupt"}.
var hoFinalizeScript = hoScript(`
handover(1, ARGV[3])
local why = loadH()
if why then return {why} end
if F.st ~= 'creating' then return {'done', F.st} end
zrem(HK.cre, R.id)
redis.call('SET', HK.l, ARGV[4])
redis.call('SET', HK.x, ARGV[5])
if tonumber(ARGV[6]) == 0 then
  hset(R.k, 'st', 'refused', 'total', '0')
  commit()
  return {'refused'}
end
hset(R.k, 'st', 'pending', 'total', ARGV[6])
zadd(HK.exp, F.x, R.id)
for _, a in ipairs(split(F.apv)) do
  zadd(HK.rem, ARGV[7], R.id .. ' ' .. a)
  mail({kinds = {'validation'}, handover = R.id, nic = a})
end
commit()
return {'ok'}
`)

// hoDecideScript records an approver's decision on a hand-over, made with
// its token: a decline ends it, the last accept approves it; either
// queues the job that carries it to every request.
//
// KEYS: handoverKeys. ARGV[3] id, [4] nic, [5] the token's reference, [6]
// accept|decline, [7] channel. Returns {"unknown"}, {"corrupt"},
// {"gone"}, or {outcome, field, value, ...}: accepted, approved or
// declined, and the hand-over's fields as they stand, then "_job" and the
// outbox id of the job queued, if any.
var hoDecideScript = hoScript(`
handover(1, ARGV[3])
local nic, ref, ch = ARGV[4], ARGV[5], ARGV[7]
local why = loadH()
if why then return {why} end
if F.st ~= 'pending' then return {'gone'} end
if NOW >= tonumber(F.x) then
  hoEnd('expired', '', 'system')
  commit()
  return {'gone'}
end
if F['s:' .. nic] ~= 'pending' or not live(nic, ref) then return {'gone'} end
hset(R.k, 't:' .. nic, '', 'p:' .. nic, '')
zrem(HK.rem, R.id .. ' ' .. nic)
if ARGV[6] == 'decline' then
  hset(R.k, 's:' .. nic, 'declined', 'c:' .. nic, ch, 'a:' .. nic, NOW)
  hoEnd('declined', nic, ch, {[nic] = 'recorded'})
  commit()
  return withJob(result('declined'))
end
local n = tonumber(F.n) - 1
hset(R.k, 's:' .. nic, 'accepted', 'c:' .. nic, ch, 'a:' .. nic, NOW, 'n', n)
hist('accepted', nic, ch)
mail({kinds = {'recorded'}, handover = R.id, nic = nic})
if n > 0 then
  commit()
  return result('accepted')
end
hset(R.k, 'st', 'approved')
zrem(HK.exp, R.id)
mail({kinds = {'job'}, handover = R.id, op = 'apply'})
commit()
return withJob(result('approved'))
`)

// hoCancelScript ends a pending hand-over at its requester's demand.
//
// KEYS: handoverKeys. ARGV[3] id, [4] nic asking, [5] channel.
// Returns {"cancelled", "_job", job's outbox id}, {"unknown"},
// {"corrupt"}, {"forbidden"} or {"notpending", status}.
var hoCancelScript = hoScript(`
handover(1, ARGV[3])
local why = loadH()
if why then return {why} end
if F.req ~= ARGV[4] then return {'forbidden'} end
if F.st ~= 'pending' then return {'notpending', F['end'] or F.st} end
if NOW >= tonumber(F.x) then
  hoEnd('expired', '', 'system')
  commit()
  return {'notpending', 'expired'}
end
hoEnd('cancelled', ARGV[4], ARGV[5])
commit()
return withJob({'cancelled'})
`)

// hoExpireScript expires a hand-over whose time is up; any other is only
// taken off the expiry schedule.
//
// KEYS: handoverKeys. ARGV[3] id. Returns {"expired"}, {"pending"},
// {status} or {"unknown"}.
var hoExpireScript = hoScript(`
handover(1, ARGV[3])
local why = loadH()
if why then
  redis.call('ZREM', HK.exp, R.id)
  return {'unknown'}
end
if F.st ~= 'pending' then
  redis.call('ZREM', HK.exp, R.id)
  return {F.st}
end
if NOW < tonumber(F.x) then return {'pending'} end
hoEnd('expired', '', 'system')
commit()
return {'expired'}
`)

// hoRemindScript queues a reminder to an approver of a hand-over whose
// reminder is due (as remindScript for a request).
//
// KEYS: handoverKeys. ARGV[3] id, [4] nic, [5] max reminders, [6] remind
// after (ms). Returns {"reminded"}, {"notdue"} or {"skipped"}.
var hoRemindScript = hoScript(`
handover(1, ARGV[3])
local nic = ARGV[4]
local member = R.id .. ' ' .. nic
local due = redis.call('ZSCORE', HK.rem, member)
if not due or tonumber(due) > NOW then return {'notdue'} end
local why = loadH()
if not why and F.st == 'pending' and NOW < tonumber(F.x) and F['s:' .. nic] == 'pending'
  and F['u:' .. nic] ~= '1' and tonumber(F['r:' .. nic] or '0') < tonumber(ARGV[5]) then
  hset(R.k, 'r:' .. nic, tonumber(F['r:' .. nic] or '0') + 1)
  zadd(HK.rem, NOW + tonumber(ARGV[6]), member)
  mail({kinds = {'reminder'}, handover = R.id, nic = nic})
  commit()
  return {'reminded'}
end
redis.call('ZREM', HK.rem, member)
return {'skipped'}
`)

// hoResendScript queues a fresh email to one approver of a pending
// hand-over, or to every one who has not answered.
//
// KEYS: handoverKeys. ARGV[3] id, [4] nic or "", [5] remind after (ms).
// Returns {"ok", count}, {"unknown"}, {"corrupt"}, {"notpending", status},
// {"notapprover"} or {"answered"}.
var hoResendScript = hoScript(`
handover(1, ARGV[3])
local why = loadH()
if why then return {why} end
local only = ARGV[4]
if F.st ~= 'pending' then return {'notpending', F['end'] or F.st} end
if NOW >= tonumber(F.x) then
  hoEnd('expired', '', 'system')
  commit()
  return {'notpending', 'expired'}
end
return resendTo('handover', HK.rem, only, tonumber(ARGV[5]))
`)

// hoUndeliverableScript records that an email to an approver of a
// hand-over bounced: its reminders stop and the requester is told.
//
// KEYS: handoverKeys. ARGV[3] id, [4] nic. Returns {"ok"}, {"unknown"},
// {"corrupt"} or {"already"}.
var hoUndeliverableScript = hoScript(`
handover(1, ARGV[3])
local nic = ARGV[4]
local why = loadH()
if why then return {why} end
return undeliverableTo('handover', HK.rem, nic)
`)

// hoDisputeScript records a "this wasn't me" report on a hand-over, made
// with the report token of the informed email: the security contact is
// told and a job records the report on each of the reporter's requests.
//
// KEYS: handoverKeys, then [13] the token's record. ARGV[3] id, [4] nic,
// [5] channel. Returns {"unknown"}, {"gone"} or {"disputed"}.
var hoDisputeScript = hoScript(`
handover(1, ARGV[3])
local raw = redis.call('GET', KEYS[13])
local t = split(raw)
if t[1] ~= 'g' or t[2] ~= R.id or t[3] ~= ARGV[4] then return {'unknown'} end
if t[5] or NOW >= tonumber(t[4] or '0') then return {'gone'} end
if loadH() then return {'unknown'} end
redis.call('SET', KEYS[13], raw .. ' used', 'KEEPTTL')
mail({kinds = {'disputed'}, handover = R.id, nic = ARGV[4]})
mail({kinds = {'job'}, handover = R.id, op = 'dispute', nic = ARGV[4], channel = ARGV[5]})
commit()
return {'disputed'}
`)

// hoDoneScript ends the job that carried a decision to every request of a
// hand-over, checking the job's claim: the outcomes are kept and, for an
// approval, the approvers get one email for the requests applied and one
// for those that failed, and each previous holder one "informed" email
// for the services it held. The job leaves the outbox in the same step.
//
// KEYS: handoverKeys. ARGV[3] id, [4] the job's outbox id, [5] its claim,
// [6] the job's operation, [7] the outcomes, [8] requests applied, [9]
// requests failed, [10] the previous holders to tell.
// Returns {"ok"}, {"lost"} (the claim is another daemon's now),
// {"unknown"} or {"corrupt"}.
var hoDoneScript = hoScript(`
handover(1, ARGV[3])
if redis.call('HGET', OB.ob, ARGV[4] .. ':o') ~= ARGV[5] then return {'lost'} end
local why = loadH()
if why then return {why} end
local op = ARGV[6]
if op ~= 'dispute' then
  redis.call('SET', HK.o, ARGV[7])
  local applied, failed = tonumber(ARGV[8]), tonumber(ARGV[9])
  local st = 'ended'
  if op == 'apply' and failed == 0 then st = 'applied' end
  hset(R.k, 'st', st, 'applied', applied, 'failed', failed, 'inf', ARGV[10])
  if op == 'apply' then
    for _, a in ipairs(split(F.apv)) do
      local kinds = {}
      if applied > 0 then kinds[#kinds + 1] = 'applied' end
      if failed > 0 then kinds[#kinds + 1] = 'failed' end
      if #kinds > 0 then mail({kinds = kinds, handover = R.id, nic = a}) end
    end
    for _, n in ipairs(split(ARGV[10])) do mail({kinds = {'informed'}, handover = R.id, nic = n}) end
  end
end
zrem(OB.q, ARGV[4])
hdel(OB.ob, ARGV[4], ARGV[4] .. ':o')
commit()
return {'ok'}
`)

// hoCreateBatchScript makes requests of a hand-over on one shard, each
// checked as a request alone is (the service still has the holders the
// rules were checked against, no open request touches its roles) and
// written in the same step: a request is made whole or not at all. A
// request already made by an earlier run of the creation is left as it is.
//
// KEYS: batchKeys. ARGV[3] the hand-over's id, [4] number of requests,
// then a JSON object per request: {"id", "svc", "req", "x", "chg", "apv",
// "inf", "pay", "ch", "k", "from": {role: holder}}.
// Returns one status per request: "ok", "stale" or "conflict OTHER-ID".
var hoCreateBatchScript = hoScript(`
batch()
local specs = {}
for i = 1, tonumber(ARGV[4]) do
  local ok, a = pcall(cjson.decode, ARGV[4 + i])
  if not ok or type(a) ~= 'table' or type(a.from) ~= 'table' then return {'corrupt'} end
  specs[i] = a
end
-- Each request is written whole, at once: the buffer of luaLib would only
-- add work to writes that never overlap.
local out, made = {}, 0
for i, a in ipairs(specs) do
  nth(i, a.id)
  local st = 'ok'
  if redis.call('EXISTS', R.k) == 1 then
    if redis.call('HGET', R.k, 'ho') ~= ARGV[3] then st = 'stale' end
  else
    local s = svc()
    for role, from in pairs(a.from) do
      local o = split(s['o:' .. role])
      if s[role] ~= from then
        st = 'stale'
      elseif o[1] and o[1] ~= R.id and (o[2] == '0' or NOW < tonumber(o[2] or '0')) then
        st = 'conflict ' .. o[1]
      end
      if st ~= 'ok' then break end
    end
    if st == 'ok' then
      local apv = split(a.apv)
      local f = {'svc', a.svc, 'req', a.req, 'c', NOW, 'x', a.x, 'chg', a.chg, 'apv', a.apv, 'inf', a.inf,
        'pay', a.pay, 'n', #apv, 'k', a.k, 'ho', ARGV[3], 'st', 'pending'}
      for _, p in ipairs(apv) do
        f[#f + 1] = 's:' .. p; f[#f + 1] = 'pending'; f[#f + 1] = 'r:' .. p; f[#f + 1] = '0'
      end
      redis.call('HSET', R.k, unpack(f))
      redis.call('APPEND', R.h, NOW .. ' created ' .. a.req .. ' ' .. a.ch .. '\n')
      local o = {}
      for role, _ in pairs(a.from) do o[#o + 1] = 'o:' .. role; o[#o + 1] = R.id .. ' ' .. a.x end
      redis.call('HSET', R.svc, unpack(o))
      made = made + 1
    end
  end
  out[i] = st
end
if made > 0 then redis.call('HINCRBY', R.stats, 'pending', made) end
return out
`)

// hoApplyBatchScript approves and applies requests of an approved
// hand-over on one shard, each on its own service (see applyNow): one that
// can no longer be applied ends failed alone. A request no longer pending
// is left as it is.
//
// KEYS: batchKeys. ARGV[3] the hand-over's id, [4] the billing contacts
// behind with payments (space-separated), [5] number of requests, then
// their ids. Returns id, status, reason triplets.
var hoApplyBatchScript = hoScript(`
batch()
local overdue = {}
for _, w in ipairs(split(ARGV[4])) do overdue[w] = true end
local out = {}
for i = 1, tonumber(ARGV[5]) do
  local id = ARGV[5 + i]
  nth(i, id)
  local why = load(nil)
  if why then
    out[#out + 1] = id; out[#out + 1] = why; out[#out + 1] = ''
  elseif F.ho ~= ARGV[3] then
    out[#out + 1] = id; out[#out + 1] = 'foreign'; out[#out + 1] = ''
  else
    if F.st == 'pending' then
      approve()
      local pay = ''
      for _, p in ipairs(split(F.pay)) do
        if overdue[p] then pay = 'payment_overdue:' .. p; break end
      end
      applyNow(pay)
    end
    out[#out + 1] = id; out[#out + 1] = F.st; out[#out + 1] = F.why or ''
  end
end
commit()
return out
`)

// hoEndBatchScript ends the pending requests of a hand-over on one shard
// as the hand-over ended (declined, expired, cancelled).
//
// KEYS: batchKeys. ARGV[3] the hand-over's id, [4] status, [5] the NIC
// who ended it ("" for the system), [6] channel, [7] number of requests,
// then their ids. Returns id, status, reason triplets.
var hoEndBatchScript = hoScript(`
batch()
local out = {}
for i = 1, tonumber(ARGV[7]) do
  local id = ARGV[7 + i]
  nth(i, id)
  local why = load(nil)
  if why then
    out[#out + 1] = id; out[#out + 1] = why; out[#out + 1] = ''
  elseif F.ho ~= ARGV[3] then
    out[#out + 1] = id; out[#out + 1] = 'foreign'; out[#out + 1] = ''
  else
    if F.st == 'pending' then finish(ARGV[4], ARGV[5], ARGV[6], '') end
    out[#out + 1] = id; out[#out + 1] = F.st; out[#out + 1] = F.why or ''
  end
end
commit()
return out
`)

// hoDisputeBatchScript records a "this wasn't me" report on the applied
// requests of a hand-over, on one shard, where the reporter was told of
// the change: a disputed event in each one's history, and published.
//
// KEYS: batchKeys. ARGV[3] the hand-over's id, [4] the reporter's NIC,
// [5] channel, [6] number of requests, then their ids. Returns the ids
// disputed.
var hoDisputeBatchScript = hoScript(`
batch()
local out = {}
for i = 1, tonumber(ARGV[6]) do
  local id = ARGV[6 + i]
  nth(i, id)
  if not load(nil) and F.ho == ARGV[3] and F.st == 'applied' and has(F.inf, ARGV[4]) then
    hist('disputed', ARGV[4], ARGV[5])
    mail({kinds = {'event'}, request = id, event = 'disputed', snap = snapshot()})
    out[#out + 1] = id
  end
end
commit()
return out
`)
