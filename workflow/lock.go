package workflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// TryLock takes the lock name for ttl unless anybody holds it, this owner
// included: a lock is taken once. Its value is the owner and a random
// stamp of this taking, so that the holder can tell its lock from a later
// one. It returns whether it won and a function that reports whether the
// lock is still the one taken. The scheduler names one lock per tick.
func (s *Store) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, func() bool, error) {
	stamp := make([]byte, 8)
	_, _ = rand.Read(stamp)
	key := s.keys.Lock(name)
	value := owner + " " + hex.EncodeToString(stamp)
	won, err := s.rdb.SetNX(ctx, key, value, ttl).Result()
	if err != nil || !won {
		return false, nil, storeErr(err)
	}
	return true, func() bool {
		v, err := s.rdb.Get(ctx, key).Result()
		return err == nil && v == value
	}, nil
}
