package web

import (
	"net/http"
	"strings"

	"contactd/workflow"
)

// getValidation is GET /v/{token}: the request as the approver sees it,
// with the Accept and Decline buttons. It reads and never writes.
func (s *Server) getValidation(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	req, nic, err := s.p.Store.LookupToken(ctx, r.PathValue("token"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	who := s.parties(ctx, req)
	lang := s.language(r, who.contacts[nic])
	v := newView(lang, tr(lang, "validate_title")+" — "+req.Service, "")
	describe(v, req, who)
	v.Parts = approverPart(lang, req, nic)
	for _, a := range req.Approvers() {
		st := req.Approvals[a].Status
		v.Approvals = append(v.Approvals, approvalRow{Who: who.of(a), Status: tr(lang, "st_"+string(st)), Class: string(st)})
	}
	v.Expires = tr(lang, "expires", formatTime(lang, req.ExpiresAt.In(s.loc)))
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
	s.log.Info("decision recorded", "request_id", out.Request.ID, "nic", out.NIC, "decision", string(d),
		"status", string(out.Request.Status), "channel", string(workflow.Web))
	who := s.parties(ctx, out.Request)
	lang := s.language(r, who.contacts[out.NIC])
	v := newView(lang, tr(lang, "done_title"), "ok")
	v.Messages = []string{outcomeText(lang, out, who)}
	switch out.Request.Status {
	case workflow.Declined, workflow.Failed:
		v.Tone = "warn"
	}
	describe(v, out.Request, who)
	s.render(w, r, http.StatusOK, "message", v)
}

// outcomeText says where the request stands after a decision.
func outcomeText(lang string, out *workflow.Outcome, who parties) string {
	req := out.Request
	switch {
	case out.Decision == workflow.Decline:
		return tr(lang, "out_declined")
	case req.Status == workflow.Pending:
		var waiting []string
		for _, nic := range req.Awaited() {
			waiting = append(waiting, who.of(nic))
		}
		return tr(lang, "out_waiting", strings.Join(waiting, ", "))
	case req.Status == workflow.Approved:
		return tr(lang, "out_approved")
	case req.Status == workflow.Applied:
		return tr(lang, "out_applied")
	case req.Status == workflow.Failed:
		return tr(lang, "out_failed", req.Reason)
	}
	return tr(lang, "out_ended", tr(lang, "status_"+string(req.Status)))
}

// approverPart says why this approver is asked.
func approverPart(lang string, req *workflow.Request, nic string) []string {
	var parts []string
	if nic == req.Requester {
		parts = append(parts, tr(lang, "part_requester"))
	}
	var roles []string
	for _, role := range workflow.Roles {
		if c, ok := req.Changes[role]; ok && c.To == nic && c.From != nic {
			roles = append(roles, roleName(lang, role))
		}
	}
	if len(roles) > 0 {
		and := map[string]string{"en": " and ", "fr": " et "}[lang]
		parts = append(parts, tr(lang, "part_new", strings.Join(roles, and)))
	}
	if len(parts) == 0 {
		parts = append(parts, tr(lang, "part_approver"))
	}
	return parts
}

// describe fills in the service, the requester and the changes.
func describe(v *view, req *workflow.Request, who parties) {
	v.Service = req.Service
	if who.service != nil {
		v.ServiceKind = who.service.Kind
	}
	v.Requester = who.of(req.Requester)
	for _, role := range workflow.Roles {
		if c, ok := req.Changes[role]; ok {
			v.Changes = append(v.Changes, changeRow{Role: roleName(v.Lang, role), From: who.of(c.From), To: who.of(c.To)})
		}
	}
}
