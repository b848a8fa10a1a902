package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// KeyCheck is a client hook that runs every script (EVAL, EVALSHA) as a
// Redis user allowed to touch only the keys the call declares in KEYS, so
// that a script reaching any other key fails with a permission error, as
// Redis Cluster's contract requires of scripts. Add it with
// DeclaredKeysOnly.
type KeyCheck struct {
	admin, user *redis.Client
	name        string
	mu          sync.Mutex
	// Scripts counts the script calls checked.
	Scripts atomic.Int64
}

// DeclaredKeysOnly makes every script call of b's client run with access
// to its declared keys only. It needs the real single server (ACLs): on
// miniredis or a Cluster it skips t.
func DeclaredKeysOnly(t testing.TB, b Backend) *KeyCheck {
	t.Helper()
	if b.Mini != nil || len(b.Addrs) != 1 {
		t.Skip("the declared-keys check needs the real single redis-server (ACL users)")
	}
	ctx := context.Background()
	rnd := make([]byte, 6)
	_, _ = rand.Read(rnd)
	k := &KeyCheck{name: "keycheck-" + hex.EncodeToString(rnd)}
	k.admin = redis.NewClient(&redis.Options{Addr: b.Addrs[0]})
	if err := k.admin.Do(ctx, "ACL", "SETUSER", k.name, "on", ">keycheck", "+@all", "allchannels", "resetkeys").Err(); err != nil {
		t.Fatalf("creating the ACL user of the key check: %v", err)
	}
	k.user = redis.NewClient(&redis.Options{Addr: b.Addrs[0], Username: k.name, Password: "keycheck", PoolSize: 1})
	t.Cleanup(func() {
		_ = k.user.Close()
		_ = k.admin.Do(context.Background(), "ACL", "DELUSER", k.name).Err()
		_ = k.admin.Close()
	})
	b.Client.AddHook(k)
	return k
}

// DialHook passes dials through.
func (k *KeyCheck) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook runs a script call as the restricted user.
func (k *KeyCheck) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !isScript(cmd) {
			return next(ctx, cmd)
		}
		return k.run(ctx, cmd)
	}
}

// ProcessPipelineHook runs a pipeline's commands one by one, in order,
// its script calls as the restricted user.
func (k *KeyCheck) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var first error
		for _, cmd := range cmds {
			var err error
			if isScript(cmd) {
				err = k.run(ctx, cmd)
			} else {
				err = next(ctx, []redis.Cmder{cmd})
			}
			if err != nil && first == nil && err != redis.Nil {
				first = err
			}
		}
		return first
	}
}

func isScript(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
		return true
	}
	return false
}

// run grants the user exactly the call's keys, then runs it as the user.
func (k *KeyCheck) run(ctx context.Context, cmd redis.Cmder) error {
	args := cmd.Args()
	if len(args) < 3 {
		return fmt.Errorf("keycheck: a script call without its number of keys: %v", args)
	}
	n, err := strconv.Atoi(fmt.Sprint(args[2]))
	if err != nil || len(args) < 3+n {
		return fmt.Errorf("keycheck: bad number of keys in %v", args[:3])
	}
	grant := []any{"ACL", "SETUSER", k.name, "resetkeys"}
	for _, key := range args[3 : 3+n] {
		grant = append(grant, "~"+globEscape(fmt.Sprint(key)))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.admin.Do(ctx, grant...).Err(); err != nil {
		return fmt.Errorf("keycheck: granting the keys: %w", err)
	}
	k.Scripts.Add(1)
	res := k.user.Do(ctx, args...)
	c, ok := cmd.(*redis.Cmd)
	if !ok {
		return fmt.Errorf("keycheck: unexpected command type %T", cmd)
	}
	c.SetVal(res.Val())
	c.SetErr(res.Err())
	return res.Err()
}

// globEscape escapes the characters ACL key patterns read as globs.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
