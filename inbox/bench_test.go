package inbox

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"contactd/config"
	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// benchReplies is the size of the benchmark's mailbox:
// CONTACTD_BENCH_REPLIES, 300 unless set.
func benchReplies() int {
	if n, err := strconv.Atoi(os.Getenv("CONTACTD_BENCH_REPLIES")); err == nil && n > 0 {
		return n
	}
	return 300
}

// BenchmarkDovecotReplies fills a Dovecot mailbox with accepting replies,
// each to a request of its own in the real Redis, and measures in one
// run: the raw rate of fetching them all with imapclient (the baseline),
// the rate at which a Reader fetches, reads, acts on and moves them, and
// the median delay from APPEND to acted-on while the Reader IDLEs. Run it
// with -benchtime=1x; CONTACTD_BENCH_REPLIES sets the size.
func BenchmarkDovecotReplies(b *testing.B) {
	cfg := dovecot(b)
	n, idles := benchReplies(), 21
	w := newWorld(b, redistest.Real(b), n+idles)
	c := client(b, cfg)
	for i := range n {
		appendMsg(b, c, cfg.IMAP.Mailbox, reply(i, w.tokens[i], "ACCEPT", fmt.Sprintf("bench%d@example.com", i)))
	}
	b.ResetTimer()

	start := time.Now()
	if got := rawFetch(b, cfg); got != n {
		b.Fatalf("raw fetch read %d messages, want %d", got, n)
	}
	raw := time.Since(start)

	cfg.IMAP.PollInterval = config.Duration(30 * time.Second)
	trips := &redistest.RoundTrips{}
	w.b.Client.AddHook(trips)
	start = time.Now()
	runReader(b, w, cfg)
	eventually(b, "mailbox emptied", func() bool { return countIn(b, c, cfg.IMAP.Mailbox) == 0 })
	handled := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(trips.N())/float64(n), "redis-trips/reply")
	for i := range n {
		if w.request(b, i).Status != workflow.Applied {
			b.Fatalf("request %d not applied", i)
		}
	}

	delays := make([]time.Duration, 0, idles)
	for i := n; i < n+idles; i++ {
		sent := time.Now()
		appendMsg(b, c, cfg.IMAP.Mailbox, reply(i, w.tokens[i], "ACCEPT", fmt.Sprintf("idle%d@example.com", i)))
		eventually(b, "reply acted on", func() bool { return w.request(b, i).Status == workflow.Applied })
		delays = append(delays, time.Since(sent))
	}
	slices.Sort(delays)

	b.ReportMetric(float64(n)/raw.Seconds(), "raw-fetch/s")
	b.ReportMetric(float64(n)/handled.Seconds(), "replies/s")
	b.ReportMetric(raw.Seconds()/handled.Seconds(), "ratio")
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "idle-median-ms")
}

// rawFetch reads every message of the mailbox as the Reader does (UID,
// size and body, in batches of 500) and does nothing with them.
func rawFetch(b *testing.B, cfg config.Config) int {
	c := client(b, cfg)
	if _, err := c.Select(cfg.IMAP.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		b.Fatal(err)
	}
	uids, count := data.AllUIDs(), 0
	opts := &imap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{
		{Peek: true, Partial: &imap.SectionPartial{Size: cfg.Inbox.MaxMessageBytes}}}}
	for len(uids) > 0 {
		k := min(len(uids), 500)
		cmd := c.Fetch(imap.UIDSetNum(uids[:k]...), opts)
		count += drain(b, cmd)
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
