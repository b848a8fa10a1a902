package workflow

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SweepResult counts what one sweep did.
type SweepResult struct {
	Expired  int `json:"expired"`
	Reminded int `json:"reminded"`
	Applied  int `json:"applied"`
	Failed   int `json:"failed"`
	// Quarantined counts the due entries set aside because they could not
	// be handled (see Keys.Quarantine); Errors the items left for the next
	// sweep after a failure; Purged the dead outbox entries forgotten.
	Quarantined int `json:"quarantined"`
	Errors      int `json:"errors"`
	Purged      int `json:"purged"`
}

// Sweep does the work that falls due with time, in every shard: it
// applies approved requests that were left behind (by a crash, say),
// expires requests whose time is up, queues the reminders that are due,
// and forgets dead outbox entries older than DeadRetention. It reads only
// the entries that are due, at most limit of each kind per shard, so its
// cost follows the work due, not the number of requests.
//
// Each item is handled on its own and every step is idempotent, so sweeps
// that overlap do each thing once. An item that cannot be handled (a due
// entry naming no request) is logged and quarantined; an item that fails
// is logged and left for the next sweep; either way the sweep goes on with
// the other items and shards. Only a store that cannot be reached ends it
// early, with an error.
func (s *Store) Sweep(ctx context.Context, limit int64) (SweepResult, error) {
	var res SweepResult
	now := ms(s.opt.Now())
	due := &redis.ZRangeBy{Min: "-inf", Max: itoa(now), Count: limit}
	pipe := s.rdb.Pipeline()
	type shardIDs struct{ expire, remind, apply, hoExpire, hoRemind, hoCreate *redis.StringSliceCmd }
	all := make([]shardIDs, Shards)
	dead := make([]*redis.ZSliceCmd, Shards)
	for n := 0; n < Shards; n++ {
		all[n] = shardIDs{
			expire: pipe.ZRangeByScore(ctx, s.keys.DueExpire(n), due),
			remind: pipe.ZRangeByScore(ctx, s.keys.DueRemind(n), due),
			apply:  pipe.ZRangeByScore(ctx, s.keys.DueApply(n), due),

			hoExpire: pipe.ZRangeByScore(ctx, s.keys.DueHandoverExpire(n), due),
			hoRemind: pipe.ZRangeByScore(ctx, s.keys.DueHandoverRemind(n), due),
			hoCreate: pipe.ZRangeByScore(ctx, s.keys.DueHandoverCreate(n), due),
		}
		dead[n] = pipe.ZRangeWithScores(ctx, s.keys.OutboxDead(n), 0, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return res, storeErr(err)
	}
	cutoff := now - DeadRetention.Milliseconds()
	for n, d := range all {
		for _, id := range d.apply.Val() {
			if err := s.sweepApply(ctx, n, id, &res); ErrorCode(err) == EUnavailable {
				return res, err
			}
		}
		for _, id := range d.expire.Val() {
			if err := s.sweepExpire(ctx, n, id, &res); ErrorCode(err) == EUnavailable {
				return res, err
			}
		}
		for _, member := range d.remind.Val() {
			if err := s.sweepRemind(ctx, n, member, &res); ErrorCode(err) == EUnavailable {
				return res, err
			}
		}
		if err := s.sweepHandovers(ctx, n, d.hoExpire.Val(), d.hoRemind.Val(), d.hoCreate.Val(), &res); err != nil {
			return res, err
		}
		if z := dead[n].Val(); len(z) > 0 && int64(z[0].Score) < cutoff {
			out, err := s.outboxScript(ctx, purgeDeadScript, n, nil, cutoff)
			if err != nil {
				return res, err
			}
			k, _ := strconv.Atoi(out[0])
			res.Purged += k
		}
	}
	return res, nil
}

// sweepApply applies one approved request found due.
func (s *Store) sweepApply(ctx context.Context, shard int, id string, res *SweepResult) error {
	st, err := s.Apply(ctx, id)
	switch {
	case ErrorCode(err) == ENotFound:
		return s.quarantine(ctx, shard, s.keys.DueApply(shard), id, err, res)
	case err != nil:
		return s.itemFailed("apply", id, err, res)
	case st == Applied:
		res.Applied++
	case st == Failed:
		res.Failed++
	}
	return nil
}

// sweepExpire expires one request found due.
func (s *Store) sweepExpire(ctx context.Context, shard int, id string, res *SweepResult) error {
	if !ValidRequestID(id) {
		return s.quarantine(ctx, shard, s.keys.DueExpire(shard), id, fmt.Errorf("not a request id"), res)
	}
	out, err := s.requestScript(ctx, expireScript, id, nil)
	if ErrorCode(err) == ENotFound {
		return s.quarantine(ctx, shard, s.keys.DueExpire(shard), id, err, res)
	}
	if err != nil {
		return s.itemFailed("expire", id, err, res)
	}
	if out[0] == string(Expired) {
		res.Expired++
		s.opt.Metrics.Transitions.WithLabelValues("expired").Inc()
	}
	return nil
}

// sweepRemind queues one reminder found due.
func (s *Store) sweepRemind(ctx context.Context, shard int, member string, res *SweepResult) error {
	id, nic, _ := strings.Cut(member, " ")
	if !ValidRequestID(id) || nic == "" {
		return s.quarantine(ctx, shard, s.keys.DueRemind(shard), member, fmt.Errorf("not a reminder"), res)
	}
	out, err := s.requestScript(ctx, remindScript, id, nil, nic, s.opt.MaxReminders, s.opt.RemindAfter.Milliseconds())
	if ErrorCode(err) == ENotFound {
		return s.quarantine(ctx, shard, s.keys.DueRemind(shard), member, err, res)
	}
	if err != nil {
		return s.itemFailed("remind", member, err, res)
	}
	if out[0] == "reminded" {
		res.Reminded++
	}
	return nil
}

// quarantineScript moves a member of a due set to the quarantine.
//
// KEYS[1] the due set, [2] the quarantine. ARGV[3] member, [4] what the
// quarantine records.
var quarantineScript = script(`
if redis.call('ZREM', KEYS[1], ARGV[3]) == 1 then
  redis.call('ZADD', KEYS[2], NOW, ARGV[4])
end
return {'ok'}
`)

// quarantine sets aside a due item that can never be handled, so that it
// stops coming back, and logs it.
func (s *Store) quarantine(ctx context.Context, shard int, set, member string, why error, res *SweepResult) error {
	s.opt.Logger.Error("sweep: item set aside (quarantined)", "set", set, "item", clip(member), "err", why)
	if _, err := s.run(ctx, quarantineScript, []string{set, s.keys.Quarantine(shard)}, "", member, set+" "+member); err != nil {
		return s.itemFailed("quarantine", member, err, res)
	}
	res.Quarantined++
	return nil
}

// itemFailed logs an item the sweep leaves for its next run.
func (s *Store) itemFailed(step, item string, err error, res *SweepResult) error {
	res.Errors++
	s.opt.Logger.Warn("sweep: item left for the next sweep", "step", step, "item", clip(item), "err", err)
	return err
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
