package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Outcome is the result of a decision: on a request, or on every request
// of a hand-over (Handover set, Request nil).
type Outcome struct {
	Request  *Request
	Handover *Handover
	NIC      string
	Decision Decision
}

// ID is the id of what the decision was on: the request, or the
// hand-over.
func (o *Outcome) ID() string {
	if o.Handover != nil {
		return o.Handover.ID
	}
	return o.Request.ID
}

// errLinkInvalid and errLinkGone are what a token that never existed, or
// no longer works, answers.
func errLinkInvalid() error { return Errorf(ENotFound, "this link is not valid") }
func errLinkGone() error    { return Errorf(EGone, "this link is no longer valid") }

// readToken reads the record of the token whose reference is ref, in
// shard: what it is for. A token that never existed (or whose record
// expired) is ENotFound.
func (s *Store) readToken(ctx context.Context, shard int, ref string) (tokenRecord, error) {
	v, err := s.rdb.Get(ctx, s.keys.Token(shard, ref)).Result()
	if errors.Is(err, redis.Nil) {
		return tokenRecord{}, errLinkInvalid()
	}
	if err != nil {
		return tokenRecord{}, storeErr(err)
	}
	t, ok := parseTokenRecord(v)
	if !ok {
		return tokenRecord{}, errLinkInvalid()
	}
	if sh, _ := shardFromID(t.ID); sh != shard {
		return tokenRecord{}, errLinkInvalid()
	}
	return t, nil
}

// tokenRef reads a token as typed or found in a link: its shard and
// reference.
func tokenRef(token string) (int, string, bool) {
	token, ok := NormalizeToken(token)
	if !ok {
		return 0, "", false
	}
	shard, _ := shardFromID(token)
	return shard, HashToken(token), true
}

// LookupToken tells what a validation token of a request is for, without
// changing anything: the request, the approver, and whether the token is
// live. A token that never existed is ENotFound; a used, revoked or
// expired one is EGone (with the request still returned, for logging
// only).
func (s *Store) LookupToken(ctx context.Context, token string) (*Request, string, error) {
	shard, ref, ok := tokenRef(token)
	if !ok {
		return nil, "", errLinkInvalid()
	}
	t, err := s.readToken(ctx, shard, ref)
	if err != nil {
		return nil, "", err
	}
	if t.Type != "v" {
		return nil, "", errLinkInvalid()
	}
	return s.requestOfToken(ctx, shard, ref, t)
}

// requestOfToken reads the request of an approver's token whose record t
// (under reference ref) was read already.
func (s *Store) requestOfToken(ctx context.Context, shard int, ref string, t tokenRecord) (*Request, string, error) {
	h, err := s.readRequest(ctx, shard, t.ID)
	if err != nil {
		return nil, "", err
	}
	r, err := s.decodeRequest(t.ID, h)
	if err != nil {
		return nil, "", err
	}
	if r.Status != Pending || r.Approvals[t.NIC].Status != ApprovalPending || !liveRef(h, t.NIC, ref) {
		return r, t.NIC, errLinkGone()
	}
	return r, t.NIC, nil
}

// liveRef reports whether ref is among the live or pending tokens of nic
// in the fields h of a request or hand-over (see scripts.go).
func liveRef(h map[string]string, nic, ref string) bool {
	if t := strings.Fields(h["t:"+nic]); len(t) > 1 && slices.Contains(t[1:], ref) {
		return true
	}
	for _, p := range strings.Fields(h["p:"+nic]) {
		if _, r, _ := strings.Cut(p, ":"); r == ref {
			return true
		}
	}
	return false
}

// readRequest reads a request's fields and history (ENotFound if none).
func (s *Store) readRequest(ctx context.Context, shard int, id string) (map[string]string, error) {
	pipe := s.rdb.Pipeline()
	rc := s.queueRequest(ctx, pipe, shard, id)
	if err := execReads(ctx, pipe); err != nil {
		return nil, err
	}
	h := rc.result()
	if len(h) == 0 {
		return nil, Errorf(ENotFound, "no request with id %q", id)
	}
	return h, nil
}

// Decide records an approver's decision made with their token. When the
// last approver accepts, the request is approved and applied at once. The
// outcome's request is the request as the decision left it, without its
// history (Get reads it whole).
func (s *Store) Decide(ctx context.Context, token string, d Decision, ch Channel) (*Outcome, error) {
	shard, ref, ok := tokenRef(token)
	if !ok {
		return nil, errLinkInvalid()
	}
	return s.decideRef(ctx, shard, ref, d, ch)
}

// DecideByHash is Decide for a caller that holds only the reference of a
// token (HashToken) and the first character of the id of the request it
// is for (its shard), such as a reply matched by the Message-ID of the
// email that carried the token (see LookupSent).
func (s *Store) DecideByHash(ctx context.Context, ref string, shardChar byte, d Decision, ch Channel) (*Outcome, error) {
	shard, ok := shardFromID(string(shardChar))
	if !ok || !ValidTokenRef(ref) {
		return nil, errLinkInvalid()
	}
	return s.decideRef(ctx, shard, ref, d, ch)
}

func (s *Store) decideRef(ctx context.Context, shard int, ref string, d Decision, ch Channel) (*Outcome, error) {
	if d != Accept && d != Decline {
		return nil, Errorf(EInvalidRequest, "decision must be accept or decline")
	}
	t, err := s.readToken(ctx, shard, ref)
	if err != nil {
		return nil, err
	}
	if t.Type == "h" {
		return s.decideHandover(ctx, shard, ref, t, d, ch)
	}
	if t.Type != "v" {
		return nil, errLinkInvalid()
	}
	res, err := s.runRequest(ctx, decideScript, shard, t.ID, t.Service, nil, t.NIC, ref, string(d), string(ch))
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "unknown":
		return nil, errLinkInvalid()
	case "gone":
		return nil, errLinkGone()
	case "corrupt":
		return nil, s.corrupt(t.ID)
	case "approved":
		s.count("approved")
		// A billing contact's payments are checked before applying;
		// should that fail, the request stays approved and the sweep
		// applies it.
		_, _ = s.Apply(ctx, t.ID)
		r, err := s.Get(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		return &Outcome{Request: r, NIC: t.NIC, Decision: d}, nil
	case "applied", "failed":
		s.count("approved", res[0])
	default:
		s.count(res[0])
	}
	r, err := s.decodeRequest(t.ID, pairs(res[1:]))
	if err != nil {
		return nil, err
	}
	if r.Status == Applied {
		s.pointNewHolders(ctx, r.Service, r.Changes)
	}
	return &Outcome{Request: r, NIC: t.NIC, Decision: d}, nil
}

// pairs reads field, value pairs into a map.
func pairs(f []string) map[string]string {
	m := make(map[string]string, len(f)/2)
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	return m
}

// count counts transitions in the metrics.
func (s *Store) count(transitions ...string) {
	for _, t := range transitions {
		s.opt.Metrics.Transitions.WithLabelValues(t).Inc()
	}
}

// corrupt logs a request record that cannot be read; nothing was
// written to it.
func (s *Store) corrupt(id string) error {
	s.opt.Logger.Error("request record cannot be read; left as it is", slog.String("request_id", id))
	return fmt.Errorf("workflow: request %s cannot be read", id)
}

// serviceOf reads the service of request id (ENotFound if none).
func (s *Store) serviceOf(ctx context.Context, id string) (int, string, error) {
	shard, key, err := s.requestRef(id)
	if err != nil {
		return 0, "", err
	}
	svc, err := s.rdb.HGet(ctx, key, "svc").Result()
	if errors.Is(err, redis.Nil) {
		return 0, "", Errorf(ENotFound, "no request with id %q", id)
	}
	return shard, svc, storeErr(err)
}

// Apply makes an approved request effective; it does nothing to a request
// in any other state, so it may be called any number of times.
func (s *Store) Apply(ctx context.Context, id string) (Status, error) {
	shard, key, err := s.requestRef(id)
	if err != nil {
		return "", err
	}
	f, err := s.rdb.HMGet(ctx, key, "svc", "chg", "pay").Result()
	if err != nil {
		return "", storeErr(err)
	}
	svc, _ := f[0].(string)
	if svc == "" {
		return "", Errorf(ENotFound, "no request with id %q", id)
	}
	pay, _ := f[2].(string)
	// Payments are re-checked just before the script, which re-checks the
	// role holders; the contacts live outside the shard, so this check
	// cannot be inside it.
	reason, err := s.paymentIssue(ctx, strings.Fields(pay))
	if err != nil {
		return "", err
	}
	res, err := s.runRequest(ctx, applyScript, shard, id, svc, nil, reason.String())
	if err != nil {
		return "", err
	}
	switch res[0] {
	case "corrupt":
		return "", s.corrupt(id)
	case "unknown":
		return "", Errorf(ENotFound, "no request with id %q", id)
	case string(Applied), string(Failed):
		s.count(res[0])
		var chg map[Role]Change
		if raw, ok := f[1].(string); ok && json.Unmarshal([]byte(raw), &chg) == nil && res[0] == string(Applied) {
			s.pointNewHolders(ctx, svc, chg)
		}
	}
	return Status(res[0]), nil
}

// pointNewHolders writes the "My contacts" pointers of the new holders of
// a service; readers re-check them, so one left by a failed change is
// harmless.
func (s *Store) pointNewHolders(ctx context.Context, serviceID string, chg map[Role]Change) {
	pipe := s.rdb.Pipeline()
	for _, c := range chg {
		s.pointServices(ctx, pipe, serviceID, c.To)
	}
	_, _ = pipe.Exec(ctx)
}

// paymentIssue returns why a billing change cannot be applied, or the
// zero Reason.
func (s *Store) paymentIssue(ctx context.Context, nics []string) (Reason, error) {
	if len(nics) == 0 {
		return Reason{}, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(nics))
	for i, nic := range nics {
		cmds[i] = pipe.HGet(ctx, s.keys.Contact(nic), "payment_ok")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return Reason{}, storeErr(err)
	}
	for i, nic := range nics {
		if v, err := cmds[i].Result(); err == nil && v != "1" {
			return Reason{Code: ReasonPaymentOverdue, Arg: nic}, nil
		}
	}
	return Reason{}, nil
}

// requestScript runs a per-request script on request id, reading its
// service first.
func (s *Store) requestScript(ctx context.Context, sc *redis.Script, id string, extra []string, args ...any) ([]string, error) {
	shard, svc, err := s.serviceOf(ctx, id)
	if err != nil {
		return nil, err
	}
	res, err := s.runRequest(ctx, sc, shard, id, svc, extra, args...)
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "unknown":
		return nil, Errorf(ENotFound, "no request with id %q", id)
	case "corrupt":
		return nil, s.corrupt(id)
	}
	return res, nil
}

// Cancel ends a pending request at its requester's demand.
func (s *Store) Cancel(ctx context.Context, id, nic string, ch Channel) (*Request, error) {
	if _, _, err := s.requestRef(id); err != nil {
		return nil, err
	}
	nic, err := s.nics.Normalize(nic)
	if err != nil {
		return nil, err
	}
	res, err := s.requestScript(ctx, cancelScript, id, nil, nic, string(ch))
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "forbidden":
		return nil, Errorf(ERoleNotAllowed, "only the requester may cancel request %s", id)
	case "notpending":
		return nil, &Error{Code: EConflict, RequestID: id, Message: fmt.Sprintf("request %s is %s, not pending", id, res[1])}
	case "handover":
		return nil, partOfHandover(id, res[1], "cancel")
	}
	s.count("cancelled")
	return s.Get(ctx, id)
}

// partOfHandover refuses to act on one request of a hand-over alone.
func partOfHandover(id, handover, verb string) error {
	return &Error{Code: EConflict, RequestID: id, Message: fmt.Sprintf(
		"request %s is part of hand-over %s: %s the hand-over (/api/v1/handovers/%s/%s)", id, handover, verb, handover, verb)}
}

// Resend queues a new email (with a new token) to one approver, or to
// every approver who has not answered when nic is empty. It returns how
// many emails were queued.
func (s *Store) Resend(ctx context.Context, id, nic string) (int, error) {
	if _, _, err := s.requestRef(id); err != nil {
		return 0, err
	}
	if nic != "" {
		var err error
		if nic, err = s.nics.Normalize(nic); err != nil {
			return 0, err
		}
	}
	res, err := s.requestScript(ctx, resendScript, id, nil, nic, s.opt.RemindAfter.Milliseconds())
	if err != nil {
		return 0, err
	}
	switch res[0] {
	case "notpending":
		return 0, &Error{Code: EConflict, RequestID: id, Message: fmt.Sprintf("request %s is %s, not pending", id, res[1])}
	case "handover":
		return 0, partOfHandover(id, res[1], "resend")
	case "notapprover":
		return 0, Errorf(EInvalidRequest, "%s is not an approver of request %s", nic, id)
	case "answered":
		return 0, &Error{Code: EConflict, RequestID: id, Message: fmt.Sprintf("%s has already answered request %s", nic, id)}
	}
	n, _ := strconv.Atoi(res[1])
	return n, nil
}

// MarkUndeliverable records that an email to an approver of a request, or
// of a hand-over (id naming either), bounced.
func (s *Store) MarkUndeliverable(ctx context.Context, id, nic string) error {
	if s.isHandover(ctx, id) {
		return s.markHandoverUndeliverable(ctx, id, nic)
	}
	res, err := s.requestScript(ctx, undeliverableScript, id, nil, nic)
	if ErrorCode(err) == ENotFound || (err == nil && res[0] == "unknown") {
		return Errorf(ENotFound, "no approver %s on request %s", nic, id)
	}
	return err
}

// isHandover reports whether id names a hand-over (request and hand-over
// ids have one shape).
func (s *Store) isHandover(ctx context.Context, id string) bool {
	shard, err := handoverRef(id)
	if err != nil {
		return false
	}
	n, err := s.rdb.Exists(ctx, s.keys.Handover(shard, id)).Result()
	return err == nil && n == 1
}

// LookupReport tells what a "this wasn't me" token is for: the request
// and the contact who was told, without changing anything.
func (s *Store) LookupReport(ctx context.Context, token string) (*Request, string, error) {
	shard, ref, ok := tokenRef(token)
	if !ok {
		return nil, "", errLinkInvalid()
	}
	t, err := s.readToken(ctx, shard, ref)
	if err != nil {
		return nil, "", err
	}
	if t.Type != "r" {
		return nil, "", errLinkInvalid()
	}
	r, err := s.Get(ctx, t.ID)
	if err != nil {
		return nil, "", err
	}
	if t.Used || !s.opt.Now().Before(t.Until) {
		return r, t.NIC, errLinkGone()
	}
	return r, t.NIC, nil
}

// Dispute records a "this wasn't me" report; it reverts nothing by itself
// but queues the event and the email to the security contact.
func (s *Store) Dispute(ctx context.Context, token string, ch Channel) (*Request, string, error) {
	shard, ref, ok := tokenRef(token)
	if !ok {
		return nil, "", errLinkInvalid()
	}
	t, err := s.readToken(ctx, shard, ref)
	if err != nil {
		return nil, "", err
	}
	if t.Type != "r" {
		return nil, "", errLinkInvalid()
	}
	res, err := s.requestScript(ctx, disputeScript, t.ID, []string{s.keys.Token(shard, ref)}, t.NIC, string(ch))
	if ErrorCode(err) == ENotFound {
		return nil, "", errLinkInvalid()
	}
	if err != nil {
		return nil, "", err
	}
	if res[0] == "gone" {
		return nil, "", errLinkGone()
	}
	r, err := s.Get(ctx, t.ID)
	return r, t.NIC, err
}

// SentMessage is what the store knows of an email contactd sent that
// carried an approver's token, found by its Message-ID.
type SentMessage struct {
	// Request or Handover is what the email was about.
	Request  string
	Handover string
	NIC      string
	Kind     Kind
	// TokenHash is the reference of the token the email carried.
	TokenHash string
}

// LookupSent returns the email contactd sent with the Message-ID id (with
// or without angle brackets) if it carried an approver's token whose
// record is still kept, else nil. The Message-ID of such an email names
// the token's reference (see MessageID), never the token.
func (s *Store) LookupSent(ctx context.Context, id string) (*SentMessage, error) {
	m, ok := ParseMessageID(id)
	if !ok || m.TokenRef == "" {
		return nil, nil
	}
	shard, _ := shardFromID(m.Record)
	t, err := s.readToken(ctx, shard, m.TokenRef)
	if ErrorCode(err) == ENotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if t.ID != m.Record {
		return nil, nil
	}
	out := &SentMessage{NIC: t.NIC, Kind: m.Kind, TokenHash: m.TokenRef}
	switch t.Type {
	case "v":
		out.Request = t.ID
	case "h":
		out.Handover = t.ID
	default:
		return nil, nil
	}
	return out, nil
}
