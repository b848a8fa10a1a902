package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Lookup is what a validation token is for: a request, or a hand-over,
// and the approver it belongs to.
type Lookup struct {
	Request  *Request
	Handover *Handover
	NIC      string
}

// Lookup tells what a validation token is for, a request or a hand-over,
// without changing anything. A token that never existed is ENotFound; a
// used, revoked or expired one is EGone (with what it was for still
// returned, for logging only). A hand-over comes with its items.
func (s *Store) Lookup(ctx context.Context, token string) (*Lookup, error) {
	shard, ref, ok := tokenRef(token)
	if !ok {
		return nil, errLinkInvalid()
	}
	t, err := s.readToken(ctx, shard, ref)
	if err != nil {
		return nil, err
	}
	switch t.Type {
	case "v":
		r, nic, err := s.requestOfToken(ctx, shard, ref, t)
		return &Lookup{Request: r, NIC: nic}, err
	case "h":
		h, f, err := s.handoverFields(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		l := &Lookup{Handover: h, NIC: t.NIC}
		if h.State != "pending" || !s.opt.Now().Before(h.ExpiresAt) || h.Approvals[t.NIC].Status != ApprovalPending ||
			!liveRef(f, t.NIC, ref) {
			return l, errLinkGone()
		}
		return l, nil
	}
	return nil, errLinkInvalid()
}

// handoverFields reads a hand-over with its items, and its raw fields.
func (s *Store) handoverFields(ctx context.Context, id string) (*Handover, map[string]string, error) {
	shard, err := handoverRef(id)
	if err != nil {
		return nil, nil, err
	}
	pipe := s.rdb.Pipeline()
	f := pipe.HGetAll(ctx, s.keys.Handover(shard, id))
	items := pipe.Get(ctx, s.keys.HandoverItems(shard, id))
	if err := execReads(ctx, pipe); err != nil {
		return nil, nil, err
	}
	h, err := s.decodeHandover(id, f.Val())
	if err != nil {
		return nil, nil, err
	}
	h.Items = parseItems(items.Val())
	return h, f.Val(), nil
}

// decideHandover records a decision made with a hand-over's token.
func (s *Store) decideHandover(ctx context.Context, shard int, ref string, t tokenRecord, d Decision, ch Channel) (*Outcome, error) {
	res, err := s.runHandover(ctx, hoDecideScript, shard, t.ID, nil, t.NIC, ref, string(d), string(ch))
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "unknown":
		return nil, errLinkInvalid()
	case "gone":
		return nil, errLinkGone()
	case "corrupt":
		return nil, fmt.Errorf("workflow: hand-over %s cannot be read", t.ID)
	}
	s.count(res[0])
	f := pairs(res[1:])
	h, err := s.decodeHandover(t.ID, f)
	if err != nil {
		return nil, err
	}
	switch job := f["_job"]; res[0] {
	case "approved":
		s.carryOut(ctx, t.ID, job, "apply", "", "")
	case "declined":
		s.carryOut(ctx, t.ID, job, "declined", t.NIC, ch)
	}
	return &Outcome{Handover: h, NIC: t.NIC, Decision: d}, nil
}

// handoverScript runs a hand-over script on hand-over id and maps its
// common answers.
func (s *Store) handoverScript(ctx context.Context, sc *redis.Script, id string, extra []string, args ...any) ([]string, error) {
	shard, err := handoverRef(id)
	if err != nil {
		return nil, err
	}
	res, err := s.runHandover(ctx, sc, shard, id, extra, args...)
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "unknown":
		return nil, Errorf(ENotFound, "no hand-over with id %q", id)
	case "corrupt":
		return nil, fmt.Errorf("workflow: hand-over %s cannot be read", id)
	}
	return res, nil
}

// CancelHandover ends a pending hand-over, and every request of it still
// pending, at its requester's demand.
func (s *Store) CancelHandover(ctx context.Context, id, nic string, ch Channel) (*Handover, error) {
	nic, err := s.nics.Normalize(nic)
	if err != nil {
		return nil, err
	}
	res, err := s.handoverScript(ctx, hoCancelScript, id, nil, nic, string(ch))
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "forbidden":
		return nil, Errorf(ERoleNotAllowed, "only the requester may cancel hand-over %s", id)
	case "notpending":
		return nil, &Error{Code: EConflict, Message: fmt.Sprintf("hand-over %s is %s, not pending", id, apiState(res[1]))}
	}
	s.count("cancelled")
	s.carryOut(ctx, id, pairs(res[1:])["_job"], "cancelled", nic, ch)
	return s.GetHandover(ctx, id)
}

// apiState words a hand-over's own state for a message.
func apiState(st string) string {
	switch st {
	case "approved", "ending":
		return "being carried out"
	case "applied":
		return "applied"
	case "ended":
		return "ended"
	}
	return st
}

// ResendHandover queues a new email (with a new token) to one approver of
// a pending hand-over, or to every one who has not answered. It returns
// how many emails were queued.
func (s *Store) ResendHandover(ctx context.Context, id, nic string) (int, error) {
	if nic != "" {
		var err error
		if nic, err = s.nics.Normalize(nic); err != nil {
			return 0, err
		}
	}
	res, err := s.handoverScript(ctx, hoResendScript, id, nil, nic, s.opt.RemindAfter.Milliseconds())
	if err != nil {
		return 0, err
	}
	switch res[0] {
	case "notpending":
		return 0, &Error{Code: EConflict, Message: fmt.Sprintf("hand-over %s is %s, not pending", id, apiState(res[1]))}
	case "notapprover":
		return 0, Errorf(EInvalidRequest, "%s is not an approver of hand-over %s", nic, id)
	case "answered":
		return 0, &Error{Code: EConflict, Message: fmt.Sprintf("%s has already answered hand-over %s", nic, id)}
	}
	n, _ := strconv.Atoi(res[1])
	return n, nil
}

// markHandoverUndeliverable records that an email to an approver of a
// hand-over bounced.
func (s *Store) markHandoverUndeliverable(ctx context.Context, id, nic string) error {
	res, err := s.handoverScript(ctx, hoUndeliverableScript, id, nil, nic)
	if ErrorCode(err) == ENotFound || (err == nil && res[0] == "unknown") {
		return Errorf(ENotFound, "no approver %s on hand-over %s", nic, id)
	}
	return err
}

// ReportLookup is what a "this wasn't me" token is for: a request, or a
// hand-over (with the requests it told the contact of), and the contact.
type ReportLookup struct {
	Request  *Request
	Handover *Handover
	NIC      string
}

// LookupAnyReport is LookupReport for the tokens of both a request's and
// a hand-over's informed email.
func (s *Store) LookupAnyReport(ctx context.Context, token string) (*ReportLookup, error) {
	shard, ref, ok := tokenRef(token)
	if !ok {
		return nil, errLinkInvalid()
	}
	t, err := s.readToken(ctx, shard, ref)
	if err != nil {
		return nil, err
	}
	switch t.Type {
	case "r":
		r, nic, err := s.LookupReport(ctx, token)
		return &ReportLookup{Request: r, NIC: nic}, err
	case "g":
		h, err := s.readHandover(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		l := &ReportLookup{Handover: h, NIC: t.NIC}
		if t.Used || !s.opt.Now().Before(t.Until) {
			return l, errLinkGone()
		}
		return l, nil
	}
	return nil, errLinkInvalid()
}

// DisputeAny is Dispute for the tokens of both a request's and a
// hand-over's informed email. For a hand-over, the report is recorded on
// each of the contact's applied requests by a job, and the security
// contact gets one email.
func (s *Store) DisputeAny(ctx context.Context, token string, ch Channel) (*ReportLookup, error) {
	shard, ref, ok := tokenRef(token)
	if !ok {
		return nil, errLinkInvalid()
	}
	t, err := s.readToken(ctx, shard, ref)
	if err != nil {
		return nil, err
	}
	if t.Type == "r" {
		r, nic, err := s.Dispute(ctx, token, ch)
		if err != nil {
			return nil, err
		}
		return &ReportLookup{Request: r, NIC: nic}, nil
	}
	if t.Type != "g" {
		return nil, errLinkInvalid()
	}
	res, err := s.handoverScript(ctx, hoDisputeScript, t.ID, []string{s.keys.Token(shard, ref)}, t.NIC, string(ch))
	if ErrorCode(err) == ENotFound {
		return nil, errLinkInvalid()
	}
	if err != nil {
		return nil, err
	}
	if res[0] == "gone" {
		return nil, errLinkGone()
	}
	h, err := s.readHandover(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	return &ReportLookup{Handover: h, NIC: t.NIC}, nil
}

// ItemsOf lists the items of a hand-over on which nic lost a role.
func (h *Handover) ItemsOf(nic string) []HandoverItem {
	var out []HandoverItem
	for _, it := range h.Items {
		for _, from := range it.From {
			if from == nic {
				out = append(out, it)
				break
			}
		}
	}
	return out
}

// IsApprover reports whether nic is an approver of the hand-over.
func (h *Handover) IsApprover(nic string) bool {
	_, ok := h.Approvals[nic]
	return ok
}

// Approvers lists the approvers of the hand-over, sorted.
func (h *Handover) Approvers() []string {
	r := &Request{Approvals: h.Approvals}
	return r.Approvers()
}

// Awaited lists the approvers who have not answered, sorted.
func (h *Handover) Awaited() []string {
	r := &Request{Approvals: h.Approvals}
	return r.Awaited()
}

// sweepHandovers expires the hand-overs of a shard whose time is up,
// queues their due reminders, and finishes the creations left half done.
func (s *Store) sweepHandovers(ctx context.Context, shard int, expire, remind, create []string, res *SweepResult) error {
	for _, id := range expire {
		out, err := s.handoverScript(ctx, hoExpireScript, id, nil)
		if ErrorCode(err) == EUnavailable {
			return err
		}
		if err != nil {
			_ = s.itemFailed("expire hand-over", id, err, res)
			continue
		}
		if out[0] == "expired" {
			res.Expired++
			s.count("expired")
		}
	}
	for _, member := range remind {
		id, nic, _ := strings.Cut(member, " ")
		out, err := s.handoverScript(ctx, hoRemindScript, id, nil, nic, s.opt.MaxReminders, s.opt.RemindAfter.Milliseconds())
		if ErrorCode(err) == EUnavailable {
			return err
		}
		if err != nil {
			_ = s.itemFailed("remind hand-over", member, err, res)
			continue
		}
		if out[0] == "reminded" {
			res.Reminded++
		}
	}
	for _, id := range create {
		if err := s.repairHandover(ctx, id); ErrorCode(err) == EUnavailable {
			return err
		} else if err != nil {
			_ = s.itemFailed("finish hand-over", id, err, res)
		}
	}
	return nil
}

// repairHandover finishes the creation of a hand-over whose daemon
// stopped half-way: the requests it made are kept, the services it did
// not get to are refused, and the approvers get their email.
func (s *Store) repairHandover(ctx context.Context, id string) error {
	shard, err := handoverRef(id)
	if err != nil {
		return err
	}
	planned, err := s.rdb.Get(ctx, s.keys.HandoverItems(shard, id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return storeErr(err)
	}
	items := parseItems(planned)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(items))
	for i, it := range items {
		sh, _ := shardFromID(it.Request)
		cmds[i] = pipe.HGet(ctx, s.keys.Request(sh, it.Request), "ho")
	}
	if len(items) > 0 {
		if err := execReads(ctx, pipe); err != nil {
			return err
		}
	}
	refusedText, _ := s.rdb.Get(ctx, s.keys.HandoverRefused(shard, id)).Result()
	var made []HandoverItem
	var refused []Refusal
	for i, it := range items {
		if cmds[i].Val() == id {
			made = append(made, it)
			continue
		}
		refused = append(refused, Refusal{Service: it.Service, Code: EConflict,
			Message: "the hand-over's creation was interrupted before this service's request was made; hand it over again"})
	}
	for _, l := range strings.Split(refusedText, "\n") {
		var r Refusal
		if json.Unmarshal([]byte(l), &r) == nil && r.Service != "" {
			refused = append(refused, r)
		}
	}
	s.opt.Logger.Warn("finishing a hand-over whose creation was interrupted", "handover_id", id,
		"requests_made", len(made), "services_refused", len(refused))
	return s.finalizeHandover(ctx, id, made, refused)
}
