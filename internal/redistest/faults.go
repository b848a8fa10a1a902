package redistest

import (
	"context"
	"net"
	"os"
	"slices"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// LoseAnswer is a client hook that lets the server run the first script
// (EVALSHA or EVAL) whose arguments hold every one of Args, then loses
// its answer: the caller gets a read timeout, as when a connection is cut
// after the command went out. Add it with Client.AddHook.
type LoseAnswer struct {
	Args []string
	lost atomic.Bool
}

// Lost reports whether an answer was lost.
func (h *LoseAnswer) Lost() bool { return h.lost.Load() }

// DialHook passes dials through.
func (h *LoseAnswer) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook loses the answer of the first matching script.
func (h *LoseAnswer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && h.matches(cmd) && h.lost.CompareAndSwap(false, true) {
			err = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
			cmd.SetErr(err)
		}
		return err
	}
}

// ProcessPipelineHook passes pipelines through.
func (h *LoseAnswer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *LoseAnswer) matches(cmd redis.Cmder) bool {
	if name := cmd.Name(); name != "evalsha" && name != "eval" {
		return false
	}
	var args []string
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok {
			args = append(args, s)
		}
	}
	for _, want := range h.Args {
		if !slices.Contains(args, want) {
			return false
		}
	}
	return true
}
