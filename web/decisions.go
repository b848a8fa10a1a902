package web

import (
	"context"
	"net/http"
	"strings"

	"contactd/workflow"
)

// decisionBody is the body of POST /api/v1/decisions: the validation code
// a contact typed in the control panel, and optionally who they are.
type decisionBody struct {
	Token    string `json:"token"`
	Decision string `json:"decision"`
	NIC      string `json:"nic"`
}

// postDecision is POST /api/v1/decisions ("My requests"): the control
// panel passes on a code a contact typed, with their decision. Given a
// nic, the code must be that contact's, or nothing is recorded.
func (s *Server) postDecision(w http.ResponseWriter, r *http.Request) {
	var b decisionBody
	if err := readJSON(w, r, &b, false); err != nil {
		s.apiError(w, r, err)
		return
	}
	d, err := checkDecision(b)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	if strings.TrimSpace(b.NIC) != "" {
		if err := s.codeBelongsTo(ctx, b.Token, b.NIC); err != nil {
			s.apiError(w, r, codeError(err))
			return
		}
	}
	out, err := s.p.Store.Decide(ctx, b.Token, d, workflow.API)
	if err != nil {
		s.apiError(w, r, codeError(err))
		return
	}
	if out.Handover != nil {
		s.log.Info("decision recorded", "handover_id", out.Handover.ID, "nic", out.NIC, "decision", string(d),
			"state", out.Handover.State, "channel", string(workflow.API))
		h, err := s.p.Store.GetHandover(ctx, out.Handover.ID)
		if err != nil {
			s.log.Warn("cannot read the hand-over back after a decision", "handover_id", out.Handover.ID, "err", err)
			h = out.Handover
		}
		writeJSON(w, http.StatusOK, h)
		return
	}
	s.log.Info("decision recorded", "request_id", out.Request.ID, "nic", out.NIC, "decision", string(d),
		"status", string(out.Request.Status), "channel", string(workflow.API))
	// The answer is the request whole, history included, which a
	// decision's outcome does not carry. The decision is made whatever
	// this read does: should it fail, the request is answered as the
	// decision left it.
	req, err := s.p.Store.Get(ctx, out.Request.ID)
	if err != nil {
		s.log.Warn("cannot read the request back after a decision", "request_id", out.Request.ID, "err", err)
		req = out.Request
	}
	writeJSON(w, http.StatusOK, req)
}

// checkDecision checks the fields of a decision body.
func checkDecision(b decisionBody) (workflow.Decision, error) {
	if strings.TrimSpace(b.Token) == "" {
		return "", workflow.Errorf(workflow.EInvalidRequest, "token is missing: give the validation code the contact typed")
	}
	d := workflow.Decision(strings.ToLower(strings.TrimSpace(b.Decision)))
	if d != workflow.Accept && d != workflow.Decline {
		return "", workflow.Errorf(workflow.EInvalidRequest, "decision must be accept or decline, not %q", clip(b.Decision))
	}
	return d, nil
}

// codeBelongsTo checks that a validation code was sent to nic. A code
// that never existed stays not_found; one sent to someone else is
// not_a_contact, whether it is live or not; a dead code of nic's is gone.
func (s *Server) codeBelongsTo(ctx context.Context, token, nic string) error {
	nic, err := s.p.Store.NICs().Normalize(nic)
	if err != nil {
		return err
	}
	l, err := s.p.Store.Lookup(ctx, token)
	switch workflow.ErrorCode(err) {
	case "", workflow.EGone:
	default:
		return err
	}
	if l.NIC != nic {
		return workflow.Errorf(workflow.ENotAContact, "this validation code was not sent to %s", nic)
	}
	return err
}

// codeError words the store's refusal of a token as one of a typed
// validation code: no link was used, so the message must not speak of one.
func codeError(err error) error {
	switch workflow.ErrorCode(err) {
	case workflow.ENotFound:
		return workflow.Errorf(workflow.ENotFound, "this validation code is not valid")
	case workflow.EGone:
		return workflow.Errorf(workflow.EGone, "this validation code is no longer valid: it was used already, replaced by a newer email, or its request has ended")
	}
	return err
}
