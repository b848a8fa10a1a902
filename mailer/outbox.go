package mailer

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"contactd/workflow"

	"github.com/redis/go-redis/v9"
)

// The outbox of each shard is three structures the workflow writes and the
// mailer moves entries between (names in workflow/keys.go):
//
//	outbox          HASH  id -> entry JSON (a workflow.Message, plus the
//	                      delivery fields of entry once tried)
//	outbox:ready    ZSET  id by the time it may be sent (ms)
//	outbox:claimed  ZSET  id by the time its claim lapses (ms)
//	outbox:dead     ZSET  id by the time it was given up (ms)
//
// An id is in exactly one of the three sets; its JSON stays in the hash
// until it is sent (or, dead, for ever, to be inspected). Every move is one
// script on the shard's slot.

// claimScript first hands back to ready every claim whose lease has lapsed
// (its daemon died mid-send), then moves up to ARGV[3] due ids from ready
// to claimed with the lease expiry ARGV[2] as score.
//
// KEYS[1] ready, KEYS[2] claimed, KEYS[3] outbox.
// ARGV[1] now (ms), ARGV[2] lease expiry (ms), ARGV[3] most ids to claim.
// Returns {next, id1, json1, id2, json2, ...}: next is the score of the
// earliest entry still in ready ("" when empty).
var claimScript = redis.NewScript(`
local now = tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], now, id)
end
local out = {''}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  redis.call('ZREM', KEYS[1], id)
  local body = redis.call('HGET', KEYS[3], id)
  if body then
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    out[#out + 1] = id
    out[#out + 1] = body
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then out[1] = first[2] end
return out
`)

// ackScript forgets a delivered entry.
//
// KEYS[1] claimed, KEYS[2] outbox, KEYS[3] ready. ARGV[1] id.
var ackScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`)

// retryScript puts a claimed entry back in ready at ARGV[2] with its
// updated JSON, unless the claim was lost meanwhile (then another worker
// owns it and nothing is written).
//
// KEYS[1] claimed, KEYS[2] ready, KEYS[3] outbox. ARGV[1] id, ARGV[2] when
// (ms), ARGV[3] JSON. Returns 1 when moved, 0 when the claim was lost.
var retryScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`)

// deadScript gives up on a claimed entry, keeping its JSON.
//
// KEYS[1] claimed, KEYS[2] dead, KEYS[3] outbox. ARGV[1] id, ARGV[2] now
// (ms), ARGV[3] JSON. Returns 1, or 0 when the claim was lost.
var deadScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`)

// releaseScript hands a claimed entry back untouched (at shutdown).
//
// KEYS[1] claimed, KEYS[2] ready. ARGV[1] id, ARGV[2] now (ms).
var releaseScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`)

// entry is an outbox message as the mailer handles it: the workflow's
// message and what delivery has learnt so far, written back on retry.
type entry struct {
	workflow.Message
	// Attempts counts the deliveries tried.
	Attempts int `json:"attempts,omitempty"`
	// LastError is the last failure, for whoever inspects a dead entry.
	LastError string `json:"last_error,omitempty"`
	// Published is set once an event is on the Redis stream, so that a
	// retry of its webhook does not append it twice.
	Published bool `json:"published,omitempty"`

	shard int
	id    string
}

// ref names the entry in logs: shard and id.
func (e *entry) ref() string { return strconv.Itoa(e.shard) + "/" + e.id }

func (e *entry) json() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// outbox moves entries of one store's outbox.
type outbox struct {
	rdb  redis.UniversalClient
	keys workflow.Keys
}

// claim takes up to limit due entries of a shard. It returns them and the
// time (ms) the next entry of the shard falls due, or -1 when none waits.
func (o outbox) claim(ctx context.Context, shard int, now, lease int64, limit int) ([]*entry, int64, error) {
	k := o.keys
	res, err := claimScript.Run(ctx, o.rdb, []string{k.OutboxReady(shard), k.OutboxClaimed(shard), k.Outbox(shard)},
		now, now+lease, limit).StringSlice()
	if err != nil {
		return nil, 0, err
	}
	next := int64(-1)
	if res[0] != "" {
		f, _ := strconv.ParseFloat(res[0], 64)
		next = int64(f)
	}
	var out []*entry
	for i := 1; i+1 < len(res); i += 2 {
		e := &entry{shard: shard, id: res[i]}
		if err := json.Unmarshal([]byte(res[i+1]), e); err != nil {
			e.Kind = "" // unreadable: handled as a permanent failure
			e.LastError = "unreadable entry: " + err.Error()
		}
		out = append(out, e)
	}
	return out, next, nil
}

func (o outbox) ack(ctx context.Context, e *entry) error {
	k := o.keys
	return ackScript.Run(ctx, o.rdb, []string{k.OutboxClaimed(e.shard), k.Outbox(e.shard), k.OutboxReady(e.shard)}, e.id).Err()
}

func (o outbox) retry(ctx context.Context, e *entry, when int64) error {
	k := o.keys
	return retryScript.Run(ctx, o.rdb, []string{k.OutboxClaimed(e.shard), k.OutboxReady(e.shard), k.Outbox(e.shard)},
		e.id, when, e.json()).Err()
}

func (o outbox) dead(ctx context.Context, e *entry, now int64) error {
	k := o.keys
	return deadScript.Run(ctx, o.rdb, []string{k.OutboxClaimed(e.shard), k.OutboxDead(e.shard), k.Outbox(e.shard)},
		e.id, now, e.json()).Err()
}

func (o outbox) release(ctx context.Context, e *entry, now int64) error {
	k := o.keys
	return releaseScript.Run(ctx, o.rdb, []string{k.OutboxClaimed(e.shard), k.OutboxReady(e.shard)}, e.id, now).Err()
}

// scan looks at every shard in one round trip. It returns the shards
// holding due entries or lapsed claims, and the earliest time (ms) a
// not-yet-due entry falls due (-1 when none waits).
func (o outbox) scan(ctx context.Context, now int64) ([]int, int64, error) {
	pipe := o.rdb.Pipeline()
	due := make([]*redis.StringSliceCmd, workflow.Shards)
	lapsed := make([]*redis.StringSliceCmd, workflow.Shards)
	first := make([]*redis.ZSliceCmd, workflow.Shards)
	upTo := &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now, 10), Count: 1}
	for n := 0; n < workflow.Shards; n++ {
		due[n] = pipe.ZRangeByScore(ctx, o.keys.OutboxReady(n), upTo)
		lapsed[n] = pipe.ZRangeByScore(ctx, o.keys.OutboxClaimed(n), upTo)
		first[n] = pipe.ZRangeWithScores(ctx, o.keys.OutboxReady(n), 0, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, err
	}
	var shards []int
	next := int64(-1)
	for n := 0; n < workflow.Shards; n++ {
		if len(due[n].Val()) > 0 || len(lapsed[n].Val()) > 0 {
			shards = append(shards, n)
		}
		if z := first[n].Val(); len(z) > 0 && (next < 0 || int64(z[0].Score) < next) {
			next = int64(z[0].Score)
		}
	}
	return shards, next, nil
}

// ackSent records a sent email's Message-ID (HASH fields with a TTL) and
// forgets its entry, in one round trip.
func (o outbox) ackSent(ctx context.Context, e *entry, msgKey string, fields map[string]any, ttl time.Duration) error {
	k := o.keys
	keys := []string{k.OutboxClaimed(e.shard), k.Outbox(e.shard), k.OutboxReady(e.shard)}
	pipe := o.rdb.Pipeline()
	if msgKey != "" {
		pipe.HSet(ctx, msgKey, fields)
		pipe.Expire(ctx, msgKey, ttl)
	}
	ackScript.EvalSha(ctx, pipe, keys, e.id)
	_, err := pipe.Exec(ctx)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		return ackScript.Run(ctx, o.rdb, keys, e.id).Err()
	}
	return err
}

// deadCount sums the dead sets of every shard.
func (o outbox) deadCount(ctx context.Context) (int64, error) {
	pipe := o.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, workflow.Shards)
	for n := range cmds {
		cmds[n] = pipe.ZCard(ctx, o.keys.OutboxDead(n))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	var total int64
	for _, c := range cmds {
		total += c.Val()
	}
	return total, nil
}
