package inbox

import (
	"cmp"
	"context"
	"fmt"
	"sync"

	"contactd/workflow"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// poll reads the unseen messages of the selected mailbox (every message
// left in it when all is true), in batches: fetch, act, then one STORE
// \Seen and one MOVE per outcome mailbox.
func (r *Reader) poll(ctx context.Context, s *session, all bool) error {
	criteria := &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}
	if !all {
		criteria.NotFlag = append(criteria.NotFlag, imap.FlagSeen)
	}
	var data *imap.SearchData
	err := s.exchange("search", func() (err error) {
		data, err = s.c.UIDSearch(criteria, nil).Wait()
		return err
	})
	if err != nil {
		return err
	}
	uids := data.AllUIDs()
	clean := true
	for len(uids) > 0 && ctx.Err() == nil {
		n := min(len(uids), r.p.BatchSize)
		ok, err := r.batch(ctx, s, uids[:n])
		if err != nil {
			return err
		}
		clean = clean && ok
		uids = uids[n:]
	}
	if clean && ctx.Err() == nil {
		r.lastPoll.Store(r.p.Now().UnixMilli())
		r.met.LastPoll.Set(float64(r.p.Now().Unix()))
	}
	return nil
}

// batch fetches, acts on and files one batch of messages. Messages are
// handled by Params.Workers goroutines as they arrive. It reports false
// when the store was unavailable for some of them: those stay in the
// mailbox for a later poll.
func (r *Reader) batch(ctx context.Context, s *session, uids []imap.UID) (bool, error) {
	opts := &imap.FetchOptions{
		UID:        true,
		RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{
			{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: r.p.Config.Inbox.MaxMessageBytes}},
		},
	}
	var (
		mu       sync.Mutex
		outcomes = map[Outcome][]imap.UID{}
		clean    = true
		wg       sync.WaitGroup
		queue    = make(chan *imapclient.FetchMessageBuffer)
	)
	for range r.p.Workers {
		wg.Go(func() {
			for buf := range queue {
				o, err := r.handle(ctx, buf)
				mu.Lock()
				if err != nil {
					clean = false
					if ctx.Err() == nil {
						r.log.Warn("message left for a later poll", "uid", buf.UID, "err", err)
					}
				} else if o != "" {
					outcomes[o] = append(outcomes[o], buf.UID)
				}
				mu.Unlock()
			}
		})
	}
	err := r.fetch(s, uids, opts, queue)
	close(queue)
	wg.Wait()
	if err != nil {
		return false, err
	}
	return clean, r.file(s, outcomes)
}

// fetch fetches the messages and hands each to the queue as it arrives.
// The server has the timeout to send each message, not the whole batch;
// waiting for the queue does not count.
func (r *Reader) fetch(s *session, uids []imap.UID, opts *imap.FetchOptions, queue chan<- *imapclient.FetchMessageBuffer) error {
	var cmd *imapclient.FetchCommand
	_ = s.exchange("fetch", func() error {
		cmd = s.c.Fetch(imap.UIDSetNum(uids...), opts)
		return nil
	})
	var err error
	for {
		var buf *imapclient.FetchMessageBuffer
		err = s.exchange("fetch", func() error {
			if msg := cmd.Next(); msg != nil {
				b, err := msg.Collect()
				buf = b
				return err
			}
			return nil
		})
		if err != nil || buf == nil {
			break
		}
		queue <- buf
	}
	if cerr := s.exchange("fetch", cmd.Close); cerr != nil || err != nil {
		return cmp.Or(cerr, err)
	}
	return nil
}

// handle reads one fetched message, claims it, and acts on it unless it
// was acted on already. It returns the mailbox to move it to, or "" to
// leave it where it is (another reader is on it).
func (r *Reader) handle(ctx context.Context, buf *imapclient.FetchMessageBuffer) (Outcome, error) {
	var raw []byte
	if len(buf.BodySection) > 0 {
		raw = buf.BodySection[0].Bytes
	}
	var reply *Reply
	size := buf.RFC822Size
	if size == 0 {
		size = int64(len(raw))
	}
	if size > r.p.Config.Inbox.MaxMessageBytes {
		reply = ReadHeader(raw)
	} else {
		reply = Read(raw, r.p.Config.IMAP.ReplyAddress)
	}
	ids := []string{fmt.Sprintf("uid:%s@%s/%s:%d:%d", r.p.Config.IMAP.Username, r.p.Config.IMAP.Host,
		r.p.Config.IMAP.Mailbox, r.validity, buf.UID)}
	if reply.MessageID != "" {
		ids = append(ids, "mid:"+reply.MessageID)
	}
	cl, state, done, retry, err := r.claims.Take(ctx, ids)
	switch {
	case err != nil:
		return "", err
	case state == workflow.ClaimBusy:
		r.log.Debug("message claimed by another reader", "uid", buf.UID, "message_id", reply.MessageID)
		return "", nil
	case state == workflow.ClaimDone:
		r.log.Debug("message acted on already", "uid", buf.UID, "message_id", reply.MessageID, "outcome", done)
		return Outcome(done), nil
	}
	o, err := r.act.act(ctx, reply, retry)
	if err != nil {
		r.claims.Release(ctx, cl)
		return "", err
	}
	if err := r.claims.Record(ctx, cl, string(o)); err != nil {
		// The claim goes stale and a later read acts again, knowing it may have.
		return "", err
	}
	r.met.Replies.WithLabelValues(string(o)).Inc()
	return o, nil
}

// file flags the handled messages \Seen and moves them, one command per
// outcome mailbox.
func (r *Reader) file(s *session, outcomes map[Outcome][]imap.UID) error {
	var seen []imap.UID
	for _, uids := range outcomes {
		seen = append(seen, uids...)
	}
	if len(seen) == 0 {
		return nil
	}
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
	err := s.exchange("flag seen", func() error {
		return s.c.Store(imap.UIDSetNum(seen...), store, nil).Close()
	})
	if err != nil {
		return err
	}
	for o, uids := range outcomes {
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
