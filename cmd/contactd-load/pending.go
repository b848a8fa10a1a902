package main

import (
	"context"
	"fmt"
	"time"

	"contactd/internal/redisserver"
)

// pendingWants are the emails of a request left pending: its two
// validation emails.
func pendingWants(p *lifecycle) []want {
	return lifecycleWants(p.svc.admin, p.from, p.to)[:2]
}

// pendingBatch creates a request on each pending service, waits until
// both its validation emails have reached the sink and are recorded in
// its history (two sent events), and reports the growth of Redis's
// used_memory per request.
func (e *env) pendingBatch(ctx context.Context, rep *report) ([]*lifecycle, error) {
	if len(e.pendings) == 0 {
		return nil, nil
	}
	e.say("memory: %d requests left pending with their validation emails sent", len(e.pendings))
	mem0, err := e.settledMemory(ctx)
	if err != nil {
		return nil, err
	}
	keys0, err := redisserver.Keys(ctx, e.rdb)
	if err != nil {
		return nil, err
	}
	var batch []*lifecycle
	for _, s := range e.pendings {
		batch = append(batch, &lifecycle{svc: s, from: s.tech(), to: s.other()})
	}
	forEach(e, batch, func(p *lifecycle) []failure {
		p.started = time.Now()
		p.err = e.leavePending(ctx, p, p.started.Add(e.opt.Timeout))
		if p.err != nil {
			p.svc.broken = true
		}
		return nil
	})
	mem1, err := e.settledMemory(ctx)
	if err != nil {
		return nil, err
	}
	keys1, err := redisserver.Keys(ctx, e.rdb)
	if err != nil {
		return nil, err
	}
	ok := 0
	for _, p := range batch {
		if p.err == nil {
			ok++
		}
	}
	rep.Pending.Requests = ok
	if ok > 0 {
		rep.Pending.BytesPerRequest = float64(mem1-mem0) / float64(ok)
		rep.Pending.KeysPerRequest = float64(keys1-keys0) / float64(ok)
	}
	return batch, ctx.Err()
}

// settledMemory waits until the daemon has finished what it was doing
// (the outbox entries of the last emails recorded and forgotten: Redis's
// used_memory reads the same twice, 200 ms apart, at most for 5 s) and
// returns used_memory.
func (e *env) settledMemory(ctx context.Context) (int64, error) {
	last, err := redisserver.UsedMemory(ctx, e.rdb)
	for deadline := time.Now().Add(5 * time.Second); err == nil && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		var now int64
		if now, err = redisserver.UsedMemory(ctx, e.rdb); err == nil && now == last {
			break
		}
		last = now
	}
	return last, err
}

func (e *env) leavePending(ctx context.Context, p *lifecycle, deadline time.Time) error {
	id, err := e.create(ctx, p.svc, p.to, deadline)
	if err != nil {
		return err
	}
	p.id = id
	ws := pendingWants(p)
	if ms, err := e.track.box(id).wait(ctx, deadline, func(ms []received) bool { return has(ms, ws...) }); err != nil {
		return fmt.Errorf("request %s: waiting for both validation emails: %w (missing %s)", id, err, missing(ms, ws))
	}
	for try := 0; ; try++ {
		r, err := e.request(ctx, id, deadline)
		if err != nil {
			return err
		}
		if r.events("sent", "") >= len(ws) {
			return nil
		}
		if err := pause(ctx, deadline, try); err != nil {
			return fmt.Errorf("request %s: waiting for its two sent events: %w", id, err)
		}
	}
}
