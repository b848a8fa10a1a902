package web

import (
	"net/http"

	"contactd/locale"
	"contactd/workflow"
)

// getValidation is GET /v/{token}: the request as the approver sees it,
// with the Accept and Decline buttons. It reads and never writes.
func (s *Server) getValidation(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	l, err := s.p.Store.Lookup(ctx, r.PathValue("token"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if l.Handover != nil {
		s.handoverPage(w, r, l)
		return
	}
	req, nic := l.Request, l.NIC
	who := s.parties(ctx, req)
	lang := s.language(r, who.contacts[nic])
	v := newView(lang, tr(lang, "validate_title", nil)+" — "+req.Service, "")
	describe(v, req, who)
	for _, p := range approverPart(lang, req, nic) {
		v.Parts = append(v.Parts, v.html(p))
	}
	for _, a := range req.Approvers() {
		st := req.Approvals[a].Status
		v.Approvals = append(v.Approvals, approvalRow{Who: v.html(who.of(a)), Status: locale.For(lang).Must("approval." + string(st)), Class: string(st)})
	}
	v.Expires = tr(lang, "expires", map[string]any{"Date": locale.For(lang).Date(req.ExpiresAt.In(s.loc))})
	s.render(w, r, http.StatusOK, "validate", v)
}

// postValidation is POST /v/{token}: records the decision and shows the
// outcome.
func (s *Server) postValidation(w http.ResponseWriter, r *http.Request) {
	if err := s.readForm(w, r); err != nil {
		s.pageError(w, r, err)
		return
	}
	d := workflow.Decision(r.PostForm.Get("decision"))
	if d != workflow.Accept && d != workflow.Decline {
		s.pageError(w, r, workflow.Errorf(workflow.EInvalidRequest, "decision must be accept or decline"))
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	out, err := s.p.Store.Decide(ctx, r.PathValue("token"), d, workflow.Web)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if out.Handover != nil {
		s.handoverOutcome(w, r, out)
		return
	}
	s.log.Info("decision recorded", "request_id", out.Request.ID, "nic", out.NIC, "decision", string(d),
		"status", string(out.Request.Status), "channel", string(workflow.Web))
	who := s.parties(ctx, out.Request)
	lang := s.language(r, who.contacts[out.NIC])
	v := newView(lang, tr(lang, "done_title", nil), "ok")
	describe(v, out.Request, who)
	v.say(outcomeText(lang, out, who))
	switch out.Request.Status {
	case workflow.Declined, workflow.Failed:
		v.Tone = "warn"
	}
	s.render(w, r, http.StatusOK, "message", v)
}

// outcomeText says where the request stands after a decision.
func outcomeText(lang workflow.Language, out *workflow.Outcome, who parties) string {
	req := out.Request
	switch {
	case out.Decision == workflow.Decline:
		return tr(lang, "out_declined", nil)
	case req.Status == workflow.Pending:
		var waiting []string
		for _, nic := range req.Awaited() {
			waiting = append(waiting, who.of(nic))
		}
		return tr(lang, "out_waiting", map[string]any{"Waiting": locale.For(lang).Join(waiting)})
	case req.Status == workflow.Approved:
		return tr(lang, "out_approved", nil)
	case req.Status == workflow.Applied:
		return tr(lang, "out_applied", nil)
	case req.Status == workflow.Failed:
		return tr(lang, "out_failed", map[string]any{"Reason": whyFailed(lang, req)})
	}
	return tr(lang, "out_ended", map[string]any{"Status": locale.For(lang).Status(string(req.Status))})
}

// whyFailed says, in lang, why a request failed: from its reason code, or
// from the English words a request failed before reasons were codes kept.
func whyFailed(lang workflow.Language, req *workflow.Request) string {
	if req.Why.Code == "" && req.Reason != "" {
		return req.Reason
	}
	return locale.For(lang).Reason(req.Why.String(), req.Service)
}

// approverPart says why this approver is asked.
func approverPart(lang workflow.Language, req *workflow.Request, nic string) []string {
	var parts []string
	if nic == req.Requester {
		parts = append(parts, tr(lang, "part_requester", nil))
	}
	var roles []string
	for _, role := range workflow.Roles {
		if c, ok := req.Changes[role]; ok && c.To == nic && c.From != nic {
			roles = append(roles, roleName(lang, role))
		}
	}
	if len(roles) > 0 {
		parts = append(parts, tr(lang, "part_new", map[string]any{"Roles": locale.For(lang).Join(roles)}))
	}
	if len(parts) == 0 {
		parts = append(parts, tr(lang, "part_approver", nil))
	}
	return parts
}

// describe fills in the service, the requester and the changes, in the
// view's language, and notes the NIC handles the page names.
func describe(v *view, req *workflow.Request, who parties) {
	v.nics = append(v.nics, req.Requester)
	for _, role := range workflow.Roles {
		if c, ok := req.Changes[role]; ok {
			v.nics = append(v.nics, c.From, c.To)
		}
	}
	v.nics = append(v.nics, req.Approvers()...)
	v.Service = req.Service
	if who.service != nil && who.service.Kind != "" {
		v.ServiceKind = locale.For(v.Lang).Kind(who.service.Kind)
	}
	v.Requester = v.html(who.of(req.Requester))
	for _, role := range workflow.Roles {
		if c, ok := req.Changes[role]; ok {
			v.Changes = append(v.Changes, changeRow{Role: roleName(v.Lang, role), From: v.html(who.of(c.From)), To: v.html(who.of(c.To))})
		}
	}
}
