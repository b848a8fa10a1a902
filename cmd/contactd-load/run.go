package main

import (
	"context"
	"io"
	"sort"
	"time"

	"contactd/internal/redisserver"
)

// emailsPerLifecycle is what one lifecycle sends: two validation, two
// recorded, two applied and one informed email.
const emailsPerLifecycle = 7

// run starts everything, runs the phases in order and returns the
// report: warm-up, measured lifecycles (with kills or a profile when
// asked), the raw baselines, the pending batch, then the checks.
func run(ctx context.Context, opt options, progress io.Writer) (*report, error) {
	rep := newReport(opt)
	e, err := setup(ctx, opt, progress)
	if err != nil {
		return nil, err
	}
	keep := opt.Keep
	defer func() { e.close(keep) }()
	if rep.Machine.Redis, err = redisserver.Version(ctx, e.rdb); err != nil {
		return nil, err
	}
	var all []*lifecycle
	if opt.Warmup > 0 {
		e.say("warm-up: %d lifecycles", opt.Warmup)
		emails0, bytes0, _ := e.track.counts()
		all = append(all, e.runLifecycles(ctx, opt.Warmup, time.Time{})...)
		emails1, bytes1, _ := e.track.counts()
		if emails1 > emails0 {
			if err := e.rawGomail(ctx, rep, e.sink.ResetPeak(), int((bytes1-bytes0)/(emails1-emails0))); err != nil {
				return nil, err
			}
		}
	}
	measured, err := e.measure(ctx, rep)
	if err != nil {
		return nil, err
	}
	all = append(all, measured...)
	if err := e.rawGomail(ctx, rep, rep.Lifecycles.SMTPConns, rep.Lifecycles.AvgEmailBytes); err != nil {
		return nil, err
	}
	rep.fillBound()
	e.say("raw EVALSHA baseline: %s at %d at once", e.opt.RawRedis, e.opt.Concurrency)
	if rep.RawRedis, err = e.rawEvalsha(ctx, e.opt.Concurrency, e.opt.RawRedis); err != nil {
		return nil, err
	}
	pending, err := e.pendingBatch(ctx, rep)
	if err != nil {
		return nil, err
	}
	if opt.Pprof {
		e.summariseProfile(ctx, rep)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	e.say("checking %d requests", len(all)+len(pending))
	rep.Failures = e.verify(ctx, all, pending, rep)
	rep.Machine.LoadAfter = loadAverage()
	if len(rep.Failures) > 0 {
		keep = true
	}
	if keep {
		rep.KeptDir = e.dir
	}
	return rep, nil
}

// snapshot is what is read before and after the measured phase.
type snapshot struct {
	at            time.Time
	cmds          map[string]int64
	redisCPU      time.Duration
	daemonCPU     time.Duration
	toolCPU       time.Duration
	emails, bytes int64
}

func (e *env) snapshot(ctx context.Context) (snapshot, error) {
	s := snapshot{at: time.Now(), daemonCPU: e.daemonCPU(), toolCPU: selfCPU()}
	s.emails, s.bytes, _ = e.track.counts()
	var err error
	if s.cmds, err = redisserver.CommandStats(ctx, e.rdb); err != nil {
		return s, err
	}
	s.redisCPU, err = redisserver.CPU(ctx, e.rdb)
	return s, err
}

// measure runs the measured lifecycles, with the kills and the profile
// asked for, and fills the report's figures of that phase.
func (e *env) measure(ctx context.Context, rep *report) ([]*lifecycle, error) {
	opt := e.opt
	before, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	e.sink.ResetPeak()
	var until time.Time
	if opt.Count == 0 {
		until = before.at.Add(opt.Duration)
		e.say("measuring: lifecycles started for %s, %d at once", opt.Duration, opt.Concurrency)
	} else {
		e.say("measuring: %d lifecycles, %d at once", opt.Count, opt.Concurrency)
	}
	var profile func() error
	if opt.Pprof {
		profile = e.startProfile(ctx, rep)
	}
	chaosCtx, stopChaos := context.WithCancel(ctx)
	if !until.IsZero() {
		chaosCtx, stopChaos = context.WithDeadline(ctx, until)
	}
	chaosDone := make(chan int)
	go func() { chaosDone <- e.chaos(chaosCtx, opt.ChaosKill) }()
	lcs := e.runLifecycles(ctx, opt.Count, until)
	stopChaos()
	kills := <-chaosDone
	after, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if profile != nil {
		if err := profile(); err != nil {
			e.fail(checkRun, "CPU profile: %v", err)
		}
	}
	rep.fillPhase(lcs, before, after, e.sink.Peak())
	rep.Chaos.Kills = kills
	return lcs, ctx.Err()
}

// chaos kills a daemon (each in turn) every interval until ctx ends, and
// returns how many kills it made. A zero interval does nothing.
func (e *env) chaos(ctx context.Context, every time.Duration) int {
	if every <= 0 {
		return 0
	}
	t := time.NewTicker(every)
	defer t.Stop()
	kills := 0
	for {
		select {
		case <-ctx.Done():
			return kills
		case <-t.C:
		}
		d := e.daemons[kills%len(e.daemons)]
		if err := d.kill(); err != nil {
			e.fail(checkRun, "%v", err)
			return kills
		}
		kills++
		e.say("kill -9 of the daemon at %s (kill %d), restarted", d.base, kills)
	}
}

// fillPhase computes the measured phase's figures.
func (r *report) fillPhase(lcs []*lifecycle, before, after snapshot, peakConns int) {
	var lat []time.Duration
	for _, lc := range lcs {
		if lc.err == nil {
			lat = append(lat, lc.latency)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	n := len(lat)
	secs := after.at.Sub(before.at).Seconds()
	emails := after.emails - before.emails
	l := &r.Lifecycles
	l.Count, l.Failed, l.Seconds = n, len(lcs)-n, secs
	l.Emails = emails
	l.SMTPConns = peakConns
	if n > 0 {
		l.PerSecond = float64(n) / secs
		l.P50Ms = ms(percentile(lat, 50))
		l.P99Ms = ms(percentile(lat, 99))
		l.MaxMs = ms(lat[n-1])
		l.EmailsPerLifecycle = float64(emails) / float64(n)
		r.Redis.CommandsPerLifecycle = float64(totalCommands(before.cmds, after.cmds)) / float64(n)
		r.Redis.ScriptCallsPerLifecycle = float64(delta(before.cmds, after.cmds, "evalsha")+delta(before.cmds, after.cmds, "eval")) / float64(n)
		r.Redis.CPUMicrosPerLifecycle = micros(after.redisCPU-before.redisCPU) / float64(n)
		r.Redis.ByCommand = byCommand(before.cmds, after.cmds, n)
	}
	if emails > 0 {
		l.AvgEmailBytes = int((after.bytes - before.bytes) / emails)
		r.DaemonCPU.Seconds = (after.daemonCPU - before.daemonCPU).Seconds()
		r.DaemonCPU.MicrosPerEmail = micros(after.daemonCPU-before.daemonCPU) / float64(emails)
		r.DaemonCPU.ToolMicrosPerEmail = micros(after.toolCPU-before.toolCPU) / float64(emails)
	}
}

// percentile is the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

func ms(d time.Duration) float64     { return float64(d.Microseconds()) / 1000 }
func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// ignored are commands the tool itself sends during the measured phase.
var ignored = map[string]bool{"info": true}

func delta(before, after map[string]int64, cmd string) int64 { return after[cmd] - before[cmd] }

// totalCommands is every command run between the two readings, the
// commands run inside scripts included.
func totalCommands(before, after map[string]int64) int64 {
	var n int64
	for k := range after {
		if !ignored[k] {
			n += delta(before, after, k)
		}
	}
	return n
}

// byCommand is the commands per lifecycle, most first.
func byCommand(before, after map[string]int64, lifecycles int) []commandCount {
	var out []commandCount
	for k := range after {
		if d := delta(before, after, k); d > 0 && !ignored[k] {
			out = append(out, commandCount{Command: k, PerLifecycle: float64(d) / float64(lifecycles)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PerLifecycle != out[j].PerLifecycle {
			return out[i].PerLifecycle > out[j].PerLifecycle
		}
		return out[i].Command < out[j].Command
	})
	return out
}

// rawGomail runs the raw go-mail baseline once: to the sink, on as many
// connections as the daemons held at once (or -raw-conns), with messages
// of the daemons' average size. It runs after the warm-up and after the
// measured phase, so that the two runs bracket the lifecycles on a
// machine whose load changes.
func (e *env) rawGomail(ctx context.Context, rep *report, peakConns, size int) error {
	conns := e.opt.RawConns
	if conns == 0 {
		conns = max(1, peakConns)
	}
	if size == 0 {
		size = 4000
	}
	e.say("raw go-mail baseline: %d messages of about %d bytes on %d connections", e.opt.RawMsgs, size, conns)
	open := e.sink.Sessions()
	raw, err := e.rawSMTP(ctx, rawJob{Addr: e.sink.Addr, Conns: conns, Msgs: e.opt.RawMsgs, Size: size})
	if err != nil {
		return err
	}
	rep.RawSMTP.Runs = append(rep.RawSMTP.Runs, raw)
	// The sender has quit; wait for the sink to see its connections
	// close, so that they are not counted as the daemons'.
	for deadline := time.Now().Add(5 * time.Second); e.sink.Sessions() > open && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// fillBound computes the raw baselines' means, the bound they set and
// the ratios to them.
func (r *report) fillBound() {
	rs := &r.RawSMTP
	var secs, cpu float64
	msgs := 0
	for _, run := range rs.Runs {
		msgs += run.Msgs
		secs += run.Seconds
		cpu += run.CPUMicrosPerMsg * float64(run.Msgs)
	}
	if msgs == 0 || secs == 0 {
		return
	}
	rs.PerSecond, rs.CPUMicrosPerMsg = float64(msgs)/secs, cpu/float64(msgs)
	r.Bound.PerSecond = rs.PerSecond / emailsPerLifecycle
	r.Bound.Ratio = r.Lifecycles.PerSecond / r.Bound.PerSecond
	r.DaemonCPU.RawMicrosPerEmail = rs.CPUMicrosPerMsg
	r.DaemonCPU.Ratio = r.DaemonCPU.MicrosPerEmail / rs.CPUMicrosPerMsg
}

// verify checks what the run made: every lifecycle ended, each request
// applied exactly once (its status and history, the events stream, the
// service's contacts), each got its emails, and the failures seen while
// running.
func (e *env) verify(ctx context.Context, lcs []*lifecycle, pending []*lifecycle, rep *report) []failure {
	atLeast := e.opt.ChaosKill > 0
	var out []failure
	add := func(check, format string, args ...any) {
		out = append(out, failf(check, format, args...))
	}
	ours := map[string]bool{}
	for _, lc := range lcs {
		if lc.err != nil {
			add(checkLost, "lifecycle on %s: %v", lc.svc.id, lc.err)
		}
		if lc.id != "" {
			ours[lc.id] = true
		}
	}
	for _, p := range pending {
		if p.err != nil {
			add(checkLost, "pending request on %s: %v", p.svc.id, p.err)
		}
		if p.id != "" {
			ours[p.id] = true
		}
	}
	e.mu.Lock()
	out = append(out, e.failures...)
	e.mu.Unlock()
	out = append(out, e.track.readFaults()...)
	out = append(out, e.checkRequests(ctx, lcs, pending)...)
	out = append(out, e.checkServices(ctx)...)
	applied, err := e.appliedEvents(ctx)
	if err != nil {
		add(checkEvents, "reading the events stream: %v", err)
	}
	for _, lc := range lcs {
		if lc.id != "" && lc.err == nil {
			if n := applied[lc.id]; n != 1 {
				add(checkEvents, "request %s: %d applied events in the events stream, want 1", lc.id, n)
			}
		}
	}
	var dups int
	for _, lc := range lcs {
		if lc.id == "" {
			continue
		}
		f, d := emailFaults(lc.id, lifecycleWants(lc.svc.admin, lc.from, lc.to), e.track.box(lc.id).snapshot(), atLeast)
		out, dups = append(out, f...), dups+d
	}
	for _, p := range pending {
		if p.id == "" {
			continue
		}
		f, d := emailFaults(p.id, pendingWants(p), e.track.box(p.id).snapshot(), atLeast)
		out, dups = append(out, f...), dups+d
	}
	e.track.mu.Lock()
	for id := range e.track.boxes {
		if !ours[id] {
			add(checkSink, "emails about request %s, which the run did not make", id)
		}
	}
	e.track.mu.Unlock()
	rep.Chaos.Duplicates = dups
	rep.Checked = len(ours)
	return out
}
