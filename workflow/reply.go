package workflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A reply by email is decided in one call. The inbox reads the message
// (trusting none of it) into a Reply; DecideReply finds the request and
// the approver it answers, checks the sender, records the decision, marks
// an approver undeliverable for a bounce, and answers a person whose
// reply cannot be used; the ReplyOutcome says where to file the message
// and what was done. It is built on the store's own operations (LookupSent,
// LookupToken, Decide, ...), not on their keys.

// ReplyResult says where a received message is filed.
type ReplyResult string

// The results of a reply, named as the metrics label them.
const (
	ReplyProcessed ReplyResult = "processed" // a decision was recorded
	ReplyRejected  ReplyResult = "rejected"  // a person's reply that could not be used
	ReplyIgnored   ReplyResult = "ignored"   // written by a machine
)

// ReplyResults lists every result.
var ReplyResults = []ReplyResult{ReplyProcessed, ReplyRejected, ReplyIgnored}

// DefaultAnswerEvery is how often one sender may be told a reply was not
// understood, unless Reply.AnswerEvery says otherwise.
const DefaultAnswerEvery = time.Hour

// maxReferences bounds the Message-IDs of a reply looked up.
const maxReferences = 10

// Reply is what the inbox read in a received message, none of it trusted.
type Reply struct {
	// Message names the received message for as long as it may be read
	// again: "mid:" and its Message-ID, else its place in the mailbox. An
	// attempt that decided and then lost the store's answer is recognised
	// by it on the next attempt.
	Message string
	// MessageID is the message's own Message-ID (without angle brackets),
	// which an answer refers to.
	MessageID string
	// From is the sender's address, "" when there is no single one.
	From string
	// Token is the token the message carries, normalized, or "".
	Token string
	// References lists the Message-IDs the message answers, In-Reply-To
	// first.
	References []string
	// Decision is the answer read in the message, or "".
	Decision Decision
	// Problem is what reading alone found wrong, or "".
	Problem ReplyProblem
	// Language is a guess of the writer's language, or "".
	Language string
	// Automatic is true for a message written by a machine: it is never
	// acted on nor answered; Report says more when it is a delivery report.
	Automatic bool
	Report    *DeliveryReport
	// SenderMustMatch is inbox.require_sender_match: From must be the
	// approver's email on file.
	SenderMustMatch bool
	// Unauthenticated is true when inbox.authserv_id is set and the message
	// carries no passing result from that server.
	Unauthenticated bool
	// AnswerEvery bounds the not_understood emails to one sender
	// (DefaultAnswerEvery when zero).
	AnswerEvery time.Duration
}

// DeliveryReport is what a delivery report (a bounce) says.
type DeliveryReport struct {
	// Failed is true unless the report only tells of a delay or a success.
	Failed bool
	// NullSender is true when the message came with an empty Return-Path,
	// as only mail systems send: any other report is not believed.
	NullSender bool
	// MessageIDs and Recipients come from the headers of the attached
	// original.
	MessageIDs []string
	Recipients []string
}

// ReplyOutcome is what DecideReply made of a reply.
type ReplyOutcome struct {
	Result ReplyResult
	// Reason is why the reply was rejected.
	Reason ReplyProblem
	// Request (or Handover, for a hand-over's email or token) and NIC
	// name what the message is about and the approver, when known.
	Request  string
	Handover string
	NIC      string
	// Decision is the decision recorded (processed).
	Decision Decision
	// Status is the request's status after the decision (processed; a
	// hand-over's requests each have their own).
	Status Status
	// Again is true when the decision had been recorded by an earlier
	// attempt at this very message, whose answer from the store was lost.
	Again bool
	// Undeliverable is true when a delivery report marked the approver
	// undeliverable.
	Undeliverable bool
	// Answer is the not_understood email queued, or nil; Unanswered then
	// says why none was.
	Answer     *Message
	Unanswered string
	// Note says, for the log, why an automatic message changed nothing.
	Note string
}

// Why an answer is not sent (ReplyOutcome.Unanswered).
const (
	UnansweredAutomatic = "automatic"      // written by a machine
	UnansweredNoSender  = "no_sender"      // no single sender
	UnansweredStranger  = "unknown_sender" // not a contact, names nothing of ours: maybe forged
	UnansweredThrottled = "throttled"      // answered less than AnswerEvery ago
)

// DecideReply decides what a received message means and acts on it: it
// records the decision of a reply, marks an approver undeliverable for a
// bounce of one of our emails, or rejects the reply and answers its sender
// once an AnswerEvery. An error means the store failed; the decision may
// or may not have been recorded: call it again with the same Reply (same
// Message) and it recognises a decision its earlier call made.
func (s *Store) DecideReply(ctx context.Context, r Reply) (*ReplyOutcome, error) {
	if r.Automatic {
		return s.replyReport(ctx, r.Report)
	}
	c := &replyCase{s: s, r: r}
	if err := c.run(ctx); err != nil {
		return nil, err
	}
	return &c.out, nil
}

// replyCase is one reply being decided.
type replyCase struct {
	s   *Store
	r   Reply
	out ReplyOutcome
	// ref is the first of our emails the reply answers.
	ref *SentMessage
	// known is true when the reply names one of our tokens (live or dead)
	// or emails: its sender may be answered.
	known bool
	// lang is the approver's language, once known.
	lang string
}

func (c *replyCase) run(ctx context.Context) error {
	var err error
	if c.ref, err = c.s.firstSent(ctx, c.r.References); err != nil {
		return err
	}
	c.known = c.ref != nil
	r := c.r
	if r.Problem == ReplyUnreadable || r.Problem == ReplyTooLarge || r.Problem == ReplyBadFrom {
		return c.reject(ctx, r.Problem)
	}
	if r.Problem == ReplyTwoTokens || (r.Token != "" && c.ref != nil && c.ref.TokenHash != "" && HashToken(r.Token) != c.ref.TokenHash) {
		return c.reject(ctx, ReplyTwoTokens)
	}
	var req *Request
	var gone bool
	switch {
	case c.ref != nil && c.ref.TokenHash != "":
		// The email answered names the request and the approver, and its
		// token is the reply's if it has one: no need to look the token
		// up (a dead one is found when deciding).
		c.out.Request, c.out.Handover, c.out.NIC = c.ref.Request, c.ref.Handover, c.ref.NIC
	case r.Token != "":
		l, err := c.s.Lookup(ctx, r.Token)
		switch ErrorCode(err) {
		case "":
		case EGone:
			gone = true
		case ENotFound:
			return c.reject(ctx, ReplyUnknownToken)
		default:
			return err
		}
		c.known = true
		c.out.NIC = l.NIC
		if req = l.Request; req != nil {
			c.out.Request = req.ID
		}
		if l.Handover != nil {
			c.out.Handover = l.Handover.ID
		}
	default:
		return c.reject(ctx, ReplyNoToken)
	}
	return c.approver(ctx, req, gone)
}

// approver checks who sent the reply, then decides.
func (c *replyCase) approver(ctx context.Context, req *Request, gone bool) error {
	contact, err := c.s.GetContact(ctx, c.out.NIC)
	switch ErrorCode(err) {
	case "", EUnknownContact, EInvalidNIC:
	default:
		return err
	}
	if contact != nil {
		c.lang = contact.Language
	}
	if c.r.SenderMustMatch && (contact == nil || !strings.EqualFold(strings.TrimSpace(contact.Email), c.r.From)) {
		return c.reject(ctx, ReplyWrongSender)
	}
	if c.r.Unauthenticated {
		return c.reject(ctx, ReplyNotAuthentic)
	}
	if gone {
		return c.again(ctx, req)
	}
	if c.r.Problem != "" {
		return c.reject(ctx, c.r.Problem)
	}
	if c.r.Decision != Accept && c.r.Decision != Decline {
		return c.reject(ctx, ReplyNoDecision)
	}
	return c.decide(ctx)
}

// decide records the decision. Before it, the message is written down as
// the one deciding with that token, so that the decision is recognised
// as this message's should the store's answer be lost.
func (c *replyCase) decide(ctx context.Context) error {
	hash := c.tokenHash()
	first, fresh, err := c.s.markDecider(ctx, hash, c.r.Message)
	if err != nil {
		return err
	}
	var out *Outcome
	if c.r.Token != "" {
		out, err = c.s.Decide(ctx, c.r.Token, c.r.Decision, Email)
	} else {
		out, err = c.s.decideSent(ctx, c.ref, c.r.Decision, Email)
	}
	switch ErrorCode(err) {
	case "":
		if !first {
			// Another message named this token first but never decided
			// with it: this one did.
			_ = c.s.setDecider(ctx, hash, c.r.Message)
		}
		c.processed(out)
		return nil
	case EGone:
		if fresh {
			// Named only now: no earlier attempt of this message decided.
			return c.reject(ctx, ReplyDeadToken)
		}
		return c.again(ctx, nil)
	case ENotFound:
		return c.reject(ctx, ReplyUnknownToken)
	}
	return err
}

func (c *replyCase) tokenHash() string {
	if c.r.Token != "" {
		return HashToken(c.r.Token)
	}
	return c.ref.TokenHash
}

func (c *replyCase) processed(out *Outcome) {
	c.out.Result, c.out.Decision = ReplyProcessed, out.Decision
	if req := out.Request; req != nil {
		c.out.Request, c.out.Status = req.ID, req.Status
	}
	if h := out.Handover; h != nil {
		c.out.Handover = h.ID
	}
}

// again handles a token that is no longer live: when this very message
// decided with it in an earlier attempt (and the approver's answer is on
// record, by email, as the message says), it is processed; otherwise the
// token is dead.
func (c *replyCase) again(ctx context.Context, req *Request) error {
	mine, err := c.s.isDecider(ctx, c.tokenHash(), c.r.Message)
	if err != nil || !mine {
		if err != nil {
			return err
		}
		return c.reject(ctx, ReplyDeadToken)
	}
	if c.out.Handover != "" {
		// A hand-over's approval: its job carries it to the requests,
		// whatever became of the answer.
		h, err := c.s.GetHandover(ctx, c.out.Handover)
		if err != nil {
			return err
		}
		a, ok := h.Approvals[c.out.NIC]
		if !ok || a.Channel != Email || a.Status != approvalOf(c.r.Decision) {
			return c.reject(ctx, ReplyDeadToken)
		}
		c.processed(&Outcome{Handover: h, NIC: c.out.NIC, Decision: c.r.Decision})
		c.out.Again = true
		return nil
	}
	if req == nil {
		if req, err = c.s.Get(ctx, c.out.Request); err != nil {
			return err
		}
	}
	a, ok := req.Approvals[c.out.NIC]
	if !ok || a.Channel != Email || a.Status != approvalOf(c.r.Decision) {
		return c.reject(ctx, ReplyDeadToken)
	}
	c.processed(&Outcome{Request: req, NIC: c.out.NIC, Decision: c.r.Decision})
	c.out.Again = true
	if req.Status == Approved {
		// The lost answer may have been the one that was to apply it; the
		// sweep would, later.
		if st, err := c.s.Apply(ctx, req.ID); err == nil {
			c.out.Status = st
		}
	}
	return nil
}

func approvalOf(d Decision) ApprovalState {
	switch d {
	case Accept:
		return ApprovalAccepted
	case Decline:
		return ApprovalDeclined
	}
	return ""
}

// reject files the reply as rejected and answers its sender, once an
// AnswerEvery at most, when it may be answered: a real person (not a
// machine, a single sender) who is a contact of the directory or whose
// reply names one of our tokens or emails. Anyone else may be a forged
// sender, and answering would send mail to a stranger (backscatter).
func (c *replyCase) reject(ctx context.Context, reason ReplyProblem) error {
	c.out.Result, c.out.Reason = ReplyRejected, reason
	if c.r.From == "" {
		c.out.Unanswered = UnansweredNoSender
		return nil
	}
	if !c.known {
		ok, err := c.s.IsContactAddress(ctx, c.r.From)
		if err != nil {
			return err
		}
		if !ok {
			c.out.Unanswered = UnansweredStranger
			return nil
		}
	}
	every := c.r.AnswerEvery
	if every <= 0 {
		every = DefaultAnswerEvery
	}
	first, err := c.s.ThrottleAnswer(ctx, c.r.From, string(reason), every)
	if err != nil || !first {
		c.out.Unanswered = UnansweredThrottled
		return err
	}
	m := Message{Kinds: []Kind{KindNotUnderstood}, To: c.r.From, Language: c.language(), Reason: string(reason.Mailed())}
	if c.r.MessageID != "" {
		m.InReplyTo = "<" + c.r.MessageID + ">"
	}
	if err := c.s.Enqueue(ctx, m); err != nil {
		c.s.Unthrottle(ctx, c.r.From)
		return err
	}
	c.out.Answer = &m
	return nil
}

// language is the approver's language when known, else the reply's, else
// workflow.default_language.
func (c *replyCase) language() string {
	for _, l := range []string{c.lang, c.r.Language} {
		if Language(l).Valid() {
			return l
		}
	}
	return string(c.s.opt.DefaultLanguage)
}

// firstSent returns the first of our emails among the Message-IDs.
func (s *Store) firstSent(ctx context.Context, ids []string) (*SentMessage, error) {
	for i, id := range ids {
		if i >= maxReferences {
			break
		}
		rec, err := s.LookupSent(ctx, id)
		if err != nil || rec != nil {
			return rec, err
		}
	}
	return nil, nil
}

// decideSent decides with the token an email we sent carried, known by
// its hash alone (a reply that kept none of the token's carriers but
// answers that email).
func (s *Store) decideSent(ctx context.Context, m *SentMessage, d Decision, ch Channel) (*Outcome, error) {
	if m == nil || m.TokenHash == "" || m.Request+m.Handover == "" {
		return nil, Errorf(ENotFound, "this link is not valid")
	}
	return s.DecideByHash(ctx, m.TokenHash, (m.Request + m.Handover)[0], d, ch)
}

// The decider of a token is the received message that decided with it
// (or was about to), kept as long as claims (InboxClaimTTL) under the
// claim key of "decided:" and the token's hash; the value is a hash of
// Reply.Message.

func (s *Store) deciderKey(hash string) string { return s.keys.InboxClaim("decided:" + hash) }

func messageHash(message string) string {
	h := sha256.Sum256([]byte(message))
	return hex.EncodeToString(h[:16])
}

// markDecider names message as the decider of the token, unless another
// message was named first. It reports whether message is named, and
// whether it was named only now (not by an earlier attempt).
func (s *Store) markDecider(ctx context.Context, hash, message string) (named, fresh bool, err error) {
	key, mine := s.deciderKey(hash), messageHash(message)
	ok, err := s.rdb.SetNX(ctx, key, mine, InboxClaimTTL).Result()
	if err != nil || ok {
		return ok, ok, storeErr(err)
	}
	v, err := s.rdb.Get(ctx, key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, false, storeErr(err)
	}
	return v == mine, false, nil
}

func (s *Store) setDecider(ctx context.Context, hash, message string) error {
	return storeErr(s.rdb.Set(ctx, s.deciderKey(hash), messageHash(message), InboxClaimTTL).Err())
}

func (s *Store) isDecider(ctx context.Context, hash, message string) (bool, error) {
	v, err := s.rdb.Get(ctx, s.deciderKey(hash)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return v == messageHash(message), storeErr(err)
}

// replyReport handles an automatic message: a failed delivery report
// that comes from a mail system (empty Return-Path) and names the
// Message-ID of an email we really sent (to that email's recipient, when
// the report lists recipients) marks that approver undeliverable;
// anything else changes nothing, so a forged report naming a request id
// or an address does nothing.
func (s *Store) replyReport(ctx context.Context, b *DeliveryReport) (*ReplyOutcome, error) {
	out := &ReplyOutcome{Result: ReplyIgnored, Unanswered: UnansweredAutomatic}
	switch {
	case b == nil:
		return out, nil
	case !b.Failed:
		out.Note = "a delivery report that tells of no failure"
		return out, nil
	case !b.NullSender:
		out.Note = "a delivery report whose Return-Path is not empty"
		return out, nil
	}
	rec, err := s.bounced(ctx, b)
	if err != nil || rec == nil {
		if rec == nil {
			out.Note = "a delivery report that names none of our emails"
		}
		return out, err
	}
	out.Request, out.Handover, out.NIC = rec.Request, rec.Handover, rec.NIC
	err = s.MarkUndeliverable(ctx, rec.Request+rec.Handover, rec.NIC)
	switch ErrorCode(err) {
	case "":
		out.Undeliverable = true
	case ENotFound:
		out.Note = "a delivery report about an approver the request no longer has"
	default:
		return nil, err
	}
	return out, nil
}

// bounced finds the email a delivery report is about by its Message-ID,
// checked against the recipients the report lists.
func (s *Store) bounced(ctx context.Context, b *DeliveryReport) (*SentMessage, error) {
	for i, mid := range b.MessageIDs {
		if i >= maxReferences {
			break
		}
		rec, err := s.LookupSent(ctx, mid)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			continue
		}
		if len(b.Recipients) > 0 {
			c, err := s.GetContact(ctx, rec.NIC)
			switch ErrorCode(err) {
			case "", EUnknownContact, EInvalidNIC:
			default:
				return nil, err
			}
			if c == nil || !containsFold(b.Recipients, c.Email) {
				continue
			}
		}
		return rec, nil
	}
	return nil, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), strings.TrimSpace(s)) {
			return true
		}
	}
	return false
}
