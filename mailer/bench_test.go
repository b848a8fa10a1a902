package mailer

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// benchBackend is the real Redis when the test command started one, else
// miniredis.
func benchBackend(b *testing.B) redistest.Backend {
	if os.Getenv(redistest.EnvAddr) != "" {
		return redistest.Real(b)
	}
	b.Log("no real Redis: measuring against miniredis")
	return redistest.Mini(b)
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
// send, record the Message-ID, acknowledge) beside the raw rate of
// sending the same email with go-mail's SMTP client (the mailer's sender,
// no outbox) to the same kind of sink over as many reused connections. The two alternate, so that a change in the machine's load
// touches both alike. cpu-µs/msg is this process's CPU time (client and
// sink; not redis-server's) per email.
func BenchmarkMailer(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("raw-gomail/conns=%d", n), func(b *testing.B) { benchRaw(b, n) })
		b.Run(fmt.Sprintf("outbox/workers=%d", n), func(b *testing.B) { benchOutbox(b, n) })
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchOutbox(b *testing.B, workers int) {
	{
		{
			be := benchBackend(b)
			s := newStore(b, be)
			r := benchRequest(b, s)
			srv := startSink(b, "")
			srv.discard = true
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				if err := s.Enqueue(ctx, workflow.Message{Kind: "applied", Request: r.ID, NIC: "nw1-ovh"}); err != nil {
					b.Fatal(err)
				}
			}
			m := newMailer(b, s, testConfig(srv.port()), workers)
			b.ResetTimer()
			c0, t0 := cpuTime(), time.Now()
			stop := start(b, m)
			for srv.count.Load() < int64(b.N) {
				time.Sleep(200 * time.Microsecond)
			}
			elapsed, cpu := time.Since(t0), cpuTime()-c0
			b.StopTimer()
			stop()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
		}
	}
}

// benchRaw is the baseline: the same email written by go-mail and sent
// straight to the sink by go-mail's SMTP client, over conns reused
// connections.
func benchRaw(b *testing.B, conns int) {
	{
		{
			be := benchBackend(b)
			s := newStore(b, be)
			r := benchRequest(b, s)
			srv := startSink(b, "")
			srv.discard = true
			m := newMailer(b, s, testConfig(srv.port()), 1)
			e := &workflow.OutboxEntry{Message: workflow.Message{Kind: workflow.KindApplied, Request: r.ID, NIC: "nw1-ovh", At: 1}, ID: "1"}
			l, err := m.compose(context.Background(), e)
			if err != nil {
				b.Fatal(err)
			}
			rendered, err := m.set.Render(l.data)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
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
						if err := client.send(context.Background(), msg); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed, cpu := time.Since(t0), cpuTime()-c0
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
		}
	}
}
