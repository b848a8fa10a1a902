package inbox

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"contactd/config"
	"contactd/metrics"
	"contactd/workflow"

	"github.com/redis/go-redis/v9"
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

// actor decides what a reply means and acts on it through the store.
type actor struct {
	store *workflow.Store
	keys  workflow.Keys
	cfg   config.Config
	log   *slog.Logger
}

// sent is what contactd recorded about one of its emails.
type sent struct{ request, nic, kind, hash string }

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
	if r.Problem == ReasonTwoTokens || (r.Token != "" && ref != nil && ref.hash != "" && workflow.HashToken(r.Token) != ref.hash) {
		return a.reject(ctx, r, ReasonTwoTokens, "")
	}
	return a.decide(ctx, r, ref, retry)
}

// decide identifies the approver, checks the sender, and records the
// decision.
func (a *actor) decide(ctx context.Context, r *Reply, ref *sent, retry bool) (Outcome, error) {
	var req *workflow.Request
	var nic string
	var lookupErr error
	switch {
	case r.Token != "":
		req, nic, lookupErr = a.store.LookupToken(ctx, r.Token)
	case ref != nil && ref.hash != "":
		req, lookupErr = a.store.Get(ctx, ref.request)
		nic = ref.nic
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
		out, err = a.store.DecideByHash(ctx, ref.hash, ref.request[0], r.Decision, workflow.Email)
	}
	switch workflow.ErrorCode(err) {
	case "":
		a.log.Info("reply acted on", "request_id", out.Request.ID, "nic", out.NIC, "decision", string(out.Decision))
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
		if ap, ok := req.Approvals[nic]; ok && ap.Status != string(workflow.Pending) && ap.Channel == workflow.Email {
			return Processed, nil
		}
	}
	return a.reject(ctx, r, ReasonUsedToken, lang)
}

// reference returns the first of our emails the reply refers to.
func (a *actor) reference(ctx context.Context, ids []string) (*sent, error) {
	for i, id := range ids {
		if i >= 10 {
			break
		}
		h, err := a.store.Redis().HGetAll(ctx, a.keys.SentMessage(id)).Result()
		if err != nil {
			return nil, unavailable(err)
		}
		if h["r"] != "" && h["n"] != "" && workflow.ValidRequestID(h["r"]) {
			return &sent{request: h["r"], nic: h["n"], kind: h["k"], hash: h["h"]}, nil
		}
	}
	return nil, nil
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
	first, err := a.store.Redis().SetNX(ctx, a.keys.NotUnderstood(r.From), reason, notUnderstoodEvery).Result()
	if err != nil {
		return "", unavailable(err)
	}
	if !first {
		return Rejected, nil
	}
	inReplyTo := ""
	if r.MessageID != "" {
		inReplyTo = "<" + r.MessageID + ">"
	}
	err = a.store.Enqueue(ctx, workflow.Message{Kind: "not_understood", To: r.From, Language: lang, Reason: mailReason(reason), InReplyTo: inReplyTo})
	if err != nil {
		a.store.Redis().Del(context.WithoutCancel(ctx), a.keys.NotUnderstood(r.From))
		return "", err
	}
	return Rejected, nil
}

// bounce marks the approver of the email a failed delivery report names
// as undeliverable. Reports that match none of our emails change nothing.
func (a *actor) bounce(ctx context.Context, r *Reply) error {
	b := r.Bounce
	if b == nil || !b.Failed {
		return nil
	}
	id, nic, err := a.bounced(ctx, b)
	if err != nil || id == "" {
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

// bounced finds the request and approver of a bounced email: by its
// Message-ID, else its token, else its request id and recipient address.
func (a *actor) bounced(ctx context.Context, b *Bounce) (string, string, error) {
	if ref, err := a.reference(ctx, b.MessageIDs); err != nil || ref != nil {
		if ref == nil {
			return "", "", err
		}
		return ref.request, ref.nic, err
	}
	for _, t := range b.Tokens {
		req, nic, err := a.store.LookupToken(ctx, t)
		if req != nil && nic != "" {
			return req.ID, nic, nil
		}
		if c := workflow.ErrorCode(err); c != workflow.ENotFound && c != workflow.EGone {
			return "", "", err
		}
	}
	for _, id := range b.Requests {
		nic, err := a.approverByAddress(ctx, id, b.Recipients)
		if err != nil || nic != "" {
			return id, nic, err
		}
	}
	return "", "", nil
}

// approverByAddress returns the approver of request id whose email is
// one of addrs.
func (a *actor) approverByAddress(ctx context.Context, id string, addrs []string) (string, error) {
	if !workflow.ValidRequestID(id) {
		return "", nil
	}
	req, err := a.store.Get(ctx, id)
	if workflow.ErrorCode(err) == workflow.ENotFound {
		return "", nil
	} else if err != nil {
		return "", err
	}
	for _, nic := range req.Approvers() {
		c, err := a.store.GetContact(ctx, nic)
		if err != nil {
			continue
		}
		for _, addr := range addrs {
			if strings.EqualFold(c.Email, addr) {
				return nic, nil
			}
		}
	}
	return "", nil
}

// unavailable wraps a Redis error as the workflow's unavailable error.
func unavailable(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	return &workflow.Error{Code: workflow.EUnavailable, Message: "store unavailable: " + err.Error()}
}

// count adds a handled message to the replies metric.
func count(o Outcome) { metrics.Replies.WithLabelValues(string(o)).Inc() }
