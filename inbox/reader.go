package inbox

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"contactd/config"
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
	// BatchSize is how many messages are fetched, then flagged and moved,
	// at a time (default 500).
	BatchSize int
	// Workers is how many messages of a batch are acted on at once
	// (default 8): acting is mostly waiting for Redis.
	Workers int
	// MinBackoff and MaxBackoff bound the wait before reconnecting after a
	// mailbox error (default 1s and 1m).
	MinBackoff, MaxBackoff time.Duration
	// ClaimLease is how long a claim by a reader that has not recorded an
	// outcome holds other readers off the message (default 2m).
	ClaimLease time.Duration
}

// Reader reads the reply mailbox and acts on what it finds.
type Reader struct {
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
	setDefault(&p.BatchSize, 500)
	setDefault(&p.Workers, 8)
	setDefault(&p.MinBackoff, time.Second)
	setDefault(&p.MaxBackoff, time.Minute)
	setDefault(&p.ClaimLease, 2*time.Minute)
	if p.Config.Inbox.MaxMessageBytes <= 0 {
		p.Config.Inbox.MaxMessageBytes = config.Default().Inbox.MaxMessageBytes
	}
	if p.Config.IMAP.PollInterval <= 0 {
		p.Config.IMAP.PollInterval = config.Default().IMAP.PollInterval
	}
	log := p.Logger
	owner := make([]byte, 6)
	_, _ = rand.Read(owner)
	return &Reader{
		p:      p,
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

// LastPoll returns when the mailbox was last read through without error
// (zero before the first time).
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
	backoff := r.p.MinBackoff
	for {
		start := time.Now()
		err := r.connection(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > r.p.MaxBackoff {
			backoff = r.p.MinBackoff
		}
		r.log.Warn("mailbox unavailable, reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.p.MaxBackoff)
	}
}

// connection connects, catches up, then polls and IDLEs until an error.
func (r *Reader) connection(ctx context.Context) error {
	c, err := r.connect(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	defer c.Close()
	if err := r.open(ctx, c); err != nil {
		return err
	}
	all := true // the first poll of a connection reads everything left over
	for {
		if err := r.poll(ctx, c, all); err != nil {
			return err
		}
		all = false
		if err := r.wait(ctx, c); err != nil {
			return err
		}
	}
}

// connect dials imap.host:imap.port as imap.tls says and logs in.
func (r *Reader) connect(ctx context.Context) (*imapclient.Client, error) {
	cfg := r.p.Config.IMAP
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	tlsConfig := r.p.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	opts := &imapclient.Options{
		TLSConfig: tlsConfig,
		Dialer:    &net.Dialer{Timeout: 30 * time.Second},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					r.wake()
				}
			},
		},
	}
	var c *imapclient.Client
	var err error
	switch cfg.TLS {
	case "none":
		c, err = imapclient.DialInsecure(addr, opts)
	case "starttls":
		c, err = imapclient.DialStartTLS(addr, opts)
	default:
		c, err = imapclient.DialTLS(addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("inbox: connect to %s: %w", addr, err)
	}
	if err := r.login(ctx, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
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
func (r *Reader) open(ctx context.Context, c *imapclient.Client) error {
	cfg := r.p.Config.IMAP
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return fmt.Errorf("inbox: list mailboxes: %w", err)
	}
	have := map[string]bool{}
	for _, m := range list {
		have[m.Mailbox] = true
	}
	for _, name := range []string{cfg.ProcessedMailbox, cfg.RejectedMailbox, cfg.IgnoredMailbox} {
		if have[name] || name == cfg.Mailbox {
			continue
		}
		if err := c.Create(name, nil).Wait(); err != nil && !alreadyExists(err) {
			return fmt.Errorf("inbox: create mailbox %q: %w", name, err)
		}
		have[name] = true
		r.log.Info("mailbox created", "mailbox", name)
	}
	sel, err := c.Select(cfg.Mailbox, nil).Wait()
	if err != nil {
		return fmt.Errorf("inbox: select %q: %w", cfg.Mailbox, err)
	}
	if r.validity != 0 && sel.UIDValidity != r.validity {
		r.log.Warn("mailbox UIDVALIDITY changed; replies already handled are known by Message-ID",
			"mailbox", cfg.Mailbox, "was", r.validity, "now", sel.UIDValidity)
	}
	r.validity = sel.UIDValidity
	return nil
}

func alreadyExists(err error) bool {
	var e *imap.Error
	return errors.As(err, &e) && e.Code == imap.ResponseCodeAlreadyExists
}

// wait returns after imap.poll_interval, or as soon as new mail arrives
// when the server can IDLE and imap.idle is on.
func (r *Reader) wait(ctx context.Context, c *imapclient.Client) error {
	timer := time.NewTimer(r.p.Config.IMAP.PollInterval.D())
	defer timer.Stop()
	if !r.p.Config.IMAP.IDLE || !c.Caps().Has(imap.CapIdle) {
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-c.Closed():
			return errors.New("inbox: connection closed")
		}
		return nil
	}
	idle, err := c.Idle()
	if err != nil {
		return fmt.Errorf("inbox: idle: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-timer.C:
	case <-r.kick:
	case <-c.Closed():
	}
	if err := idle.Close(); err != nil {
		return fmt.Errorf("inbox: idle: %w", err)
	}
	if err := idle.Wait(); err != nil {
		return fmt.Errorf("inbox: idle: %w", err)
	}
	return nil
}
