package workflow

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Upgrading from the version whose outbox kept one entry per email, whose
// tokens were hashes of their own and whose sent emails had records of
// their own: MigrateRequests converts what that version left in Redis so
// that the requests it holds go on, their links and codes working. It is
// run once, with every daemon stopped (docs/operations.md, "Upgrading"),
// and running it again does nothing more.
//
// In each shard it converts:
//   - the outbox (outbox, outbox:ready, outbox:claimed, outbox:dead,
//     outbox:seq): each entry, one email, becomes an entry of one kind,
//     ready again if it was claimed;
//   - the tokens (tok:HASH, a HASH): each becomes a token record named by
//     its reference, which is the first half of the old hash;
//   - the requests' token fields (t:NIC, p:NIC), which named old hashes;
//   - the open roles of each service (open:ID, a HASH) into the service's
//     hash (o:ROLE).
//
// The records of sent emails (msg:HASH) are dropped: they cannot name a
// token's reference. A reply quoting such an email's Message-ID alone
// (without its token in the subject or body) is then not recognised.

// MigrateResult counts what MigrateRequests converted.
type MigrateResult struct {
	Entries       int `json:"outbox_entries"`
	Tokens        int `json:"tokens"`
	Requests      int `json:"requests"`
	OpenRoles     int `json:"open_roles"`
	DroppedRecord int `json:"sent_records_dropped"`
}

// The suffixes of the previous layout's per-shard keys.
const (
	oldOutbox        = "outbox"
	oldOutboxReady   = "outbox:ready"
	oldOutboxClaimed = "outbox:claimed"
	oldOutboxDead    = "outbox:dead"
	oldOutboxSeq     = "outbox:seq"
	oldToken         = "tok:"
	oldOpen          = "open:"
	oldSent          = "msg:"
)

// MigrateRequests converts what the previous layout left in Redis (see
// above).
func (s *Store) MigrateRequests(ctx context.Context) (MigrateResult, error) {
	var res MigrateResult
	for n := 0; n < Shards; n++ {
		if err := s.migrateOutbox(ctx, n, &res); err != nil {
			return res, err
		}
	}
	steps := []struct {
		sfx string
		f   func(context.Context, []string, *MigrateResult) error
	}{{oldToken, s.migrateTokens}, {sfxRequest, s.migrateRequests}, {oldOpen, s.migrateOpen}, {oldSent, s.dropSent}}
	for _, st := range steps {
		err := s.scanEach(ctx, globQuote(s.keys.Prefix)+":{s*}:"+st.sfx+"*", func(keys []string) error {
			return st.f(ctx, keys, &res)
		})
		if err != nil {
			return res, storeErr(err)
		}
	}
	return res, nil
}

// migrateOutbox moves a shard's entries into the new outbox.
func (s *Store) migrateOutbox(ctx context.Context, n int, res *MigrateResult) error {
	p := s.keys.Shard(n)
	entries, err := s.rdb.HGetAll(ctx, p+oldOutbox).Result()
	if err != nil {
		return storeErr(err)
	}
	if len(entries) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	ready := pipe.ZRangeWithScores(ctx, p+oldOutboxReady, 0, -1)
	dead := pipe.ZRangeWithScores(ctx, p+oldOutboxDead, 0, -1)
	seq := pipe.Get(ctx, p+oldOutboxSeq)
	if err := execReads(ctx, pipe); err != nil {
		return err
	}
	score := map[string]float64{}
	for _, z := range ready.Val() {
		score[fmt.Sprint(z.Member)] = z.Score
	}
	isDead := map[string]float64{}
	for _, z := range dead.Val() {
		isDead[fmt.Sprint(z.Member)] = z.Score
	}
	now := float64(ms(s.opt.Now()))
	w := s.rdb.TxPipeline()
	for id, body := range entries {
		var m map[string]any
		if json.Unmarshal([]byte(body), &m) != nil {
			continue
		}
		if k, ok := m["kind"].(string); ok {
			m["kinds"] = []string{k}
			delete(m, "kind")
		}
		b, _ := json.Marshal(m)
		w.HSet(ctx, s.keys.Outbox(n), id, string(b))
		switch {
		case isDead[id] != 0:
			w.ZAdd(ctx, s.keys.OutboxDead(n), redis.Z{Score: isDead[id], Member: id})
		case score[id] != 0:
			w.ZAdd(ctx, s.keys.OutboxQueue(n), redis.Z{Score: score[id], Member: id})
		default: // claimed by a daemon now stopped: ready at once
			w.ZAdd(ctx, s.keys.OutboxQueue(n), redis.Z{Score: now, Member: id})
		}
		res.Entries++
	}
	if v, err := strconv.ParseInt(seq.Val(), 10, 64); err == nil {
		w.Set(ctx, s.keys.OutboxSeq(n), v, 0)
	}
	w.Del(ctx, p+oldOutbox, p+oldOutboxReady, p+oldOutboxClaimed, p+oldOutboxDead, p+oldOutboxSeq)
	_, err = w.Exec(ctx)
	return storeErr(err)
}

// oldRef is the reference of a token whose old record was named by the
// hex SHA-256 h: its first 128 bits, in the new alphabet.
func oldRef(h string) (string, bool) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return "", false
	}
	return b32.EncodeToString(b[:16]), true
}

// migrateTokens rewrites old token records as new ones.
func (s *Store) migrateTokens(ctx context.Context, keys []string, res *MigrateResult) error {
	for _, key := range keys {
		shard, h, ok := s.oldShardKey(key, oldToken)
		ref, ok2 := oldRef(h)
		if !ok || !ok2 {
			continue
		}
		pipe := s.rdb.Pipeline()
		f := pipe.HGetAll(ctx, key)
		ttl := pipe.PTTL(ctx, key)
		if err := execReads(ctx, pipe); err != nil {
			return err
		}
		t := f.Val()
		if !ValidRequestID(t["r"]) || t["n"] == "" {
			continue
		}
		var val string
		switch t["k"] {
		case "v":
			svc, err := s.rdb.HGet(ctx, s.keys.Request(shard, t["r"]), "svc").Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return storeErr(err)
			}
			val = "v " + t["r"] + " " + t["n"] + " " + svc
		case "r":
			val = "r " + t["r"] + " " + t["n"] + " " + t["x"]
			if t["used"] != "" {
				val += " used"
			}
		default:
			continue
		}
		life := ttl.Val()
		if life <= 0 {
			life = s.opt.RequestTTL
		}
		w := s.rdb.TxPipeline()
		w.Set(ctx, s.keys.Token(shard, ref), val, life)
		w.Del(ctx, key)
		if _, err := w.Exec(ctx); err != nil {
			return storeErr(err)
		}
		res.Tokens++
	}
	return nil
}

// migrateRequests rewrites the token fields of requests, which named old
// hashes, as references.
func (s *Store) migrateRequests(ctx context.Context, keys []string, res *MigrateResult) error {
	for _, key := range keys {
		if strings.HasSuffix(key, sfxHistory) {
			continue
		}
		f, err := s.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return storeErr(err)
		}
		set := map[string]any{}
		for field, v := range f {
			switch {
			case strings.HasPrefix(field, "t:"):
				if ref, ok := oldRef(v); ok {
					set[field] = "0 " + ref
				}
			case strings.HasPrefix(field, "p:"):
				var refs []string
				for _, h := range strings.Fields(v) {
					if ref, ok := oldRef(h); ok {
						refs = append(refs, "0:"+ref)
					}
				}
				if len(refs) > 0 || v != "" {
					set[field] = strings.Join(refs, " ")
				}
			}
		}
		if len(set) == 0 {
			continue
		}
		if err := s.rdb.HSet(ctx, key, set).Err(); err != nil {
			return storeErr(err)
		}
		res.Requests++
	}
	return nil
}

// migrateOpen moves the open roles of a service into its hash.
func (s *Store) migrateOpen(ctx context.Context, keys []string, res *MigrateResult) error {
	for _, key := range keys {
		shard, svc, ok := s.oldShardKey(key, oldOpen)
		if !ok {
			continue
		}
		roles, err := s.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return storeErr(err)
		}
		set := map[string]any{}
		for role, id := range roles {
			f, err := s.rdb.HMGet(ctx, s.keys.Request(shard, id), "st", "x").Result()
			if err != nil {
				return storeErr(err)
			}
			st, _ := f[0].(string)
			x, _ := f[1].(string)
			switch st {
			case string(Pending):
				set["o:"+role] = id + " " + x
			case string(Approved):
				set["o:"+role] = id + " 0"
			}
		}
		w := s.rdb.TxPipeline()
		if len(set) > 0 {
			w.HSet(ctx, s.keys.Service(svc), set)
		}
		w.Del(ctx, key)
		if _, err := w.Exec(ctx); err != nil {
			return storeErr(err)
		}
		res.OpenRoles += len(set)
	}
	return nil
}

// dropSent deletes the records of sent emails of the previous layout.
func (s *Store) dropSent(ctx context.Context, keys []string, res *MigrateResult) error {
	if err := s.rdb.Del(ctx, keys...).Err(); err != nil {
		// keys of several slots in one DEL: delete them one by one
		for _, k := range keys {
			if err := s.rdb.Del(ctx, k).Err(); err != nil {
				return storeErr(err)
			}
		}
	}
	res.DroppedRecord += len(keys)
	return nil
}

// oldShardKey reads the shard and the name after sfx of a per-shard key.
func (s *Store) oldShardKey(key, sfx string) (int, string, bool) {
	for n := 0; n < Shards; n++ {
		if rest, ok := strings.CutPrefix(key, s.keys.Shard(n)+sfx); ok {
			return n, rest, true
		}
	}
	return 0, "", false
}
