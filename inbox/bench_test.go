package inbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// benchEnv reads a count from the environment, def unless set.
func benchEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkDovecotReplies fills a Dovecot mailbox with accepting replies,
// each to a request of its own in the real Redis (answering its
// validation email, the token in the reply address), and measures in
// one run:
//
//   - the baseline: one raw IMAP connection (imapclient) that UID FETCHes
//     a copy of the same messages as the reader fetches them and UID
//     MOVEs each batch to another mailbox, doing nothing else;
//   - the rate at which a Reader drains the backlog: fetch, read, claim,
//     act (each reply approves and applies its request), flag and move;
//     with the CPU time it cost the reader's process and redis-server,
//     and the Redis round trips and commands (those run by scripts
//     included) per reply;
//   - the delay from APPEND to decided while the Reader IDLEs, one reply
//     at a time.
//
// Run it with -benchtime=1x; CONTACTD_BENCH_REPLIES sets the size of the
// backlog (300 unless set), CONTACTD_BENCH_IDLE the number of replies
// timed one at a time (21 unless set), CONTACTD_BENCH_WORKERS and
// CONTACTD_BENCH_BATCH the reader's Workers and BatchSize, and
// CONTACTD_BENCH_CPUPROFILE a file for a CPU profile of the drain.
func BenchmarkDovecotReplies(b *testing.B) { benchDovecot(b, true) }

// BenchmarkDovecotRepliesNoDecision is BenchmarkDovecotReplies with a
// store that answers every reply "processed" at once, without Redis (the
// claims still go to the real Redis): what the reader itself costs,
// beside the same baseline. It times no replies one at a time.
func BenchmarkDovecotRepliesNoDecision(b *testing.B) { benchDovecot(b, false) }

func benchDovecot(b *testing.B, decide bool) {
	cfg := dovecot(b)
	n, idles := benchEnv("CONTACTD_BENCH_REPLIES", 300), benchEnv("CONTACTD_BENCH_IDLE", 21)
	var w *world
	var store Store
	if decide {
		w = newWorld(b, redistest.Real(b), n+idles)
		store = w.store
	} else {
		w, idles = newWorld(b, redistest.Real(b), 1), 0
		store = &wrappedStore{Store: w.store, decide: func(context.Context, workflow.Reply, decideFunc) (*workflow.ReplyOutcome, error) {
			return &workflow.ReplyOutcome{Result: workflow.ReplyProcessed}, nil
		}}
	}
	c := client(b, cfg)
	// As mail clients write them: answering the validation email (its
	// Message-ID in In-Reply-To and References), the token in the address.
	ids := make([]string, len(w.ids))
	for i := range w.ids {
		ids[i] = w.sent(b, i)
	}
	validation := func(i int) string { return ids[i] }
	benchReply := func(i int) string {
		v := validation(i % len(w.ids))
		return "In-Reply-To: <" + v + ">\r\nReferences: <" + v + ">\r\n" +
			reply(i%len(w.ids), w.tokens[i%len(w.ids)], "ACCEPT", fmt.Sprintf("bench%d@example.com", i))
	}
	appendMany(b, cfg, n, benchReply)
	rawFrom, rawTo := extraMailbox(b, cfg, "raw-src"), extraMailbox(b, cfg, "raw-done")
	if _, err := c.Select(cfg.IMAP.Mailbox, nil).Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Copy(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, rawFrom).Wait(); err != nil {
		b.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()

	start := time.Now()
	if got := rawFetchMove(b, cfg, rawFrom, rawTo); got != n {
		b.Fatalf("raw fetch and move handled %d messages, want %d", got, n)
	}
	raw := time.Since(start)

	cfg.IMAP.PollInterval = config.Duration(30 * time.Second)
	trips := &redistest.RoundTrips{}
	w.b.Client.AddHook(trips)
	before := redistest.CommandStats(b, w.b.Client)
	redisCPU, ownCPU := redisCPUTime(b, w), processCPUTime()
	stopProfile := profileReader(b)
	start = time.Now()
	runReaderWith(b, Params{Store: store, Config: cfg, Logger: testLogger(b), Workers: benchEnv("CONTACTD_BENCH_WORKERS", 0),
		BatchSize: benchEnv("CONTACTD_BENCH_BATCH", 0)})
	for countIn(b, c, cfg.IMAP.Mailbox) > 0 {
		if time.Since(start) > time.Duration(n)*10*time.Millisecond+time.Minute {
			b.Fatalf("the reader did not empty the mailbox in %s", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	handled := time.Since(start)
	b.StopTimer()
	stopProfile()
	redisCPU, ownCPU = redisCPUTime(b, w)-redisCPU, processCPUTime()-ownCPU
	after := redistest.CommandStats(b, w.b.Client)
	b.ReportMetric(float64(redisCPU.Microseconds())/float64(n), "redis-cpu-µs/reply")
	b.ReportMetric(float64(ownCPU.Microseconds())/float64(n), "reader-cpu-µs/reply")
	b.ReportMetric(float64(trips.N())/float64(n), "redis-trips/reply")
	b.ReportMetric(float64(commands(after)-commands(before))/float64(n), "redis-commands/reply")
	if testing.Verbose() {
		for name, calls := range after {
			if d := calls - before[name]; d > 0 {
				b.Logf("%s: %.2f per reply", name, float64(d)/float64(n))
			}
		}
	}
	if got := countIn(b, c, cfg.IMAP.ProcessedMailbox); got != n {
		b.Fatalf("%d replies filed as processed, want %d", got, n)
	}
	b.ReportMetric(float64(n)/raw.Seconds(), "raw-fetch-move/s")
	b.ReportMetric(float64(n)/handled.Seconds(), "replies/s")
	b.ReportMetric(raw.Seconds()/handled.Seconds(), "ratio")
	if !decide {
		return
	}
	for i := range n {
		if w.request(b, i).Status != workflow.Applied {
			b.Fatalf("request %d not applied", i)
		}
	}
	delays := make([]time.Duration, 0, idles)
	for i := n; i < n+idles; i++ {
		sent := time.Now()
		appendMsg(b, c, cfg.IMAP.Mailbox, benchReply(i))
		eventually(b, "reply acted on", func() bool { return w.request(b, i).Status == workflow.Applied })
		delays = append(delays, time.Since(sent))
	}
	slices.Sort(delays)
	b.ReportMetric(ms(delays[len(delays)/2]), "idle-p50-ms")
	b.ReportMetric(ms(delays[(len(delays)*99+99)/100-1]), "idle-p99-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// profileReader writes a CPU profile of the reader's drain to the file
// CONTACTD_BENCH_CPUPROFILE names, if any; call the function it returns
// at the end of the drain.
func profileReader(b *testing.B) func() {
	name := os.Getenv("CONTACTD_BENCH_CPUPROFILE")
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// redisCPUTime is the CPU time redis-server has used (INFO cpu).
func redisCPUTime(b *testing.B, w *world) time.Duration {
	info, err := w.b.Client.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// processCPUTime is the CPU time this process has used.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// commands totals the calls of INFO commandstats, less the INFO calls.
func commands(stats map[string]int64) int64 {
	var n int64
	for name, calls := range stats {
		if name != "info" {
			n += calls
		}
	}
	return n
}

// appendMany appends n messages to the mailbox of cfg over four
// connections at once.
func appendMany(b *testing.B, cfg config.Config, n int, msg func(i int) string) {
	const conns = 4
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for k := range conns {
		c := client(b, cfg)
		wg.Go(func() {
			for i := k; i < n && errs[k] == nil; i += conns {
				errs[k] = tryAppend(c, cfg.IMAP.Mailbox, msg(i))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
}

// extraMailbox creates a mailbox beside those of cfg, deleted at the end.
func extraMailbox(b *testing.B, cfg config.Config, name string) string {
	name = name + "-" + cfg.IMAP.Mailbox
	c := client(b, cfg)
	if err := c.Create(name, nil).Wait(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client(b, cfg).Delete(name).Wait() })
	return name
}

// rawFetchMove reads every message of the mailbox from as the Reader
// does (UID, size and body, in batches of 500), moves each batch to the
// mailbox to, and does nothing else.
func rawFetchMove(b *testing.B, cfg config.Config, from, to string) int {
	c := client(b, cfg)
	if _, err := c.Select(from, nil).Wait(); err != nil {
		b.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
	if err != nil {
		b.Fatal(err)
	}
	uids, count := data.AllUIDs(), 0
	opts := &imap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{
		{Peek: true, Partial: &imap.SectionPartial{Size: cfg.Inbox.MaxMessageBytes}}}}
	for len(uids) > 0 {
		k := min(len(uids), 500)
		count += drain(b, c.Fetch(imap.UIDSetNum(uids[:k]...), opts))
		if _, err := c.Move(imap.UIDSetNum(uids[:k]...), to).Wait(); err != nil {
			b.Fatal(err)
		}
		uids = uids[k:]
	}
	_ = c.Logout().Wait()
	return count
}

func drain(b *testing.B, cmd *imapclient.FetchCommand) int {
	count := 0
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		if _, err := msg.Collect(); err != nil {
			b.Fatal(err)
		}
		count++
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	return count
}

// BenchmarkRead reads one reply (Gmail's text and HTML alternatives,
// quoted-printable), the CPU part of handling a reply.
func BenchmarkRead(b *testing.B) {
	raw, err := os.ReadFile("testdata/replies/gmail_accept.eml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if Read(raw, replyAddress).Decision != workflow.Accept {
			b.Fatal("no decision")
		}
	}
}
