package workflow_test

import (
	"context"
	"net"
	"os"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"

	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/redis/go-redis/v9"
)

// replyWorld is a request on example.com by ad1-ovh naming nw1-ovh tech:
// two approvers, each sent a validation email.
type replyWorld struct {
	b      redistest.Backend
	s      *workflow.Store
	id     string
	tokens map[string]string // by nic
	sent   map[string]string // Message-ID of the email to each nic
}

func newReplyWorld(t *testing.T, b redistest.Backend) *replyWorld {
	t.Helper()
	s := newStore(t, b, newClock())
	seed(t, s)
	r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	w := &replyWorld{b: b, s: s, id: r.ID, tokens: map[string]string{}, sent: map[string]string{}}
	// The mailer's work: claim the validation emails, issue their
	// tokens, record them as sent; each email's Message-ID names its token.
	es := outboxtest.Claim(t, s, outboxtest.Of(r.ID, "", workflow.KindValidation))
	toks := outboxtest.Issue(t, s, es)
	outboxtest.Settle(t, s, es, workflow.ActSent)
	for i, e := range es {
		e.TokenRef = workflow.HashToken(toks[i])
		w.tokens[e.NIC], w.sent[e.NIC] = toks[i], workflow.MessageID(e, workflow.KindValidation, "contactd.test")
	}
	if len(w.tokens) != 2 {
		t.Fatalf("validation emails sent to %v, want ad1-ovh and nw1-ovh", w.tokens)
	}
	return w
}

func (w *replyWorld) decide(t *testing.T, r workflow.Reply) *workflow.ReplyOutcome {
	t.Helper()
	out, err := w.s.DecideReply(context.Background(), r)
	if err != nil {
		t.Fatalf("DecideReply: %v", err)
	}
	return out
}

func (w *replyWorld) notUnderstood(t *testing.T) []workflow.Message {
	var out []workflow.Message
	for _, m := range outbox(t, w.b) {
		if len(m.Kinds) == 1 && m.Kinds[0] == workflow.KindNotUnderstood {
			out = append(out, m)
		}
	}
	return out
}

// DecideReply returns, in one call, everything needed to file a reply and
// what was done about its sender.
func TestDecideReply(t *testing.T) {
	const admin, newTech = "admin@example.com", "new1@example.net"
	cases := []struct {
		name  string
		reply func(w *replyWorld) workflow.Reply
		check func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome)
	}{
		{"accept with the token", func(w *replyWorld) workflow.Reply {
			return workflow.Reply{Message: "mid:a", From: admin, Token: w.tokens["ad1-ovh"], Decision: workflow.Accept, SenderMustMatch: true}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			want := workflow.ReplyOutcome{Result: workflow.ReplyProcessed, Request: w.id, NIC: "ad1-ovh",
				Decision: workflow.Accept, Status: workflow.Pending}
			if *out != want {
				t.Errorf("outcome = %+v, want %+v", *out, want)
			}
		}},
		{"accept with the token, answering our email", func(w *replyWorld) workflow.Reply {
			return workflow.Reply{Message: "mid:a2", From: newTech, Token: w.tokens["nw1-ovh"], References: []string{w.sent["nw1-ovh"]},
				Decision: workflow.Accept, SenderMustMatch: true}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			want := workflow.ReplyOutcome{Result: workflow.ReplyProcessed, Request: w.id, NIC: "nw1-ovh",
				Decision: workflow.Accept, Status: workflow.Pending}
			if *out != want {
				t.Errorf("outcome = %+v, want %+v", *out, want)
			}
		}},
		{"a used token, answering our email", func(w *replyWorld) workflow.Reply {
			if _, err := w.s.Decide(context.Background(), w.tokens["nw1-ovh"], workflow.Accept, workflow.Web); err != nil {
				panic(err)
			}
			return workflow.Reply{Message: "mid:a3", From: newTech, Token: w.tokens["nw1-ovh"], References: []string{w.sent["nw1-ovh"]},
				Decision: workflow.Accept, SenderMustMatch: true}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			if out.Result != workflow.ReplyRejected || out.Reason != workflow.ReplyDeadToken || out.Answer == nil || out.Answer.Language != "fr" {
				t.Errorf("outcome = %+v, answer %+v; want rejected dead_token, answered in French", *out, out.Answer)
			}
		}},
		{"a token used by email by another message, whose record is gone", func(w *replyWorld) workflow.Reply {
			if _, err := w.s.Decide(context.Background(), w.tokens["nw1-ovh"], workflow.Accept, workflow.Email); err != nil {
				panic(err)
			}
			return workflow.Reply{Message: "mid:a4", From: newTech, Token: w.tokens["nw1-ovh"], References: []string{w.sent["nw1-ovh"]},
				Decision: workflow.Accept, SenderMustMatch: true}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			if out.Result != workflow.ReplyRejected || out.Reason != workflow.ReplyDeadToken || out.Again {
				t.Errorf("outcome = %+v, want rejected dead_token: this message never decided", *out)
			}
		}},
		{"decline through the email answered", func(w *replyWorld) workflow.Reply {
			return workflow.Reply{Message: "mid:b", From: newTech, References: []string{"other@x", w.sent["nw1-ovh"]},
				Decision: workflow.Decline, SenderMustMatch: true}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			if out.Result != workflow.ReplyProcessed || out.NIC != "nw1-ovh" || out.Status != workflow.Declined {
				t.Errorf("outcome = %+v, want processed, nw1-ovh, declined", *out)
			}
		}},
		{"wrong sender, answered in the approver's language", func(w *replyWorld) workflow.Reply {
			return workflow.Reply{Message: "mid:c", MessageID: "c@x", From: "mallory@example.org", Token: w.tokens["nw1-ovh"],
				Decision: workflow.Accept, SenderMustMatch: true, Language: "en"}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			if out.Result != workflow.ReplyRejected || out.Reason != workflow.ReplyWrongSender || out.NIC != "nw1-ovh" {
				t.Errorf("outcome = %+v, want rejected wrong_sender about nw1-ovh", *out)
			}
			want := workflow.Message{Kinds: []workflow.Kind{workflow.KindNotUnderstood}, To: "mallory@example.org", Language: "fr",
				Reason: "wrong_sender", InReplyTo: "<c@x>"}
			if out.Answer == nil || !reflect.DeepEqual(*out.Answer, want) {
				t.Errorf("answer = %+v, want %+v", out.Answer, want)
			}
			if nu := w.notUnderstood(t); len(nu) != 1 || nu[0].To != want.To {
				t.Errorf("queued %+v, want the answer", nu)
			}
		}},
		{"a stranger's unknown token is not answered", func(w *replyWorld) workflow.Reply {
			return workflow.Reply{Message: "mid:d", From: "spam@example.org", Token: "a" + w.tokens["ad1-ovh"][1:],
				Decision: workflow.Accept}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			if out.Result != workflow.ReplyRejected || out.Reason != workflow.ReplyUnknownToken ||
				out.Unanswered != workflow.UnansweredStranger || out.Answer != nil {
				t.Errorf("outcome = %+v, want rejected unknown_token, unanswered", *out)
			}
		}},
		{"two decisions from a contact are named no_decision", func(w *replyWorld) workflow.Reply {
			return workflow.Reply{Message: "mid:e", From: admin, Token: w.tokens["ad1-ovh"], Problem: workflow.ReplyTwoDecisions}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			if out.Reason != workflow.ReplyTwoDecisions || out.Answer == nil || out.Answer.Reason != "no_decision" ||
				out.Answer.Language != "en" {
				t.Errorf("outcome = %+v, answer %+v; want two_decisions answered in English as no_decision", *out, out.Answer)
			}
		}},
		{"a bounce of our email marks its approver undeliverable", func(w *replyWorld) workflow.Reply {
			return workflow.Reply{Message: "mid:f", Automatic: true, Report: &workflow.DeliveryReport{Failed: true,
				NullSender: true, MessageIDs: []string{w.sent["nw1-ovh"]}, Recipients: []string{newTech}}}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			if out.Result != workflow.ReplyIgnored || !out.Undeliverable || out.NIC != "nw1-ovh" {
				t.Errorf("outcome = %+v, want ignored, nw1-ovh undeliverable", *out)
			}
			r, err := w.s.Get(context.Background(), w.id)
			if err != nil || !r.Approvals["nw1-ovh"].Undeliverable {
				t.Errorf("approval = %+v, %v; want undeliverable", r.Approvals["nw1-ovh"], err)
			}
		}},
		{"a report with a sender is not believed", func(w *replyWorld) workflow.Reply {
			return workflow.Reply{Message: "mid:g", Automatic: true, Report: &workflow.DeliveryReport{Failed: true,
				MessageIDs: []string{w.sent["nw1-ovh"]}}}
		}, func(t *testing.T, w *replyWorld, out *workflow.ReplyOutcome) {
			if out.Result != workflow.ReplyIgnored || out.Undeliverable || out.Note == "" {
				t.Errorf("outcome = %+v, want ignored with a note, nothing marked", *out)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b redistest.Backend) {
				w := newReplyWorld(t, b)
				c.check(t, w, w.decide(t, c.reply(w)))
			})
		})
	}
}

// A sender is answered once an hour at most.
func TestDecideReplyAnswersOnceAnHour(t *testing.T) {
	w := newReplyWorld(t, redistest.Mini(t))
	r := workflow.Reply{Message: "mid:n1", From: "admin@example.com", Problem: workflow.ReplyNoDecision, Token: w.tokens["ad1-ovh"]}
	if out := w.decide(t, r); out.Answer == nil {
		t.Fatalf("first rejection not answered: %+v", *out)
	}
	r.Message = "mid:n2"
	if out := w.decide(t, r); out.Answer != nil || out.Unanswered != workflow.UnansweredThrottled {
		t.Errorf("second rejection within the hour: %+v, want unanswered (throttled)", *out)
	}
	if got := len(w.notUnderstood(t)); got != 1 {
		t.Errorf("%d answers queued, want 1", got)
	}
}

// When the store records the decision and its answer is lost, the call
// fails; called again for the same message, it recognises the decision as
// that message's: processed, not answered. Another message with the same
// token is told the token is dead.
func TestDecideReplyLostAnswer(t *testing.T) {
	for _, how := range []string{"token", "reference"} {
		t.Run(how, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b redistest.Backend) {
				w := newReplyWorld(t, b)
				tok := w.tokens["nw1-ovh"]
				b.Client.AddHook(&redistest.LoseAnswer{Args: []string{workflow.HashToken(tok), "accept", "email"}})
				r := workflow.Reply{Message: "mid:lost@example.net", From: "new1@example.net", Decision: workflow.Accept, SenderMustMatch: true}
				if how == "token" {
					r.Token = tok
				} else {
					r.References = []string{w.sent["nw1-ovh"]}
				}
				if out, err := w.s.DecideReply(context.Background(), r); err == nil {
					t.Fatalf("DecideReply = %+v with the store's answer lost, want an error", *out)
				}
				out := w.decide(t, r)
				if out.Result != workflow.ReplyProcessed || !out.Again || out.Decision != workflow.Accept || out.NIC != "nw1-ovh" ||
					out.Status != workflow.Pending {
					t.Errorf("second attempt: %+v, want processed, recognised as decided before", *out)
				}
				other := r
				other.Message = "mid:another@example.net"
				if out := w.decide(t, other); out.Result != workflow.ReplyRejected || out.Reason != workflow.ReplyDeadToken {
					t.Errorf("another message with the same token: %+v, want rejected dead_token", *out)
				}
				if nu := w.notUnderstood(t); len(nu) != 1 {
					t.Errorf("%d answers, want one (to the other message)", len(nu))
				}
			})
		})
	}
}

// A message that named a token first but never decided (its store call
// failed before the decision) does not take the credit for a decision
// another message made.
func TestDecideReplyDeciderIsWhoDecided(t *testing.T) {
	w := newReplyWorld(t, redistest.Mini(t))
	tok := w.tokens["ad1-ovh"]
	first := workflow.Reply{Message: "mid:first", From: "admin@example.com", Token: tok, Decision: workflow.Accept}
	// The first message's decision never reaches the store.
	hook := &failScripts{}
	w.b.Client.AddHook(hook)
	hook.fail.Store(true)
	if _, err := w.s.DecideReply(context.Background(), first); err == nil {
		t.Fatal("DecideReply succeeded with scripts failing")
	}
	hook.fail.Store(false)
	second := first
	second.Message = "mid:second"
	if out := w.decide(t, second); out.Result != workflow.ReplyProcessed || out.Again {
		t.Fatalf("second message: %+v, want processed", *out)
	}
	if out := w.decide(t, first); out.Result != workflow.ReplyRejected || out.Reason != workflow.ReplyDeadToken {
		t.Errorf("first message again: %+v, want rejected dead_token", *out)
	}
}

// failScripts fails every script before the server sees it while fail is
// set.
type failScripts struct{ fail atomic.Bool }

func (h *failScripts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.fail.Load() && (cmd.Name() == "evalsha" || cmd.Name() == "eval") {
			err := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *failScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Every reason is sent as one the not_understood email words.
func TestReplyReasonsMailed(t *testing.T) {
	worded := []workflow.ReplyProblem{workflow.ReplyTooLarge, workflow.ReplyNoToken, workflow.ReplyTwoTokens,
		workflow.ReplyUnknownToken, workflow.ReplyDeadToken, workflow.ReplyNoDecision, workflow.ReplyWrongSender,
		workflow.ReplyNotAuthentic}
	for _, r := range workflow.ReplyProblems {
		if !slices.Contains(worded, r.Mailed()) {
			t.Errorf("%s is mailed as %s, which no email words", r, r.Mailed())
		}
	}
}
