package inbox

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"contactd/config"
	"contactd/internal/outage"
	"contactd/metrics"
	"contactd/workflow"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Params wires a Reader.
type Params struct {
	Store  Store
	Config config.Config
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TLSConfig replaces the default TLS settings of imap.tls: tls and
	// starttls (a test server's certificate pool, for one).
	TLSConfig *tls.Config
	// BatchSize is the most messages one FETCH asks for (default 100);
	// fewer when inbox.max_message_bytes is large, so that a pass holds
	// at most 64 MiB of messages counted at that size.
	BatchSize int
	// MoveBatch is the most messages one MOVE files (default 500), and
	// MoveDelay how long an outcome may wait for others to be moved
	// with (default 250ms): see pipeline.file.
	MoveBatch int
	MoveDelay time.Duration
	// Workers is how many messages are acted on at once (default 8):
	// acting is mostly waiting for Redis.
	Workers int
	// MinBackoff and MaxBackoff bound the wait before reconnecting after a
	// mailbox error (default 1s and 1m).
	MinBackoff, MaxBackoff time.Duration
	// Timeout is how long the server may take over one exchange (the
	// connection and its greeting, the login, each command, the end of an
	// IDLE) before the connection is given up and made again (default
	// imap.poll_interval, kept within 10s and 1m): a server that stops
	// answering is left within about two poll intervals.
	Timeout time.Duration
	// IdleRestart is the longest an IDLE lasts before it is ended and
	// issued again (default 5m).
	IdleRestart time.Duration
	// OutageLogEvery is how often an outage is logged again while it lasts
	// (default 30s, as for the other dependencies).
	OutageLogEvery time.Duration
	// ClaimLease is how long a claim holds other readers off a message
	// after the last heartbeat of the reader working on it (default 10s;
	// heartbeats come every third of it): a reader that stopped has its
	// messages taken over that long after.
	ClaimLease time.Duration
	// FullPassEvery is how often every message left in the mailbox is
	// read, seen or not (default 5m), besides after each connection and
	// after a pass that left messages to another reader.
	FullPassEvery time.Duration
	// Metrics receives the reader's counts (default: a registry of its own).
	Metrics *metrics.Metrics
}

// Reader reads the reply mailbox and acts on what it finds.
type Reader struct {
	met      *metrics.Metrics
	p        Params
	log      *slog.Logger
	act      *actor
	claims   *workflow.MessageClaimer
	kick     chan struct{}
	lastPoll atomic.Int64
	validity uint32
}

// New returns a Reader of the mailbox of p.Config.IMAP.
func New(p Params) (*Reader, error) {
	if p.Store == nil {
		return nil, errors.New("inbox: no store")
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	setDefault(&p.BatchSize, 100)
	setDefault(&p.MoveBatch, 500)
	setDefault(&p.MoveDelay, 250*time.Millisecond)
	setDefault(&p.Workers, 8)
	setDefault(&p.MinBackoff, time.Second)
	setDefault(&p.MaxBackoff, time.Minute)
	setDefault(&p.ClaimLease, 10*time.Second)
	setDefault(&p.FullPassEvery, 5*time.Minute)
	if p.Config.Inbox.MaxMessageBytes <= 0 {
		p.Config.Inbox.MaxMessageBytes = config.Default().Inbox.MaxMessageBytes
	}
	if p.Config.IMAP.PollInterval <= 0 {
		p.Config.IMAP.PollInterval = config.Default().IMAP.PollInterval
	}
	setDefault(&p.Timeout, min(max(p.Config.IMAP.PollInterval.D(), 10*time.Second), time.Minute))
	setDefault(&p.IdleRestart, 5*time.Minute)
	setDefault(&p.OutageLogEvery, 30*time.Second)
	p.Metrics = metrics.Or(p.Metrics)
	p.Metrics.PollInterval.Set(p.Config.IMAP.PollInterval.D().Seconds())
	log := p.Logger
	owner := make([]byte, 6)
	_, _ = rand.Read(owner)
	return &Reader{
		p:      p,
		met:    p.Metrics,
		log:    log,
		act:    &actor{store: p.Store, cfg: p.Config, log: log},
		kick:   make(chan struct{}, 1),
		claims: p.Store.MessageClaimer(hex.EncodeToString(owner), p.ClaimLease),
	}, nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// LastPoll returns when the mailbox was last read well: a poll that found
// nothing to do, or a batch of messages flagged and moved (zero before the
// first time).
func (r *Reader) LastPoll() time.Time {
	ms := r.lastPoll.Load()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Run reads the mailbox until ctx is cancelled. Mailbox errors never end
// it: it reconnects after a backoff that doubles up to MaxBackoff, and
// catches up on everything left in the mailbox. It returns nil when ctx
// is cancelled.
func (r *Reader) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	heartbeat, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { r.claims.KeepAlive(heartbeat) })
	backoff := r.p.MinBackoff
	down := outage.New("imap", r.log, r.p.OutageLogEvery)
	down.OnChange(func(up bool) {
		if !up {
			r.met.IMAPUp.Set(0)
		}
	})
	for {
		reached, err := r.connection(ctx, down)
		if ctx.Err() != nil {
			return nil
		}
		if reached {
			backoff = r.p.MinBackoff
		}
		down.Fail(err)
		r.log.Debug("mailbox unavailable, reconnecting", "err", err, "in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.p.MaxBackoff)
	}
}

// connection connects, catches up, then reads the mailbox each time the
// server tells of new mail (IDLE) or imap.poll_interval has passed, until
// an error. The mailbox counts as up (an outage ends, contactd_imap_up)
// as soon as the server answers the first search. It reports whether the
// server answered one.
func (r *Reader) connection(ctx context.Context, down *outage.Tracker) (bool, error) {
	s, err := r.connect(ctx)
	if err != nil {
		return false, err
	}
	defer s.close()
	sel, err := r.open(s)
	if err != nil {
		return false, err
	}
	r.log.Info("inbox connected", "mailbox", r.p.Config.IMAP.Mailbox, "messages", sel.NumMessages, "uidvalidity", sel.UIDValidity)
	reached := false
	up := func() {
		if !reached {
			reached = true
			down.OK()
			r.met.IMAPUp.Set(1)
		}
	}
	full, lastFull := true, time.Time{}
	for first := true; ; first = false {
		if full {
			lastFull = time.Now()
		}
		st, err := r.pass(ctx, s, full, up)
		r.logPass(st, first, err)
		if err != nil {
			return reached, err
		}
		every := r.p.Config.IMAP.PollInterval.D()
		// Messages left to another reader are looked at again once its
		// claim would have lapsed, seen or not: it may have stopped
		// before moving them.
		full = st.left[leftBusy]+st.left[leftFailed] > 0
		if full {
			every = min(every, r.p.ClaimLease+time.Second)
		}
		if err := r.wait(s, every); err != nil {
			return true, err
		}
		full = full || time.Since(lastFull) >= r.p.FullPassEvery
	}
}

// catchUpLog is the number of messages a pass must find to be logged as
// a backlog caught up (the first pass of a connection always is).
const catchUpLog = 100

// logPass logs a pass that caught up with a backlog.
func (r *Reader) logPass(st *passStats, first bool, err error) {
	if (!first && st.found < catchUpLog) || (err != nil && st.found == 0) {
		return
	}
	args := []any{"mailbox", r.p.Config.IMAP.Mailbox, "found", st.found, "full", st.full,
		"processed", st.acted[Processed], "rejected", st.acted[Rejected], "ignored", st.acted[Ignored],
		"moved", st.moved, "left", st.leftCount(), "poison", st.poison, "unfiled", st.unfiled,
		"took", st.took.Round(time.Millisecond).String()}
	if st.took > 0 {
		args = append(args, "per_second", int(float64(st.found)/st.took.Seconds()))
	}
	if err != nil {
		r.log.Warn("inbox pass interrupted", append(args, "err", err)...)
		return
	}
	r.log.Info("inbox caught up", args...)
}

// connect opens a session with the server and logs in.
func (r *Reader) connect(ctx context.Context) (*session, error) {
	cfg := r.p.Config.IMAP
	tlsConfig := r.p.TLSConfig.Clone()
	if tlsConfig == nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = cfg.Host
	}
	opts := &imapclient.Options{
		TLSConfig: tlsConfig,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					r.wake()
				}
			},
		},
	}
	s, err := r.dial(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := r.login(ctx, s); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// wake asks the loop for a poll now; it never blocks.
func (r *Reader) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// open creates the outcome mailboxes when missing and selects the one
// replies arrive in, noting a change of UIDVALIDITY.
func (r *Reader) open(s *session) (*imap.SelectData, error) {
	cfg := r.p.Config.IMAP
	var list []*imap.ListData
	err := s.exchange("list mailboxes", func() (err error) {
		list, err = s.c.List("", "*", nil).Collect()
		return err
	})
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, m := range list {
		have[m.Mailbox] = true
	}
	for _, name := range []string{cfg.ProcessedMailbox, cfg.RejectedMailbox, cfg.IgnoredMailbox} {
		if have[name] || name == cfg.Mailbox {
			continue
		}
		err := s.exchange(fmt.Sprintf("create mailbox %q", name), func() error {
			if err := s.c.Create(name, nil).Wait(); err != nil && !alreadyExists(err) {
				return err
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		have[name] = true
		r.log.Info("mailbox created", "mailbox", name)
	}
	return r.selectMailbox(s)
}

// selectMailbox selects imap.mailbox and notes a change of UIDVALIDITY.
func (r *Reader) selectMailbox(s *session) (*imap.SelectData, error) {
	cfg := r.p.Config.IMAP
	var sel *imap.SelectData
	err := s.exchange(fmt.Sprintf("select %q", cfg.Mailbox), func() (err error) {
		sel, err = s.c.Select(cfg.Mailbox, nil).Wait()
		return err
	})
	if err != nil {
		return nil, err
	}
	if r.validity != 0 && sel.UIDValidity != r.validity {
		r.log.Warn("mailbox UIDVALIDITY changed; replies already handled are known by Message-ID",
			"mailbox", cfg.Mailbox, "was", r.validity, "now", sel.UIDValidity)
	}
	r.validity = sel.UIDValidity
	return sel, nil
}

func alreadyExists(err error) bool {
	var e *imap.Error
	return errors.As(err, &e) && e.Code == imap.ResponseCodeAlreadyExists
}

// wait returns after every, or as soon as new mail arrives when the
// server can IDLE and imap.idle is on. An IDLE lasts at most IdleRestart,
// well before a server may log an idle client out (30 minutes): the next
// poll then issues a new one.
func (r *Reader) wait(s *session, every time.Duration) error {
	if !r.p.Config.IMAP.IDLE || !s.c.Caps().Has(imap.CapIdle) {
		return r.sleep(s, every)
	}
	var idle *imapclient.IdleCommand
	err := s.exchange("idle", func() (err error) {
		idle, err = s.c.Idle()
		return err
	})
	if err != nil {
		return err
	}
	timer := time.NewTimer(min(every, r.p.IdleRestart))
	defer timer.Stop()
	select {
	case <-s.ctx.Done():
	case <-timer.C:
	case <-r.kick:
	case <-s.c.Closed():
	}
	return s.exchange("idle done", func() error {
		if err := idle.Close(); err != nil {
			return err
		}
		return idle.Wait()
	})
}

// sleep waits for d, or until the session ends.
func (r *Reader) sleep(s *session, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-s.ctx.Done():
		return context.Cause(s.ctx)
	case <-timer.C:
		return nil
	case <-s.c.Closed():
		return errors.New("inbox: connection closed")
	}
}
