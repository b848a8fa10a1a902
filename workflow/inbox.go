package workflow

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Received mail is acted on once, whatever crashes or daemons share the
// mailbox: each message is claimed by its ids (mailbox UIDVALIDITY and
// UID, and Message-ID) before anything is done, and the outcome is kept
// in the claim. A claim is a STRING per id (Keys.InboxClaim, the id
// hashed) holding either "w:OWNER:MS", a reader working on the message
// since MS, or "OUTCOME:MS:OWNER" once it has acted. A reader that finds
// an outcome only moves the message (after the lease when it is another
// reader's recent outcome, as that reader is moving it); one that finds a
// fresh "w:" value leaves the message to its owner; one that finds a
// stale "w:" value (its owner stopped between claiming and recording)
// takes it over and acts again, knowing an earlier attempt may have acted.

// InboxClaimTTL is how long a claim and its outcome are kept. A message is
// moved out of the mailbox right after it is acted on, so the claim only
// has to outlive a move that fails and is tried again; a message still in
// the mailbox after that (its move failed for two days) is read again,
// which is harmless: tokens are single-use and answers are throttled. It
// bounds what a flood of mail leaves in Redis to two days of keys.
const InboxClaimTTL = 48 * time.Hour

// ClaimState says what a reader may do with a message it claimed.
type ClaimState int

// The states of a claim.
const (
	ClaimMine ClaimState = iota // act on it
	ClaimDone                   // acted on already: move it
	ClaimBusy                   // another reader is on it: leave it
)

// MessageClaim is one message's claim once taken.
type MessageClaim struct {
	keys  []string
	value string
}

// MessageClaimer claims received messages for one reader.
type MessageClaimer struct {
	s     *Store
	owner string
	lease time.Duration
}

// MessageClaimer returns the claimer of the reader named owner: a claim it
// has not recorded an outcome for holds other readers off for lease.
func (s *Store) MessageClaimer(owner string, lease time.Duration) *MessageClaimer {
	return &MessageClaimer{s: s, owner: owner, lease: lease}
}

// casScript replaces KEYS[1] by ARGV[2] only if it still holds ARGV[1]
// (ARGV[2] empty: deletes it), with a TTL of ARGV[3] seconds. Returns 1
// when it did. It touches one global key, so it is not a shard script.
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1`)

func (c *MessageClaimer) key(id string) string { return c.s.keys.InboxClaim(id) }

func (c *MessageClaimer) now() time.Time { return c.s.opt.Now() }

// Take claims a message known by ids. It returns the claim (for
// ClaimMine), what the reader may do, the outcome recorded earlier (for
// ClaimDone), and whether an earlier attempt may have acted (a stale claim
// taken over). The common case, a message nobody has claimed, costs one
// round trip.
func (c *MessageClaimer) Take(ctx context.Context, ids []string) (*MessageClaim, ClaimState, string, bool, error) {
	cl := &MessageClaim{value: "w:" + c.owner + ":" + strconv.FormatInt(c.now().UnixMilli(), 10)}
	pipe := c.s.rdb.Pipeline()
	first := make([]*redis.BoolCmd, len(ids))
	for i, id := range ids {
		first[i] = pipe.SetNX(ctx, c.key(id), cl.value, InboxClaimTTL)
	}
	_, err := pipe.Exec(ctx)
	for i, id := range ids {
		if first[i].Val() {
			cl.keys = append(cl.keys, c.key(id))
		}
	}
	if err != nil {
		c.Release(ctx, cl)
		return nil, 0, "", false, storeErr(err)
	}
	retry := false
	for i, id := range ids {
		if first[i].Val() {
			continue
		}
		key := c.key(id)
		state, outcome, stale, err := c.takeKey(ctx, key, cl.value)
		if i == 0 && state == ClaimDone && stale {
			// Another reader acted on this very message a moment ago and
			// is moving it; moving it too could copy it twice.
			state = ClaimBusy
		}
		if err != nil || state != ClaimMine {
			c.Release(ctx, cl)
			return nil, state, outcome, false, err
		}
		cl.keys = append(cl.keys, key)
		retry = retry || stale
	}
	return cl, ClaimMine, "", retry, nil
}

// takeKey takes one key. Its third result is, for ClaimMine, that a stale
// claim was taken over, and for ClaimDone, that the outcome is recent.
func (c *MessageClaimer) takeKey(ctx context.Context, key, mine string) (ClaimState, string, bool, error) {
	rdb := c.s.rdb
	for range 3 {
		ok, err := rdb.SetNX(ctx, key, mine, InboxClaimTTL).Result()
		if err != nil {
			return 0, "", false, storeErr(err)
		}
		if ok {
			return ClaimMine, "", false, nil
		}
		v, err := rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			continue
		} else if err != nil {
			return 0, "", false, storeErr(err)
		}
		if !strings.HasPrefix(v, "w:") {
			o, rest, _ := strings.Cut(v, ":")
			ms, owner, _ := strings.Cut(rest, ":")
			recorded, _ := strconv.ParseInt(ms, 10, 64)
			recent := owner != c.owner && c.now().Sub(time.UnixMilli(recorded)) < c.lease
			return ClaimDone, o, recent, nil
		}
		if c.now().Sub(workingSince(v)) < c.lease {
			return ClaimBusy, "", false, nil
		}
		n, err := casScript.Run(ctx, rdb, []string{key}, v, mine, int(InboxClaimTTL.Seconds())).Int()
		if err != nil {
			return 0, "", false, storeErr(err)
		}
		if n == 1 {
			return ClaimMine, "", true, nil
		}
	}
	return ClaimBusy, "", false, nil
}

// workingSince reads the time of a "w:OWNER:MS" value.
func workingSince(v string) time.Time {
	ms, _ := strconv.ParseInt(v[strings.LastIndexByte(v, ':')+1:], 10, 64)
	return time.UnixMilli(ms)
}

// Record stores the outcome in every key of the claim.
func (c *MessageClaimer) Record(ctx context.Context, cl *MessageClaim, outcome string) error {
	pipe := c.s.rdb.Pipeline()
	for _, k := range cl.keys {
		pipe.Set(ctx, k, outcome+":"+strconv.FormatInt(c.now().UnixMilli(), 10)+":"+c.owner, InboxClaimTTL)
	}
	_, err := pipe.Exec(ctx)
	return storeErr(err)
}

// Release gives up a claim that did not act, so the message is read again.
func (c *MessageClaimer) Release(ctx context.Context, cl *MessageClaim) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range cl.keys {
		_ = casScript.Run(ctx, c.s.rdb, []string{k}, cl.value, "", 0).Err()
	}
}

// ThrottleAnswer reports whether address may be sent an answer now, at
// most one per every: the first call in a window returns true. Unthrottle
// undoes it when the answer could not be queued.
func (s *Store) ThrottleAnswer(ctx context.Context, address, reason string, every time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.keys.NotUnderstood(address), reason, every).Result()
	return ok, storeErr(err)
}

// Unthrottle forgets that address was answered (see ThrottleAnswer).
func (s *Store) Unthrottle(ctx context.Context, address string) {
	_ = s.rdb.Del(context.WithoutCancel(ctx), s.keys.NotUnderstood(address)).Err()
}

// Ping tells whether the store answers.
func (s *Store) Ping(ctx context.Context) error { return storeErr(s.rdb.Ping(ctx).Err()) }
