package inbox

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"contactd/config"
	"contactd/workflow"
)

// Outcome is where a handled message goes.
type Outcome string

// The three outcomes, named as the metrics label them.
const (
	Processed Outcome = "processed" // acted on
	Rejected  Outcome = "rejected"  // could not be used
	Ignored   Outcome = "ignored"   // automatic
)

// notUnderstoodEvery is how often one sender may be told a reply was not
// understood.
const notUnderstoodEvery = time.Hour

// Store is what the inbox needs of workflow.Store.
type Store interface {
	Lookup(ctx context.Context, token string) (*workflow.Lookup, error)
	LookupSent(ctx context.Context, messageID string) (*workflow.SentMessage, error)
	Get(ctx context.Context, id string) (*workflow.Request, error)
	GetContact(ctx context.Context, nic string) (*workflow.Contact, error)
	IsContactAddress(ctx context.Context, address string) (bool, error)
	Decide(ctx context.Context, token string, d workflow.Decision, ch workflow.Channel) (*workflow.Outcome, error)
	DecideByHash(ctx context.Context, hash string, shardChar byte, d workflow.Decision, ch workflow.Channel) (*workflow.Outcome, error)
	MarkUndeliverable(ctx context.Context, id, nic string) error
	ThrottleAnswer(ctx context.Context, address, reason string, every time.Duration) (bool, error)
	Unthrottle(ctx context.Context, address string)
	Enqueue(ctx context.Context, m workflow.Message) error
	MessageClaimer(owner string, lease time.Duration) *workflow.MessageClaimer
}

// actor decides what a reply means and acts on it through the store.
type actor struct {
	store Store
	cfg   config.Config
	log   *slog.Logger
}

// act acts on a reply. retry says an earlier attempt may have acted
// already (a claim taken over from a daemon that stopped mid-way). An
// error means the store could not be reached: nothing was decided and
// the message should be read again later.
func (a *actor) act(ctx context.Context, r *Reply, retry bool) (Outcome, error) {
	if r.Automatic != "" || a.ours(r.From) {
		return Ignored, a.bounce(ctx, r)
	}
	if r.Problem == ReasonUnreadable || r.Problem == ReasonTooLarge {
		return a.reject(ctx, r, r.Problem, "")
	}
	ref, err := a.reference(ctx, r.References)
	if err != nil {
		return "", err
	}
	if r.Problem == ReasonTwoTokens || (r.Token != "" && ref != nil && ref.TokenHash != "" && workflow.HashToken(r.Token) != ref.TokenHash) {
		return a.reject(ctx, r, ReasonTwoTokens, "")
	}
	return a.decide(ctx, r, ref, retry)
}

// decide identifies the approver, checks the sender, and records the
// decision.
func (a *actor) decide(ctx context.Context, r *Reply, ref *workflow.SentMessage, retry bool) (Outcome, error) {
	var req *workflow.Request
	var nic string
	var lookupErr error
	switch {
	case r.Token != "":
		var l *workflow.Lookup
		if l, lookupErr = a.store.Lookup(ctx, r.Token); l != nil {
			req, nic = l.Request, l.NIC
		}
	case ref != nil && ref.TokenHash != "" && ref.Handover != "":
		nic = ref.NIC
	case ref != nil && ref.TokenHash != "":
		req, lookupErr = a.store.Get(ctx, ref.Request)
		nic = ref.NIC
	default:
		return a.reject(ctx, r, ReasonNoToken, "")
	}
	switch workflow.ErrorCode(lookupErr) {
	case "", workflow.EGone:
	case workflow.ENotFound:
		return a.reject(ctx, r, ReasonUnknownToken, "")
	default:
		return "", lookupErr
	}
	contact, err := a.store.GetContact(ctx, nic)
	if err != nil && workflow.ErrorCode(err) != workflow.ENotFound {
		return "", err
	}
	lang := ""
	if contact != nil {
		lang = contact.Language
	}
	if a.cfg.Inbox.RequireSenderMatch && (contact == nil || !strings.EqualFold(contact.Email, r.From)) {
		return a.reject(ctx, r, ReasonWrongSender, lang)
	}
	if id := a.cfg.Inbox.AuthservID; id != "" && !r.Authenticated(id) {
		return a.reject(ctx, r, ReasonNotAuthenticated, lang)
	}
	if lookupErr != nil {
		return a.gone(ctx, r, req, nic, lang, retry)
	}
	if r.Problem != "" {
		return a.reject(ctx, r, r.Problem, lang)
	}
	var out *workflow.Outcome
	if r.Token != "" {
		out, err = a.store.Decide(ctx, r.Token, r.Decision, workflow.Email)
	} else {
		out, err = a.store.DecideByHash(ctx, ref.TokenHash, (ref.Request + ref.Handover)[0], r.Decision, workflow.Email)
	}
	switch workflow.ErrorCode(err) {
	case "":
		a.log.Info("reply acted on", "request_id", out.ID(), "nic", out.NIC, "decision", string(out.Decision))
		return Processed, nil
	case workflow.EGone:
		return a.gone(ctx, r, req, nic, lang, retry)
	case workflow.ENotFound:
		return a.reject(ctx, r, ReasonUnknownToken, lang)
	}
	return "", err
}

// gone handles a token that is no longer live. When an earlier attempt at
// this very message may have used it, and the approver's answer is on
// record as sent by email, that attempt did act: the message is processed.
func (a *actor) gone(ctx context.Context, r *Reply, req *workflow.Request, nic, lang string, retry bool) (Outcome, error) {
	if retry && req != nil {
		if ap, ok := req.Approvals[nic]; ok && ap.Status != workflow.ApprovalPending && ap.Channel == workflow.Email {
			return Processed, nil
		}
	}
	return a.reject(ctx, r, ReasonUsedToken, lang)
}

// reference returns the first of our emails the reply refers to.
func (a *actor) reference(ctx context.Context, ids []string) (*workflow.SentMessage, error) {
	for i, id := range ids {
		if i >= 10 {
			break
		}
		rec, err := a.store.LookupSent(ctx, id)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			return rec, nil
		}
	}
	return nil, nil
}

// answerable reports whether the sender of a reply that cannot be used may
// be told so: only a contact of the directory, or a sender whose message
// names one of our tokens or one of our emails. Anyone else may be a
// forged sender, and answering would send mail to a stranger
// (backscatter).
func (a *actor) answerable(ctx context.Context, r *Reply) (bool, error) {
	if r.Token != "" {
		_, err := a.store.Lookup(ctx, r.Token)
		switch workflow.ErrorCode(err) {
		case "", workflow.EGone:
			return true, nil
		case workflow.ENotFound:
		default:
			return false, err
		}
	}
	if ref, err := a.reference(ctx, r.References); err != nil || ref != nil {
		return ref != nil, err
	}
	return a.store.IsContactAddress(ctx, r.From)
}

// ours reports whether a message comes from contactd's own address.
func (a *actor) ours(from string) bool {
	return from != "" && strings.EqualFold(from, a.cfg.IMAP.ReplyAddress)
}

// reject sends the sender one not_understood email an hour at most, and
// files the reply as rejected.
func (a *actor) reject(ctx context.Context, r *Reply, reason, lang string) (Outcome, error) {
	a.log.Info("reply rejected", "reason", reason, "message_id", r.MessageID)
	if r.From == "" || r.Automatic != "" {
		return Rejected, nil
	}
	if lang == "" {
		lang = r.Language
	}
	if lang != "en" && lang != "fr" {
		lang = a.cfg.Workflow.DefaultLanguage
	}
	ok, err := a.answerable(ctx, r)
	if err != nil {
		return "", err
	}
	if !ok {
		a.log.Info("reply rejected without an answer: the sender is not known", "message_id", r.MessageID)
		return Rejected, nil
	}
	first, err := a.store.ThrottleAnswer(ctx, r.From, reason, notUnderstoodEvery)
	if err != nil {
		return "", err
	}
	if !first {
		return Rejected, nil
	}
	inReplyTo := ""
	if r.MessageID != "" {
		inReplyTo = "<" + r.MessageID + ">"
	}
	err = a.store.Enqueue(ctx, workflow.Message{Kinds: []workflow.Kind{workflow.KindNotUnderstood}, To: r.From, Language: lang, Reason: mailReason(reason), InReplyTo: inReplyTo})
	if err != nil {
		a.store.Unthrottle(ctx, r.From)
		return "", err
	}
	return Rejected, nil
}

// bounce marks the approver of the email a failed delivery report names
// as undeliverable. Only a report that comes from a mail system (empty
// Return-Path) and names the Message-ID of an email we really sent counts
// (to that email's recipient, when the report lists recipients); anything
// else changes nothing, so a forged report naming a request id or an
// address does nothing.
func (a *actor) bounce(ctx context.Context, r *Reply) error {
	b := r.Bounce
	if b == nil || !b.Failed {
		return nil
	}
	if !r.NullReturnPath {
		a.log.Info("delivery report ignored: its Return-Path is not empty", "message_id", r.MessageID)
		return nil
	}
	id, nic, err := a.bounced(ctx, b)
	if err != nil || id == "" {
		if err == nil {
			a.log.Info("delivery report ignored: it names none of our emails", "message_id", r.MessageID)
		}
		return err
	}
	err = a.store.MarkUndeliverable(ctx, id, nic)
	switch workflow.ErrorCode(err) {
	case "":
		a.log.Info("email undeliverable", "request_id", id, "nic", nic)
	case workflow.ENotFound:
	default:
		return err
	}
	return nil
}

// bounced finds the request and approver of a bounced email by its
// Message-ID, checked against the recipients the report lists.
func (a *actor) bounced(ctx context.Context, b *Bounce) (string, string, error) {
	for i, mid := range b.MessageIDs {
		if i >= 10 {
			break
		}
		rec, err := a.store.LookupSent(ctx, mid)
		if err != nil || rec == nil {
			if err != nil {
				return "", "", err
			}
			continue
		}
		if len(b.Recipients) > 0 {
			c, err := a.store.GetContact(ctx, rec.NIC)
			if err != nil && workflow.ErrorCode(err) != workflow.EUnknownContact {
				return "", "", err
			}
			if c == nil || !containsFold(b.Recipients, c.Email) {
				continue
			}
		}
		return rec.Request + rec.Handover, rec.NIC, nil
	}
	return "", "", nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), strings.TrimSpace(s)) {
			return true
		}
	}
	return false
}
