package inbox

import (
	"context"
	"strconv"
	"strings"
	"time"

	"contactd/workflow"

	"github.com/redis/go-redis/v9"
)

// A claim is a STRING per message id (Keys.InboxClaim) holding either
// "w:OWNER:MS", a daemon working on the message since MS, or
// "OUTCOME:MS:OWNER" once it has acted. A worker that finds an outcome
// only moves the message (after the lease when the outcome is that of
// this very message, recorded by another worker that is moving it); one that finds a fresh "w:" value leaves the message for its
// owner; one that finds a stale "w:" value (its owner stopped between
// claiming and recording) takes it over and acts again, knowing an
// earlier attempt may have acted.
type claimer struct {
	rdb   redis.UniversalClient
	keys  workflow.Keys
	owner string
	now   func() time.Time
	// lease is how long a "w:" value holds off other workers; ttl is how
	// long an outcome is remembered.
	lease, ttl time.Duration
}

type claimState int

const (
	claimMine claimState = iota // act on it
	claimDone                   // acted on already: move it
	claimBusy                   // another worker is on it: leave it
)

// claim is one message's claim once taken.
type claim struct {
	keys  []string
	value string
}

// casScript replaces KEYS[1] by ARGV[2] only if it still holds ARGV[1]
// (ARGV[2] empty: deletes it), with a TTL of ARGV[3] seconds. Returns 1
// when it did.
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1`)

// take claims a message known by ids (UIDVALIDITY/UID, Message-ID). The
// common case, a message nobody has claimed, costs one round trip.
func (c *claimer) take(ctx context.Context, ids []string) (*claim, claimState, Outcome, bool, error) {
	cl := &claim{value: "w:" + c.owner + ":" + strconv.FormatInt(c.now().UnixMilli(), 10)}
	pipe := c.rdb.Pipeline()
	first := make([]*redis.BoolCmd, len(ids))
	for i, id := range ids {
		first[i] = pipe.SetNX(ctx, c.keys.InboxClaim(id), cl.value, c.ttl)
	}
	_, err := pipe.Exec(ctx)
	for i, id := range ids {
		if first[i].Val() {
			cl.keys = append(cl.keys, c.keys.InboxClaim(id))
		}
	}
	if err != nil {
		c.release(ctx, cl)
		return nil, 0, "", false, unavailable(err)
	}
	retry := false
	for i, id := range ids {
		key := c.keys.InboxClaim(id)
		if first[i].Val() {
			continue
		}
		state, outcome, stale, err := c.takeKey(ctx, key, cl.value)
		if i == 0 && state == claimDone && stale {
			// Another reader acted on this very message a moment ago and
			// is moving it; moving it too could copy it twice.
			state = claimBusy
		}
		if err != nil || state != claimMine {
			c.release(ctx, cl)
			return nil, state, outcome, false, err
		}
		cl.keys = append(cl.keys, key)
		retry = retry || stale
	}
	return cl, claimMine, "", retry, nil
}

// takeKey takes one key. Its third result is, for claimMine, that a stale
// claim was taken over, and for claimDone, that the outcome is recent.
func (c *claimer) takeKey(ctx context.Context, key, mine string) (claimState, Outcome, bool, error) {
	for range 3 {
		ok, err := c.rdb.SetNX(ctx, key, mine, c.ttl).Result()
		if err != nil {
			return 0, "", false, unavailable(err)
		}
		if ok {
			return claimMine, "", false, nil
		}
		v, err := c.rdb.Get(ctx, key).Result()
		if err == redis.Nil {
			continue
		} else if err != nil {
			return 0, "", false, unavailable(err)
		}
		if !strings.HasPrefix(v, "w:") {
			// "OUTCOME:MS:OWNER": recent tells whether another worker
			// recorded it within the lease (and so is moving it).
			o, rest, _ := strings.Cut(v, ":")
			ms, owner, _ := strings.Cut(rest, ":")
			recorded, _ := strconv.ParseInt(ms, 10, 64)
			recent := owner != c.owner && c.now().Sub(time.UnixMilli(recorded)) < c.lease
			return claimDone, Outcome(o), recent, nil
		}
		if c.now().Sub(workingSince(v)) < c.lease {
			return claimBusy, "", false, nil
		}
		n, err := casScript.Run(ctx, c.rdb, []string{key}, v, mine, int(c.ttl.Seconds())).Int()
		if err != nil {
			return 0, "", false, unavailable(err)
		}
		if n == 1 {
			return claimMine, "", true, nil
		}
	}
	return claimBusy, "", false, nil
}

// workingSince reads the time of a "w:OWNER:MS" value.
func workingSince(v string) time.Time {
	ms, _ := strconv.ParseInt(v[strings.LastIndexByte(v, ':')+1:], 10, 64)
	return time.UnixMilli(ms)
}

// record stores the outcome in every key of the claim.
func (c *claimer) record(ctx context.Context, cl *claim, o Outcome) error {
	pipe := c.rdb.Pipeline()
	for _, k := range cl.keys {
		pipe.Set(ctx, k, string(o)+":"+strconv.FormatInt(c.now().UnixMilli(), 10)+":"+c.owner, c.ttl)
	}
	_, err := pipe.Exec(ctx)
	return unavailable(err)
}

// release gives up a claim that did not act, so the message is read again.
func (c *claimer) release(ctx context.Context, cl *claim) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range cl.keys {
		_ = casScript.Run(ctx, c.rdb, []string{k}, cl.value, "", 0).Err()
	}
}
