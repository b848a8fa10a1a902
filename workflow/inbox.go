package workflow

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Received mail is acted on once, whatever crashes or daemons share the
// mailbox: each message is claimed by its ids (mailbox UIDVALIDITY and
// UID, and Message-ID) before anything is done, and the outcome is kept
// in the claim. A claim is a STRING per id (Keys.InboxClaim, the id
// hashed) holding one of:
//
//   - "w:OWNER:MS:F": the reader OWNER is working on the message; MS is
//     its last heartbeat. The reader renews MS while it works
//     (KeepAlive), so a claim whose MS is older than the lease belongs
//     to a reader that stopped: another takes it over at once.
//   - "k:OWNER:MS:F": an attempt ended without an outcome (the store
//     failed, or acting panicked) and kept the claim for the next one,
//     by any reader, at once.
//   - "OUTCOME:MS:OWNER": the message was acted on; a reader that finds it
//     only moves the message (after the lease when it is another reader's
//     recent outcome: that reader is moving it).
//
// F counts the attempts at the message that failed: that panicked, or
// whose reader stopped mid-way (a claim taken over after its lease). The
// count lives with the claim, so every reader and every restart adds to
// the same count; the inbox sets a message aside once it reaches three
// (a "poison" message). Values written by earlier versions ("w:OWNER:MS")
// read as F = 0.

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
	keys     []string
	failures int
	// vals holds the value of each key as last written, for the
	// heartbeat's compare-and-set; guarded by the claimer's mutex.
	vals []string
}

// Failures returns how many earlier attempts at the message failed.
func (cl *MessageClaim) Failures() int { return cl.failures }

// Claimed is what taking one message's claim gave.
type Claimed struct {
	State ClaimState
	// Claim is the claim now held (ClaimMine).
	Claim *MessageClaim
	// Outcome is the outcome an earlier attempt recorded (ClaimDone).
	Outcome string
}

// MessageClaimer claims received messages for one reader.
type MessageClaimer struct {
	s     *Store
	owner string
	lease time.Duration

	mu     sync.Mutex
	active map[*MessageClaim]struct{}
	byKey  map[string]*MessageClaim
}

// MessageClaimer returns the claimer of the reader named owner (letters
// and digits): a claim it works on holds other readers off for lease
// after each heartbeat (KeepAlive renews them every third of it).
func (s *Store) MessageClaimer(owner string, lease time.Duration) *MessageClaimer {
	return &MessageClaimer{s: s, owner: owner, lease: lease,
		active: map[*MessageClaim]struct{}{}, byKey: map[string]*MessageClaim{}}
}

// casScript replaces KEYS[1] by ARGV[2] only if it still holds ARGV[1]
// (ARGV[2] empty: deletes it), with a TTL of ARGV[3] seconds. Returns 1
// when it did. It touches one global key, so it is not a shard script.
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1`)

var claimTTL = int(InboxClaimTTL.Seconds())

func (c *MessageClaimer) key(id string) string { return c.s.keys.InboxClaim(id) }

func (c *MessageClaimer) now() time.Time { return c.s.opt.Now() }

// claimValue is a claim's value read.
type claimValue struct {
	state    byte // 'w' working, 'k' kept, 'd' done
	owner    string
	at       time.Time
	failures int
	outcome  string
}

func parseClaim(v string) claimValue {
	f := strings.Split(v, ":")
	num := func(i int) int64 {
		if i >= len(f) {
			return 0
		}
		n, _ := strconv.ParseInt(f[i], 10, 64)
		return n
	}
	switch f[0] {
	case "w", "k":
		return claimValue{state: f[0][0], owner: field(f, 1), at: time.UnixMilli(num(2)), failures: int(num(3))}
	}
	return claimValue{state: 'd', outcome: f[0], at: time.UnixMilli(num(1)), owner: field(f, 2)}
}

func field(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

func (c *MessageClaimer) value(state string, failures int) string {
	return state + ":" + c.owner + ":" + strconv.FormatInt(c.now().UnixMilli(), 10) + ":" + strconv.Itoa(failures)
}

// Take claims a batch of messages, each known by its ids (the first names
// this very copy of the message in its mailbox), in as few round trips as
// it can: one when nobody has seen them. A store error claims none of
// them.
func (c *MessageClaimer) Take(ctx context.Context, batch ...[]string) ([]Claimed, error) {
	fresh := c.value("w", 0)
	pipe := c.s.rdb.Pipeline()
	set := make([][]*redis.BoolCmd, len(batch))
	keys := make([][]string, len(batch))
	for i, ids := range batch {
		for _, id := range ids {
			keys[i] = append(keys[i], c.key(id))
			set[i] = append(set[i], pipe.SetNX(ctx, keys[i][len(keys[i])-1], fresh, InboxClaimTTL))
		}
	}
	_, err := pipe.Exec(ctx)
	t := &taking{c: c, keys: keys, set: set, fresh: fresh, out: make([]Claimed, len(batch))}
	if err == nil {
		err = t.inspect(ctx)
	}
	if err == nil {
		err = t.takeOver(ctx)
	}
	if err != nil {
		t.releaseAll(ctx)
		return nil, storeErr(err)
	}
	t.finish(ctx)
	return t.out, nil
}

// taking is one Take under way.
type taking struct {
	c *MessageClaimer
	// keys holds the claim keys of each message, in the order of its ids.
	keys  [][]string
	set   [][]*redis.BoolCmd
	fresh string
	out   []Claimed
	// over lists the keys to take over, with the value to write.
	over []takeover
	// failures is the highest count found for each message.
	failures []int
}

type takeover struct {
	msg      int
	key, old string
	new      string
	cmd      *redis.Cmd
}

// inspect reads the keys that were taken already and settles each
// message's state: busy or done as soon as one key says so, else mine,
// with the keys to take over.
func (t *taking) inspect(ctx context.Context) error {
	pipe := t.c.s.rdb.Pipeline()
	gets := make([][]*redis.StringCmd, len(t.keys))
	for i, keys := range t.keys {
		for k, key := range keys {
			if !t.set[i][k].Val() {
				gets[i] = append(gets[i], pipe.Get(ctx, key))
			} else {
				gets[i] = append(gets[i], nil)
			}
		}
	}
	if pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	t.failures = make([]int, len(t.keys))
	mine := map[string]bool{} // the keys this Take set
	for i := range t.keys {
		for _, k := range t.setKeys(i) {
			mine[k] = true
		}
	}
	now := t.c.now()
	for i, keys := range t.keys {
		t.out[i].State = ClaimMine
		for k, key := range keys {
			switch {
			case gets[i][k] == nil:
			case mine[key]: // a copy of the same message in this batch has it
				t.out[i].State = ClaimBusy
			default:
				t.judge(i, k, key, gets[i][k].Val(), now)
			}
		}
	}
	return nil
}

// judge settles one key found taken.
func (t *taking) judge(i, k int, key, v string, now time.Time) {
	out := &t.out[i]
	if out.State != ClaimMine {
		return
	}
	p := parseClaim(v)
	switch {
	case v == "": // gone since: read the message again later
		out.State = ClaimBusy
	case p.state == 'd':
		recent := p.owner != t.c.owner && now.Sub(p.at) < t.c.lease
		if k == 0 && recent {
			// Another reader acted on this very message a moment ago and
			// is moving it; moving it too could copy it twice.
			out.State = ClaimBusy
			return
		}
		out.State, out.Outcome = ClaimDone, p.outcome
	case p.state == 'k':
		t.over = append(t.over, takeover{msg: i, key: key, old: v})
		t.failures[i] = max(t.failures[i], p.failures)
	case p.owner == t.c.owner && !t.c.holds(key):
		// An attempt of this reader that ended without a word (its
		// outcome could not be recorded): not the message's fault.
		t.over = append(t.over, takeover{msg: i, key: key, old: v})
		t.failures[i] = max(t.failures[i], p.failures)
	case p.owner == t.c.owner || now.Sub(p.at) < t.c.lease:
		out.State = ClaimBusy
	default:
		// Its reader stopped while acting: that attempt failed.
		t.over = append(t.over, takeover{msg: i, key: key, old: v})
		t.failures[i] = max(t.failures[i], p.failures+1)
	}
}

// takeOver replaces the values of the keys to take over, each only if it
// still holds what was read; a message any of whose keys changed
// meanwhile is left for later (busy).
func (t *taking) takeOver(ctx context.Context) error {
	pipe := t.c.s.rdb.Pipeline()
	n := 0
	for j := range t.over {
		o := &t.over[j]
		if t.out[o.msg].State != ClaimMine {
			continue
		}
		o.new = t.c.value("w", t.failures[o.msg])
		o.cmd = casScript.Eval(ctx, pipe, []string{o.key}, o.old, o.new, claimTTL)
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for _, o := range t.over {
		if o.cmd != nil && o.cmd.Val() != int64(1) {
			t.out[o.msg].State = ClaimBusy
		}
	}
	return nil
}

// finish builds the claims of the messages that are the reader's, and
// hands back the keys set for the others.
func (t *taking) finish(ctx context.Context) {
	vals := map[string]string{}
	for _, o := range t.over {
		if o.cmd != nil {
			vals[o.key] = o.new
		}
	}
	var release []string
	for i, keys := range t.keys {
		if t.out[i].State != ClaimMine {
			release = append(release, t.setKeys(i)...)
			continue
		}
		cl := &MessageClaim{failures: t.failures[i]}
		for _, key := range keys {
			cl.keys = append(cl.keys, key)
			cl.vals = append(cl.vals, cmp.Or(vals[key], t.fresh))
		}
		t.out[i].Claim = cl
		t.c.hold(cl)
	}
	t.c.release(ctx, release, t.fresh)
}

// setKeys lists the keys of message i that this Take set.
func (t *taking) setKeys(i int) []string {
	var keys []string
	for k, key := range t.keys[i] {
		if t.set[i][k].Val() {
			keys = append(keys, key)
		}
	}
	return keys
}

func (t *taking) releaseAll(ctx context.Context) {
	var keys []string
	for i := range t.keys {
		keys = append(keys, t.setKeys(i)...)
	}
	t.c.release(ctx, keys, t.fresh)
}

// release deletes the keys that still hold v.
func (c *MessageClaimer) release(ctx context.Context, keys []string, v string) {
	if len(keys) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	pipe := c.s.rdb.Pipeline()
	for _, k := range keys {
		casScript.Eval(ctx, pipe, []string{k}, v, "", 0)
	}
	_, _ = pipe.Exec(ctx) // best effort: a key left goes stale after the lease
}

func (c *MessageClaimer) hold(cl *MessageClaim) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active[cl] = struct{}{}
	for _, k := range cl.keys {
		c.byKey[k] = cl
	}
}

func (c *MessageClaimer) drop(cl *MessageClaim) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.active, cl)
	for _, k := range cl.keys {
		if c.byKey[k] == cl {
			delete(c.byKey, k)
		}
	}
}

func (c *MessageClaimer) holds(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byKey[key] != nil
}

// Held returns how many claims the reader holds now.
func (c *MessageClaimer) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.active)
}

// Record stores the outcome of each claim in all its keys, in one round
// trip, and lets the claims go.
func (c *MessageClaimer) Record(ctx context.Context, claims []*MessageClaim, outcomes []string) error {
	pipe := c.s.rdb.Pipeline()
	at := strconv.FormatInt(c.now().UnixMilli(), 10)
	for i, cl := range claims {
		for _, k := range cl.keys {
			pipe.Set(ctx, k, outcomes[i]+":"+at+":"+c.owner, InboxClaimTTL)
		}
	}
	_, err := pipe.Exec(ctx)
	for _, cl := range claims {
		c.drop(cl)
	}
	return storeErr(err)
}

// Keep ends an attempt that could not finish (the store failed, or it
// panicked: failed is then true and counted) and leaves the claim to the
// next attempt, by any reader, at once.
func (c *MessageClaimer) Keep(ctx context.Context, cl *MessageClaim, failed bool) error {
	c.drop(cl)
	if failed {
		cl.failures++
	}
	v := c.value("k", cl.failures)
	pipe := c.s.rdb.Pipeline()
	for _, k := range cl.keys {
		pipe.Set(context.WithoutCancel(ctx), k, v, InboxClaimTTL)
	}
	_, err := pipe.Exec(context.WithoutCancel(ctx))
	return storeErr(err)
}

// KeepAlive renews the claims the reader works on every third of the
// lease until ctx ends, so that only the claims of a reader that stopped
// lapse.
func (c *MessageClaimer) KeepAlive(ctx context.Context) {
	t := time.NewTicker(max(c.lease/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.Renew(ctx)
		}
	}
}

// Renew pushes the heartbeat of every claim held to now, in one round
// trip. A claim another reader took over meanwhile (this reader was cut
// off from the store for longer than the lease) is left to it.
func (c *MessageClaimer) Renew(ctx context.Context) error {
	type renewal struct {
		cl       *MessageClaim
		i        int
		old, new string
		cmd      *redis.Cmd
	}
	var todo []renewal
	c.mu.Lock()
	for cl := range c.active {
		for i := range cl.keys {
			todo = append(todo, renewal{cl: cl, i: i, old: cl.vals[i], new: c.value("w", cl.failures)})
		}
	}
	c.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	pipe := c.s.rdb.Pipeline()
	for j := range todo {
		r := &todo[j]
		r.cmd = casScript.Eval(ctx, pipe, []string{r.cl.keys[r.i]}, r.old, r.new, claimTTL)
	}
	_, err := pipe.Exec(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range todo {
		if r.cmd.Val() == int64(1) {
			if _, ok := c.active[r.cl]; ok {
				r.cl.vals[r.i] = r.new
			}
		}
	}
	return storeErr(err)
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
