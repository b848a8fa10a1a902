package mailer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// benchBackend is the real Redis of the test command. The figures mean
// nothing against miniredis, so without one the benchmark is skipped with
// a message naming the variable to set.
func benchBackend(b *testing.B) redistest.Backend {
	return redistest.Real(b)
}

// benchRequest creates the request whose "applied" email every benchmark
// sends, and returns it with the outbox emptied.
func benchRequest(b *testing.B, s *workflow.Store) *workflow.Request {
	ctx := context.Background()
	r, err := s.Create(ctx, workflow.Ask{Service: "example.com", Requester: "ad1-ovh",
		Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API)
	if err != nil {
		b.Fatal(err)
	}
	es, err := s.ListOutbox(ctx, workflow.OutboxReady, 1000)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range es {
		if err := s.DropOutboxEntry(ctx, e.Ref()); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

// BenchmarkMailer measures emails per second from the outbox to an
// in-process SMTP sink (claim, read the request and the directory, render,
// send, record the Message-ID and the outcome) beside the raw rate of
// sending the same email with go-mail's SMTP client (the mailer's sender,
// no outbox) to the same kind of sink over as many reused connections. Each op of a run is one email of each: the raw
// sender's b.N emails, then the mailer's, back to back, so that the ratio
// of one run compares the two under the same load of the machine.
// cpu-µs/msg is this process's CPU time (client and sink; not
// redis-server's) per email.
func BenchmarkMailer(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			rawTime, rawCPU := benchRaw(b, n)
			outTime, outCPU := benchOutbox(b, n)
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
			b.ReportMetric(float64(b.N)/rawTime.Seconds(), "raw-msgs/s")
			b.ReportMetric(float64(b.N)/outTime.Seconds(), "mailer-msgs/s")
			b.ReportMetric(rawTime.Seconds()/outTime.Seconds(), "ratio")
			b.ReportMetric(per(rawCPU), "raw-cpu-µs/msg")
			b.ReportMetric(per(outCPU), "mailer-cpu-µs/msg")
		})
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchOutbox sends b.N queued emails with a mailer of that many workers
// and returns the time and CPU it took.
func benchOutbox(b *testing.B, workers int) (elapsed, cpu time.Duration) {
	be := benchBackend(b)
	s := newStore(b, be)
	r := benchRequest(b, s)
	srv := startSink(b, "")
	srv.discard = true
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := s.Enqueue(ctx, workflow.Message{Kinds: []workflow.Kind{"applied"}, Request: r.ID, NIC: "nw1-ovh"}); err != nil {
			b.Fatal(err)
		}
	}
	// The daemon's poll (5 s), not the tests' 20 ms: the wake-ups and
	// the claims' "next due" drive the mailer.
	m := newMailer(b, s, testConfig(srv.port()), workers, func(p *Params) { p.Poll = 0 })
	c0, t0 := cpuTime(), time.Now()
	stop := start(b, m)
	for srv.count.Load() < int64(b.N) {
		time.Sleep(200 * time.Microsecond)
	}
	elapsed, cpu = time.Since(t0), cpuTime()-c0
	stop()
	return elapsed, cpu
}

// benchRaw is the baseline: go-mail sending the same email b.N times
// straight to the sink, over conns reused connections. It returns the
// time and CPU it took.
func benchRaw(b *testing.B, conns int) (elapsed, cpu time.Duration) {
	be := benchBackend(b)
	s := newStore(b, be)
	r := benchRequest(b, s)
	srv := startSink(b, "")
	srv.discard = true
	m := newMailer(b, s, testConfig(srv.port()), 1)
	e := &workflow.OutboxEntry{Message: workflow.Message{Kinds: []workflow.Kind{workflow.KindApplied}, Request: r.ID, NIC: "nw1-ovh", At: 1}, ID: "1"}
	l := composeOne(b, m, e)
	rendered, err := m.set.Render(l.data)
	if err != nil {
		b.Fatal(err)
	}
	c0, t0 := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		n := b.N / conns
		if c < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newSender(m.cfg.SMTP, 5*time.Second, nil, nil)
			defer client.close()
			for i := 0; i < n; i++ {
				msg, _, err := m.buildMsg(l, e, rendered)
				if err != nil {
					b.Error(err)
					return
				}
				if err := client.sendMsg(context.Background(), msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(t0), cpuTime() - c0
}

// countingStore counts the outcomes the mailer records, so that a
// benchmark can wait for the mailer to finish without sending Redis
// commands of its own; with noWake it never subscribes to the wake-ups,
// leaving the mailer to its poll.
type countingStore struct {
	*workflow.Store
	recorded atomic.Int64
	noWake   bool
}

func (c *countingStore) Settle(ctx context.Context, batch []workflow.Settlement) ([]*workflow.OutboxEntry, error) {
	lost, err := c.Store.Settle(ctx, batch)
	c.recorded.Add(int64(len(batch)))
	return lost, err
}

func (c *countingStore) WatchOutbox(ctx context.Context, wake func(shard int)) error {
	if c.noWake {
		return nil
	}
	return c.Store.WatchOutbox(ctx, wake)
}

// waitRecorded waits, without a Redis command, until the mailer recorded n
// outcomes.
func (c *countingStore) waitRecorded(b *testing.B, n int64) {
	deadline := time.Now().Add(30 * time.Second)
	for c.recorded.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("the mailer recorded %d outcomes in 30s, want %d", c.recorded.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// lifecycleDirectory adds n services lcN.example, each with an admin (the
// requester), a tech and a candidate tech, so that no lifecycle conflicts
// with another.
func lifecycleDirectory(b *testing.B, s *workflow.Store, n int) {
	var d strings.Builder
	d.WriteString("contacts:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&d, "  - {nic: la%d-ovh, email: la%d@example.com}\n  - {nic: lt%d-ovh, email: lt%d@example.com}\n  - {nic: ln%d-ovh, email: ln%d@example.net}\n", i, i, i, i, i, i)
	}
	d.WriteString("services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&d, "  - {id: lc%d.example, kind: domain, admin: la%d-ovh, tech: lt%d-ovh, billing: la%d-ovh}\n", i, i, i, i)
	}
	if _, err := s.Import(context.Background(), []byte(d.String())); err != nil {
		b.Fatal(err)
	}
}

// lifecycleAsk asks for the tech of lcN.example to change.
func lifecycleAsk(i int) workflow.Ask {
	return workflow.Ask{Service: fmt.Sprintf("lc%d.example", i), Requester: fmt.Sprintf("la%d-ovh", i),
		Changes: map[string]string{"tech": fmt.Sprintf("ln%d-ovh", i)}}
}

// statsDelta adds after-before to into, leaving out INFO (the
// benchmark's own).
func statsDelta(into, before, after map[string]int64) {
	for k, v := range after {
		if k != "info" && v != before[k] {
			into[k] += v - before[k]
		}
	}
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// BenchmarkLifecycleCommands counts the Redis commands of a full
// lifecycle with the mailer running (create with two approvers, the two
// validation emails, two accepts through the emails' tokens, apply, and
// the five emails and the event that follow), read from INFO commandstats
// before and after, so script inner commands count. It needs a redis-server
// of its own: any other client's commands would be counted too. The
// mailer's safety-net poll is set to an hour so that it does not count
// (one poll of every shard costs 32 × 7 commands, every 5 s by default).
// One op is one lifecycle; the metrics split it into three phases.
func BenchmarkLifecycleCommands(b *testing.B) {
	be := benchBackend(b)
	s := newStore(b, be)
	lifecycleDirectory(b, s, b.N+1)
	srv := startSink(b, "")
	cs := &countingStore{Store: s}
	m := newMailer(b, s, testConfig(srv.port()), 2, func(p *Params) { p.Store, p.Poll = cs, time.Hour })
	start(b, m)
	run := func(i int, phases []map[string]int64) {
		ctx := context.Background()
		step := func(phase int, emails int64, f func()) {
			before := redistest.CommandStats(b, be.Client)
			n := cs.recorded.Load()
			f()
			cs.waitRecorded(b, n+emails)
			statsDelta(phases[phase], before, redistest.CommandStats(b, be.Client))
		}
		var r *workflow.Request
		step(0, 2, func() {
			var err error
			if r, err = s.Create(ctx, lifecycleAsk(i), workflow.API); err != nil {
				b.Fatal(err)
			}
		})
		toks := tokensOf(b, srv, r.ID)
		step(1, 1, func() { decide(b, s, toks[0]) })
		// Four outbox entries: recorded and applied to the last approver,
		// applied to the other, informed to the previous holder, the event.
		step(2, 4, func() { decide(b, s, toks[1]) })
	}
	// A first lifecycle loads the scripts and settles the mailer.
	run(b.N, []map[string]int64{{}, {}, {}})
	phases := []map[string]int64{{}, {}, {}}
	sent0 := len(srv.received())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(i, phases)
	}
	b.StopTimer()
	if got := len(srv.received()) - sent0; got != 7*b.N {
		b.Fatalf("%d emails for %d lifecycles, want 7 each", got, b.N)
	}
	all := map[string]int64{}
	for _, ph := range phases {
		statsDelta(all, nil, ph)
	}
	n := float64(b.N)
	b.ReportMetric(float64(total(all))/n, "cmds/lifecycle")
	b.ReportMetric(float64(total(phases[0]))/n, "create+2mails-cmds")
	b.ReportMetric(float64(total(phases[1]))/n, "accept+1mail-cmds")
	b.ReportMetric(float64(total(phases[2]))/n, "accept+apply+4mails+event-cmds")
	b.ReportMetric(float64(all["evalsha"]+all["eval"])/n, "scripts/lifecycle")
	b.Logf("commands per lifecycle, by command (of %d lifecycles): %s", b.N, perOp(all, b.N))
}

// perOp formats the counts of m divided by n, largest first.
func perOp(m map[string]int64, n int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s %.1f", k, float64(m[k])/float64(n)))
	}
	return strings.Join(out, ", ")
}

// tokensOf returns the tokens of the two validation emails about id.
func tokensOf(b *testing.B, srv *sink, id string) []string {
	var out []string
	for _, raw := range srv.received() {
		if headerValue(raw, "X-Contactd-Request") == id && headerValue(raw, "X-Contactd-Kind") == "validation" {
			if mt := tokenRe.FindStringSubmatch(headerValue(raw, "Reply-To")); mt != nil {
				out = append(out, mt[1])
			}
		}
	}
	if len(out) != 2 {
		b.Fatalf("%d validation emails with a token about %s, want 2", len(out), id)
	}
	return out
}

func decide(b *testing.B, s *workflow.Store, tok string) {
	if _, err := s.Decide(context.Background(), tok, workflow.Accept, workflow.Web); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWakeDelay measures the delay from a transition (a request
// created) to its validation emails reaching the SMTP server, with the
// wake-up every daemon gets through Redis pub/sub (and the default 5 s
// poll behind it), and without it, polling once a second as the mailer
// used to (each request then made at a random moment of the poll's
// period). One op is one request; p50-ms and p99-ms are over the emails of
// all ops.
func BenchmarkWakeDelay(b *testing.B) {
	for _, tc := range []struct {
		name   string
		noWake bool
		poll   time.Duration
	}{
		{"pubsub", false, 0},
		{"poll-1s", true, time.Second},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := benchBackend(b)
			s := newStore(b, be)
			lifecycleDirectory(b, s, b.N)
			srv := startSink(b, "")
			arrived := make(chan time.Time, 2)
			srv.fault = func(stage string, _ int, _ string) error {
				if stage == "data" {
					arrived <- time.Now()
				}
				return nil
			}
			cs := &countingStore{Store: s, noWake: tc.noWake}
			m := newMailer(b, s, testConfig(srv.port()), 2, func(p *Params) { p.Store, p.Poll = cs, tc.poll })
			start(b, m)
			var delays []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if tc.noWake {
					// Out of step with the poll, as a user's request is.
					time.Sleep(rand.N(tc.poll))
				}
				t0 := time.Now()
				if _, err := s.Create(context.Background(), lifecycleAsk(i), workflow.API); err != nil {
					b.Fatal(err)
				}
				for range 2 {
					select {
					case at := <-arrived:
						delays = append(delays, at.Sub(t0))
					case <-time.After(30 * time.Second):
						b.Fatal("no validation email within 30s")
					}
				}
			}
			b.StopTimer()
			sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(delays[len(delays)/2]), "p50-ms")
			b.ReportMetric(ms(delays[min(len(delays)-1, len(delays)*99/100)]), "p99-ms")
			b.ReportMetric(ms(delays[len(delays)-1]), "max-ms")
		})
	}
}
