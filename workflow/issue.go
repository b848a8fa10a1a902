package workflow

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TokenAsk asks for the token an email about to be sent carries: an
// approver's validation token (validation, reminder and resend emails) or
// a "this wasn't me" token (informed emails). IssueTokens fills in Token
// and Status.
type TokenAsk struct {
	Entry *OutboxEntry
	// Report asks for a "this wasn't me" token.
	Report bool
	// Service is the service of the entry's request (unused for a
	// hand-over's entries).
	Service string
	// Token is the token issued; it is returned once and stored only as
	// its reference, which is also set as Entry.TokenRef.
	Token string
	// Status is "" when the token was issued, "gone" when the email is no
	// longer due (the request left pending, the approver answered) and
	// "lost" when the entry's claim was lost.
	Status string
}

// Most pending token references kept per approver: every attempt of an
// email keeps its token working until the email is recorded as accepted,
// but smtp.max_attempts bounds the attempts; this bounds the field
// whatever the configuration.
const maxPending = 16

// tokenScript issues tokens for claimed entries about to be sent, each
// checked to still hold its claim and to still be due.
//
// KEYS: the outbox, then per record (request or hand-over) the entries
// name, and the new tokens' records. ARGV[3] number of entries, then 9
// per entry: id, claim, nic, index in KEYS of its record, index in KEYS
// of the new token's record, that record's value, the token's type (v,
// h: an approver's token; r, g: a report token), how long the token
// record lives (ms; for an approver's token, beyond the record's
// expiry), and the token's reference. An
// approver's token is added to the approver's pending ones with the
// entry's id (see scripts.go); it works at once.
// Returns one status per entry: "ok", "gone" or "lost".
var tokenScript = script(`
outbox(1)
local n = tonumber(ARGV[3])
local want = {}
for i = 0, n - 1 do want[#want + 1] = ARGV[4 + 9 * i] .. ':o' end
local claims = redis.call('HMGET', OB.ob, unpack(want))
-- Each record is read once, with the fields of every approver named.
local recs, order = {}, {}
for i = 0, n - 1 do
  local a = 4 + 9 * i
  local ki, nic = tonumber(ARGV[a + 3]), ARGV[a + 2]
  local r = recs[ki]
  if not r then r = {fields = {'st', 'x', 'inf'}, seen = {}}; recs[ki] = r; order[#order + 1] = ki end
  if not r.seen[nic] then
    r.seen[nic] = true
    r.fields[#r.fields + 1] = 's:' .. nic
    r.fields[#r.fields + 1] = 'p:' .. nic
  end
end
for _, ki in ipairs(order) do
  local r = recs[ki]
  local v = redis.call('HMGET', KEYS[ki], unpack(r.fields))
  r.cur = {}
  for i, x in ipairs(r.fields) do r.cur[x] = v[i] end
end
local out = {}
for i = 0, n - 1 do
  local a = 4 + 9 * i
  local id, claim, nic, ki = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local tk, val, typ, life = KEYS[tonumber(ARGV[a + 4])], ARGV[a + 5], ARGV[a + 6], tonumber(ARGV[a + 7])
  local cur = recs[ki].cur
  local st = 'ok'
  if claims[i + 1] ~= claim then
    st = 'lost'
  elseif typ == 'v' or typ == 'h' then
    if cur.st ~= 'pending' or NOW >= tonumber(cur.x or '0') or cur['s:' .. nic] ~= 'pending' then
      st = 'gone'
    else
      redis.call('SET', tk, val, 'PX', tonumber(cur.x) - NOW + life)
      local p = split(cur['p:' .. nic])
      p[#p + 1] = id .. ':' .. ARGV[a + 8]
      while #p > ` + strconv.Itoa(maxPending) + ` do table.remove(p, 1) end
      cur['p:' .. nic] = table.concat(p, ' ')
      hset(KEYS[ki], 'p:' .. nic, cur['p:' .. nic])
    end
  elseif (cur.st == 'applied' or cur.st == 'ended') and has(cur.inf, nic) then
    redis.call('SET', tk, val, 'PX', life)
  else
    st = 'gone'
  end
  out[#out + 1] = st
end
commit()
return out
`)

// IssueTokens issues the tokens of claimed entries of one shard about to
// be sent, in one script.
func (s *Store) IssueTokens(ctx context.Context, shard int, asks []*TokenAsk) error {
	if len(asks) == 0 {
		return nil
	}
	base := len(s.outboxKeys(shard))
	var extra []string
	index := map[string]int{}
	args := []any{len(asks)}
	now := s.opt.Now()
	for _, a := range asks {
		e := a.Entry
		if e.Shard != shard {
			return fmt.Errorf("workflow: token for an entry of shard %d asked in shard %d", e.Shard, shard)
		}
		rec, _ := s.recordKeys(shard, e)
		if rec == "" {
			return fmt.Errorf("workflow: outbox entry %s names no request", e.Ref())
		}
		if _, ok := index[rec]; !ok {
			extra = append(extra, rec)
			index[rec] = base + len(extra)
		}
		a.Token = newToken(shard)
		typ, val, life := s.tokenRecord(a, now)
		extra = append(extra, s.keys.Token(shard, HashToken(a.Token)))
		args = append(args, e.ID, e.Claim, e.NIC, index[rec], base+len(extra), val, typ, life.Milliseconds(), HashToken(a.Token))
	}
	res, err := s.outboxScript(ctx, tokenScript, shard, extra, args...)
	if err != nil {
		return err
	}
	for i, a := range asks {
		a.Status = ""
		if i < len(res) && res[i] != "ok" {
			a.Status = res[i]
			a.Token = ""
			continue
		}
		a.Entry.TokenRef = HashToken(a.Token)
	}
	return nil
}

// tokenRecord is the type, value and lifetime of the record of the token
// a asks for (see Keys.Token).
func (s *Store) tokenRecord(a *TokenAsk, now time.Time) (string, string, time.Duration) {
	e := a.Entry
	if a.Report {
		until := strconv.FormatInt(ms(now.Add(s.opt.ReportWindow)), 10)
		if e.Handover != "" {
			return "g", "g " + e.Handover + " " + e.NIC + " " + until, s.opt.ReportWindow + s.opt.RequestTTL
		}
		return "r", "r " + e.Request + " " + e.NIC + " " + until, s.opt.ReportWindow + s.opt.RequestTTL
	}
	if e.Handover != "" {
		return "h", "h " + e.Handover + " " + e.NIC, s.opt.RequestTTL
	}
	return "v", "v " + e.Request + " " + e.NIC + " " + a.Service, s.opt.RequestTTL
}

// tokenRecord is what a token's record says (see Keys.Token).
type tokenRecord struct {
	// Type is v, h, r or g.
	Type string
	// ID is the request's or the hand-over's id.
	ID  string
	NIC string
	// Service is the request's service (v).
	Service string
	// Until is the end of a report token's window; Used is set once used.
	Until time.Time
	Used  bool
}

func parseTokenRecord(v string) (tokenRecord, bool) {
	f := strings.Fields(v)
	if len(f) < 3 || !ValidRequestID(f[1]) {
		return tokenRecord{}, false
	}
	t := tokenRecord{Type: f[0], ID: f[1], NIC: f[2]}
	switch t.Type {
	case "v":
		if len(f) != 4 {
			return tokenRecord{}, false
		}
		t.Service = f[3]
	case "h":
	case "r", "g":
		if len(f) < 4 {
			return tokenRecord{}, false
		}
		x, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return tokenRecord{}, false
		}
		t.Until, t.Used = fromMS(x), len(f) > 4 && f[4] == "used"
	default:
		return tokenRecord{}, false
	}
	return t, true
}
