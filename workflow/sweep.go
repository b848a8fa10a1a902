package workflow

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"contactd/metrics"
)

// SweepResult counts what one sweep did.
type SweepResult struct {
	Expired  int `json:"expired"`
	Reminded int `json:"reminded"`
	Applied  int `json:"applied"`
	Failed   int `json:"failed"`
}

// Sweep does the work that falls due with time, in every shard: it expires
// requests whose time is up, queues the reminders that are due, and
// applies approved requests that were left behind (by a crash, say). It
// reads only the entries that are due, at most limit of each kind per
// shard, so its cost follows the work due, not the number of requests.
func (s *Store) Sweep(ctx context.Context, limit int64) (SweepResult, error) {
	var res SweepResult
	now := ms(s.opt.Now())
	due := &redis.ZRangeBy{Min: "-inf", Max: itoa(now), Count: limit}
	pipe := s.rdb.Pipeline()
	type shardDue struct{ expire, remind, apply *redis.StringSliceCmd }
	all := make([]shardDue, Shards)
	for n := 0; n < Shards; n++ {
		all[n] = shardDue{
			expire: pipe.ZRangeByScore(ctx, s.keys.DueExpire(n), due),
			remind: pipe.ZRangeByScore(ctx, s.keys.DueRemind(n), due),
			apply:  pipe.ZRangeByScore(ctx, s.keys.DueApply(n), due),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return res, storeErr(err)
	}
	for n, d := range all {
		for _, id := range d.apply.Val() {
			st, err := s.Apply(ctx, id)
			if err != nil {
				return res, err
			}
			switch st {
			case Applied:
				res.Applied++
			case Failed:
				res.Failed++
			}
		}
		for _, id := range d.expire.Val() {
			out, err := s.run(ctx, expireScript, n, []string{s.keys.Request(n, id)}, id)
			if err != nil {
				return res, err
			}
			if out[0] == string(Expired) {
				res.Expired++
				metrics.Transitions.WithLabelValues("expired").Inc()
			}
		}
		for _, member := range d.remind.Val() {
			id, nic, _ := strings.Cut(member, " ")
			out, err := s.run(ctx, remindScript, n, []string{s.keys.Request(n, id)}, id, nic,
				s.opt.MaxReminders, s.opt.RemindAfter.Milliseconds())
			if err != nil {
				return res, err
			}
			if out[0] == "reminded" {
				res.Reminded++
			}
		}
	}
	return res, nil
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func redisZ(score int64, member string) redis.Z {
	return redis.Z{Score: float64(score), Member: member}
}
