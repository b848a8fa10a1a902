package inbox

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"contactd/workflow"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/textproto"
)

// A pass reads the mailbox once, as a pipeline: the connection fetches
// the messages a chunk at a time and claims each chunk in one round
// trip; Params.Workers goroutines read and act on the messages; a filer
// records the outcomes and flags and moves the messages, a batch at a
// time, while the next messages are fetched and acted on. At most a
// budget of messages is held in memory (fetched, not yet acted on).

// maxAttempts is how many attempts at a message may fail (panic, or their
// reader stop mid-way) before it is set aside as rejected (SPEC 9).
const maxAttempts = 3

// memoryBudget bounds the bytes of messages held at once by a pass,
// counting each at inbox.max_message_bytes.
const memoryBudget = 64 << 20

// fetched is one message read from the server on its way through a pass.
type fetched struct {
	uid       imap.UID
	raw       []byte
	size      int64
	messageID string
	claim     *workflow.MessageClaim
}

// handled is what became of one message of a pass.
type handled struct {
	uid imap.UID
	// outcome is the mailbox to move the message to; "" leaves it.
	outcome Outcome
	// claim, when set, is recorded with the outcome before the move.
	claim *workflow.MessageClaim
	// left says why a message stays: leftBusy, leftError, leftFailed.
	left   string
	poison bool
}

// Why a message stays in the mailbox.
const (
	leftBusy   = "busy"   // another reader is on it
	leftError  = "error"  // the store failed: tried again at the next pass
	leftFailed = "failed" // acting on it panicked: tried again, up to maxAttempts
)

// passStats counts what a pass did, for the log.
type passStats struct {
	full    bool
	took    time.Duration
	found   int
	acted   map[Outcome]int
	moved   int // filed from an earlier attempt's outcome
	left    map[string]int
	poison  int
	unfiled int // acted on, not filed (the connection or the store failed)
	start   time.Time
}

func (st *passStats) leftCount() int {
	n := 0
	for _, v := range st.left {
		n += v
	}
	return n
}

// pass reads the unseen messages of the selected mailbox, or every
// message left in it when full is true. searched is called once the
// server has answered the search.
func (r *Reader) pass(ctx context.Context, s *session, full bool, searched func()) (*passStats, error) {
	st := &passStats{full: full, start: time.Now(), acted: map[Outcome]int{}, left: map[string]int{}}
	criteria := &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}
	if !full {
		criteria.NotFlag = append(criteria.NotFlag, imap.FlagSeen)
	}
	var data *imap.SearchData
	err := s.exchange("search", func() (err error) {
		data, err = s.c.UIDSearch(criteria, nil).Wait()
		return err
	})
	if err != nil {
		return st, err
	}
	searched()
	uids := data.AllUIDs()
	st.found = len(uids)
	if len(uids) == 0 {
		r.polled()
		return st, nil
	}
	p := r.newPipeline(ctx, s, st, len(uids))
	err = p.fetchAll(ctx, uids)
	p.finish()
	st.took = time.Since(st.start)
	if err == nil && p.fileErr == nil && st.left[leftError] == 0 && ctx.Err() == nil {
		r.polled()
	}
	return st, cmp.Or(err, p.fileErr)
}

// polled notes a good read of the mailbox (Reader.LastPoll).
func (r *Reader) polled() {
	now := r.p.Now()
	r.lastPoll.Store(now.UnixMilli())
	r.met.LastPoll.Set(float64(now.Unix()))
}

// pipeline is one pass's goroutines and their channels.
type pipeline struct {
	ctx     context.Context
	r       *Reader
	s       *session
	st      *passStats
	slots   chan struct{} // one per message held: fetched, not yet acted on
	chunk   int
	queue   chan *fetched
	results chan handled
	workers sync.WaitGroup
	filer   sync.WaitGroup
	fileErr error // set by the filer only, read after it ended
}

func (r *Reader) newPipeline(ctx context.Context, s *session, st *passStats, n int) *pipeline {
	budget := max(2*r.p.Workers, min(2*r.p.BatchSize, memoryBudget/int(max(r.p.Config.Inbox.MaxMessageBytes, 1))))
	p := &pipeline{ctx: ctx, r: r, s: s, st: st,
		slots:   make(chan struct{}, budget),
		chunk:   max(1, min(r.p.BatchSize, budget/2)),
		queue:   make(chan *fetched, budget),
		results: make(chan handled, n),
	}
	for range r.p.Workers {
		p.workers.Go(p.work)
	}
	p.filer.Go(p.file)
	return p
}

// finish waits for the workers and the filer to end.
func (p *pipeline) finish() {
	close(p.queue)
	p.workers.Wait()
	close(p.results)
	p.filer.Wait()
}

// fetchAll fetches the messages a chunk at a time, each once the budget
// has room for all of it, so that the server never waits on the workers
// in the middle of a fetch.
func (p *pipeline) fetchAll(ctx context.Context, uids []imap.UID) error {
	for len(uids) > 0 {
		n := min(len(uids), p.chunk)
		for range n {
			select {
			case p.slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			case <-p.s.ctx.Done():
				return context.Cause(p.s.ctx)
			}
		}
		batch, err := p.r.fetch(p.s, uids[:n])
		batch = batch[:min(len(batch), n)]
		for range n - len(batch) {
			<-p.slots // not returned by the server (expunged meanwhile)
		}
		p.claim(ctx, batch)
		if err != nil {
			return err
		}
		uids = uids[n:]
	}
	return nil
}

// fetchOptions asks for what reading a reply needs, up to
// inbox.max_message_bytes of it.
func (r *Reader) fetchOptions() *imap.FetchOptions {
	return &imap.FetchOptions{
		UID:        true,
		RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{
			{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: r.p.Config.Inbox.MaxMessageBytes}},
		},
	}
}

// fetch fetches some messages. The server has the timeout to send each
// message, not the whole chunk.
func (r *Reader) fetch(s *session, uids []imap.UID) ([]*fetched, error) {
	var cmd *imapclient.FetchCommand
	_ = s.exchange("fetch", func() error {
		cmd = s.c.Fetch(imap.UIDSetNum(uids...), r.fetchOptions())
		return nil
	})
	var out []*fetched
	for {
		var buf *imapclient.FetchMessageBuffer
		err := s.exchange("fetch", func() error {
			if msg := cmd.Next(); msg != nil {
				b, err := msg.Collect()
				buf = b
				return err
			}
			return nil
		})
		if err != nil {
			_ = cmd.Close()
			return out, err
		}
		if buf == nil {
			break
		}
		m := &fetched{uid: buf.UID, size: buf.RFC822Size}
		if len(buf.BodySection) > 0 {
			m.raw = buf.BodySection[0].Bytes
		}
		if m.size == 0 {
			m.size = int64(len(m.raw))
		}
		out = append(out, m)
	}
	return out, s.exchange("fetch", cmd.Close)
}

// claim claims a chunk of fetched messages in one round trip and hands
// the reader's to the workers; the others go straight to the filer. A
// store error leaves the whole chunk for a later pass.
func (p *pipeline) claim(ctx context.Context, batch []*fetched) {
	if len(batch) == 0 {
		return
	}
	ids := make([][]string, len(batch))
	for i, m := range batch {
		m.messageID = headerMessageID(m.raw)
		ids[i] = p.r.claimIDs(m)
	}
	claimed, err := p.r.claims.Take(ctx, ids...)
	if err != nil {
		if ctx.Err() == nil {
			p.r.log.Warn("message left for a later poll: the store failed", "messages", len(batch), "err", err)
		}
		for _, m := range batch {
			p.done(handled{uid: m.uid, left: leftError})
		}
		return
	}
	for i, m := range batch {
		c := claimed[i]
		switch c.State {
		case workflow.ClaimMine:
			m.claim = c.Claim
			p.queue <- m // never blocks: the queue holds the whole budget
		case workflow.ClaimDone:
			p.r.log.Debug("message acted on already", "uid", m.uid, "message_id", m.messageID, "outcome", c.Outcome)
			p.done(handled{uid: m.uid, outcome: Outcome(c.Outcome)})
		default:
			p.r.log.Debug("message claimed by another reader", "uid", m.uid, "message_id", m.messageID)
			p.done(handled{uid: m.uid, left: leftBusy})
		}
	}
}

// done hands a message's fate to the filer and frees its place.
func (p *pipeline) done(h handled) {
	<-p.slots
	p.results <- h // never blocks: results holds every message of the pass
}

// claimIDs names a message for its claim: this copy in this mailbox, and
// its Message-ID when it has one.
func (r *Reader) claimIDs(m *fetched) []string {
	ids := []string{r.uidID(m.uid)}
	if m.messageID != "" {
		ids = append(ids, "mid:"+m.messageID)
	}
	return ids
}

func (r *Reader) uidID(uid imap.UID) string {
	cfg := r.p.Config.IMAP
	return fmt.Sprintf("uid:%s@%s/%s:%d:%d", cfg.Username, cfg.Host, cfg.Mailbox, r.validity, uid)
}

// headerMessageID reads the Message-ID of a raw message from its header
// alone, or "" when it has none or the header cannot be read.
func headerMessageID(raw []byte) (id string) {
	defer func() {
		if recover() != nil {
			id = ""
		}
	}()
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil && h.Len() == 0 {
		return ""
	}
	return messageID(h.Get("Message-Id"))
}

// work reads and acts on the messages of the queue.
func (p *pipeline) work() {
	for m := range p.queue {
		p.done(p.r.handle(p.ctx, m))
	}
}

// file records the outcomes and moves the messages in batches: the
// outcomes once recordBatch of them wait (one round trip), the messages
// once Params.MoveBatch of them wait; both whenever the workers are done
// or what waits has waited Params.MoveDelay. Servers pay for a MOVE per
// command as well as per message (Dovecot rewrites its index of both
// mailboxes), so a backlog is moved hundreds at a time, while a reply
// arriving alone is moved at once, its pass being over.
func (p *pipeline) file() {
	var waiting []handled // outcomes not recorded yet
	pending := map[Outcome][]imap.UID{}
	count, since := 0, time.Time{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for open := true; open; {
		select {
		case h, ok := <-p.results:
			if !ok {
				open = false
				break
			}
			waiting = append(append(waiting, h), p.drain()...)
		case <-timer.C:
		}
		if len(waiting) > 0 && since.IsZero() {
			since = time.Now()
			timer.Reset(p.r.p.MoveDelay)
		}
		late := !since.IsZero() && time.Since(since) >= p.r.p.MoveDelay
		if len(waiting) >= recordBatch || (len(waiting) > 0 && (!open || late)) {
			for o, uids := range p.record(waiting) {
				pending[o] = append(pending[o], uids...)
				count += len(uids)
			}
			waiting = nil
		}
		if !open || late || count >= p.r.p.MoveBatch {
			if count > 0 {
				p.moveAll(pending)
			}
			pending, count = map[Outcome][]imap.UID{}, 0
			if len(waiting) == 0 {
				since = time.Time{}
			}
		}
	}
}

// recordBatch is how many outcomes are recorded in one round trip, at
// most, while a backlog drains.
const recordBatch = 64

// drain takes the results waiting, without blocking.
func (p *pipeline) drain() []handled {
	var chunk []handled
	for {
		select {
		case h, ok := <-p.results:
			if !ok {
				return chunk
			}
			chunk = append(chunk, h)
		default:
			return chunk
		}
	}
}

// record counts a chunk of results, records the new outcomes in one
// round trip, and returns the messages to move. When the outcomes could
// not be recorded, their messages stay, and the next pass finds their
// claims.
func (p *pipeline) record(chunk []handled) map[Outcome][]imap.UID {
	r := p.r
	var claims []*workflow.MessageClaim
	var outcomes []string
	for _, h := range chunk {
		p.st.count(h)
		if h.claim != nil {
			claims = append(claims, h.claim)
			outcomes = append(outcomes, string(h.outcome))
		}
	}
	if len(claims) > 0 {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), r.p.Timeout)
		err := r.claims.Record(ctx, claims, outcomes)
		cancel()
		if err != nil {
			r.log.Warn("outcomes not recorded: the messages are read again later", "messages", len(claims), "err", err)
			chunk = withoutRecorded(chunk)
		} else {
			for _, o := range outcomes {
				r.met.Replies.WithLabelValues(o).Inc()
			}
		}
	}
	byOutcome := map[Outcome][]imap.UID{}
	for _, h := range chunk {
		if h.outcome != "" {
			byOutcome[h.outcome] = append(byOutcome[h.outcome], h.uid)
		}
	}
	return byOutcome
}

// moveAll flags and moves messages whose outcome is known. Once moving
// failed (the connection is lost) nothing more is moved: a later pass
// moves them.
func (p *pipeline) moveAll(byOutcome map[Outcome][]imap.UID) {
	if p.fileErr == nil {
		p.fileErr = p.r.move(p.s, byOutcome)
	}
	if p.fileErr != nil {
		for _, uids := range byOutcome {
			p.st.unfiled += len(uids)
		}
		return
	}
	p.r.polled()
}

// withoutRecorded drops the messages whose outcome was to be recorded:
// they stay, and the next pass finds their claim.
func withoutRecorded(chunk []handled) []handled {
	var out []handled
	for _, h := range chunk {
		if h.claim == nil {
			out = append(out, h)
		}
	}
	return out
}

func (st *passStats) count(h handled) {
	switch {
	case h.poison:
		st.poison++
		st.acted[h.outcome]++
	case h.claim != nil:
		st.acted[h.outcome]++
	case h.outcome != "":
		st.moved++
	default:
		st.left[h.left]++
	}
}

// move flags the messages \Seen and moves them, one command per outcome
// mailbox.
func (r *Reader) move(s *session, byOutcome map[Outcome][]imap.UID) error {
	var seen []imap.UID
	for _, uids := range byOutcome {
		seen = append(seen, uids...)
	}
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
	err := s.exchange("flag seen", func() error {
		return s.c.Store(imap.UIDSetNum(seen...), store, nil).Close()
	})
	if err != nil {
		return err
	}
	for o, uids := range byOutcome {
		err := s.exchange("move to "+r.mailbox(o), func() error {
			_, err := s.c.Move(imap.UIDSetNum(uids...), r.mailbox(o)).Wait()
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// mailbox names the mailbox of an outcome.
func (r *Reader) mailbox(o Outcome) string {
	switch o {
	case Processed:
		return r.p.Config.IMAP.ProcessedMailbox
	case Rejected:
		return r.p.Config.IMAP.RejectedMailbox
	}
	return r.p.Config.IMAP.IgnoredMailbox
}
