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
type Outcome = workflow.ReplyResult

// The three outcomes, named as the metrics label them.
const (
	Processed = workflow.ReplyProcessed // acted on
	Rejected  = workflow.ReplyRejected  // could not be used
	Ignored   = workflow.ReplyIgnored   // automatic
)

// Store is what the inbox needs of workflow.Store: one call decides a
// reply, and claims keep each message to one reader.
type Store interface {
	DecideReply(ctx context.Context, r workflow.Reply) (*workflow.ReplyOutcome, error)
	MessageClaimer(owner string, lease time.Duration) *workflow.MessageClaimer
}

// actor hands what a reply says to the store and logs what came of it.
type actor struct {
	store Store
	cfg   config.Config
	log   *slog.Logger
}

// act acts on a reply; message names it (workflow.Reply.Message). An
// error means the store failed: the decision may have been recorded, and
// acting again on the same message recognises it.
func (a *actor) act(ctx context.Context, r *Reply, message string) (Outcome, error) {
	out, err := a.store.DecideReply(ctx, a.reply(r, message))
	if err != nil {
		return "", err
	}
	a.logOutcome(r, out)
	return out.Result, nil
}

// reply is what the store needs of a reply, with the inbox's settings.
func (a *actor) reply(r *Reply, message string) workflow.Reply {
	in := a.cfg.Inbox
	w := workflow.Reply{
		Message: message, MessageID: r.MessageID, From: r.From,
		Token: r.Token, References: r.References,
		Decision: r.Decision, Problem: workflow.ReplyProblem(r.Problem), Language: r.Language,
		Automatic:       r.Automatic != "" || a.ours(r.From),
		SenderMustMatch: in.RequireSenderMatch,
	}
	if w.Automatic {
		if b := r.Bounce; b != nil {
			w.Report = &workflow.DeliveryReport{Failed: b.Failed, NullSender: r.NullReturnPath,
				MessageIDs: b.MessageIDs, Recipients: b.Recipients}
		}
		return w
	}
	w.Unauthenticated = in.AuthservID != "" && !r.Authenticated(in.AuthservID)
	return w
}

// ours reports whether a message comes from contactd's own address.
func (a *actor) ours(from string) bool {
	return from != "" && strings.EqualFold(from, a.cfg.IMAP.ReplyAddress)
}

// logOutcome writes one line per reply: never its token.
func (a *actor) logOutcome(r *Reply, out *workflow.ReplyOutcome) {
	// What the reply is about: a request, or a hand-over.
	about := []any{"request_id", out.Request}
	if out.Handover != "" {
		about = []any{"handover_id", out.Handover}
	}
	switch out.Result {
	case Processed:
		args := append(about, "nic", out.NIC, "decision", string(out.Decision), "message_id", r.MessageID)
		if out.Again {
			args = append(args, "recorded_by", "an earlier attempt at this message")
		}
		a.log.Info("reply acted on", args...)
	case Rejected:
		args := []any{"reason", string(out.Reason), "message_id", r.MessageID}
		if out.Request != "" || out.Handover != "" {
			args = append(append(args, about...), "nic", out.NIC)
		}
		switch {
		case out.Answer != nil:
			args = append(args, "answered", true)
		case out.Unanswered != "":
			args = append(args, "answered", false, "why_not", out.Unanswered)
		}
		a.log.Info("reply rejected", args...)
	default:
		switch {
		case out.Undeliverable:
			a.log.Info("email undeliverable", append(about, "nic", out.NIC, "message_id", r.MessageID)...)
		case out.Note != "":
			a.log.Info("automatic message ignored: "+out.Note, "message_id", r.MessageID)
		default:
			a.log.Debug("automatic message ignored", "why", r.Automatic, "message_id", r.MessageID)
		}
	}
}
