package web

import (
	"context"
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
	lang := s.language(ctx, r, nic)
	names := s.names(ctx, req)
	v := newView(lang, tr(lang, "validate_title")+" — "+req.Service, "")
	s.describe(ctx, v, req, names)
	v.Parts = approverPart(lang, req, nic)
	for _, a := range req.Approvers() {
		st := req.Approvals[a].Status
		v.Approvals = append(v.Approvals, approvalRow{Who: names.of(a), Status: tr(lang, "st_"+st), Class: st})
	}
	v.Expires = tr(lang, "expires", formatTime(lang, req.ExpiresAt))
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
	lang := s.language(ctx, r, out.NIC)
	names := s.names(ctx, out.Request)
	v := newView(lang, tr(lang, "done_title"), "ok")
	v.Messages = []string{outcomeText(lang, out, names)}
	switch out.Request.Status {
	case workflow.Declined, workflow.Failed:
		v.Tone = "warn"
	}
	s.describe(ctx, v, out.Request, names)
	s.render(w, r, http.StatusOK, "message", v)
}

// outcomeText says where the request stands after a decision.
func outcomeText(lang string, out *workflow.Outcome, names contactNames) string {
	req := out.Request
	switch {
	case out.Decision == workflow.Decline:
		return tr(lang, "out_declined")
	case req.Status == workflow.Pending:
		var who []string
		for _, nic := range req.Awaited() {
			who = append(who, names.of(nic))
		}
		return tr(lang, "out_waiting", strings.Join(who, ", "))
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
func (s *Server) describe(ctx context.Context, v *view, req *workflow.Request, names contactNames) {
	v.Service = req.Service
	if svc, err := s.p.Store.GetService(ctx, req.Service); err == nil {
		v.ServiceKind = svc.Kind
	}
	v.Requester = names.of(req.Requester)
	for _, role := range workflow.Roles {
		if c, ok := req.Changes[role]; ok {
			v.Changes = append(v.Changes, changeRow{Role: roleName(v.Lang, role), From: names.of(c.From), To: names.of(c.To)})
		}
	}
}

// contactNames maps NICs to the names of the directory.
type contactNames map[string]string

// of writes a contact as "Name (nic)", or the NIC alone when unnamed.
func (n contactNames) of(nic string) string {
	if name := n[nic]; name != "" {
		return name + " (" + nic + ")"
	}
	return nic
}

// names looks up everyone a request mentions; a contact that cannot be
// read is shown by NIC only.
func (s *Server) names(ctx context.Context, req *workflow.Request) contactNames {
	out := contactNames{}
	add := func(nic string) {
		if _, done := out[nic]; done || nic == "" {
			return
		}
		out[nic] = ""
		if c, err := s.p.Store.GetContact(ctx, nic); err == nil {
			out[nic] = c.Name
		}
	}
	add(req.Requester)
	for _, c := range req.Changes {
		add(c.From)
		add(c.To)
	}
	for nic := range req.Approvals {
		add(nic)
	}
	return out
}
