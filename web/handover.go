package web

import (
	"context"
	"net/http"
	"strings"

	"contactd/locale"
	"contactd/workflow"
)

// The pages and API of a hand-over: one change asked on many services,
// decided once by each approver (see workflow/handover.go).

// handoverPeople is what the directory says about everyone a hand-over's
// page names, read in one round trip.
type handoverPeople map[string]*workflow.Contact

func (p handoverPeople) of(nic string) string { return parties{contacts: p}.of(nic) }

// people reads the contacts a hand-over's page names: its requester, its
// approvers and new holders, and the holders of the services listed.
func (s *Server) people(ctx context.Context, h *workflow.Handover, items []workflow.HandoverItem) handoverPeople {
	nics := append([]string{h.Requester}, h.Approvers()...)
	for _, to := range h.Changes {
		nics = append(nics, to)
	}
	for _, it := range items {
		for _, from := range it.From {
			nics = append(nics, from)
		}
	}
	c, err := s.p.Store.ReadContacts(ctx, nics)
	if err != nil {
		return handoverPeople{}
	}
	return c
}

// describeHandover fills in a hand-over's requester and the services
// listed, each change a row.
func describeHandover(v *view, h *workflow.Handover, items []workflow.HandoverItem, who handoverPeople) {
	v.nics = append(v.nics, h.Requester)
	v.nics = append(v.nics, h.Approvers()...)
	v.Requester = v.html(who.of(h.Requester))
	c := locale.For(v.Lang)
	v.ServicesHeading = tr(v.Lang, "handover_services", map[string]any{"Count": len(items)})
	kinds := map[string]string{}
	v.Services = make([]serviceRow, 0, len(items))
	for _, it := range items {
		kind, ok := kinds[it.Kind]
		if !ok && it.Kind != "" {
			kind = c.Kind(it.Kind)
			kinds[it.Kind] = kind
		}
		for _, r := range workflow.Roles {
			to, changed := h.Changes[r]
			if !changed {
				continue
			}
			from := it.From[r]
			v.Services = append(v.Services, serviceRow{Service: it.Service, Kind: kind, Role: roleName(v.Lang, r),
				From: unbroken(who.of(from), []string{from}), To: unbroken(who.of(to), []string{to})})
		}
	}
}

// handoverPage is GET /v/{token} for a hand-over's token: every service
// and change it covers, and one Accept and one Decline for them all.
func (s *Server) handoverPage(w http.ResponseWriter, r *http.Request, l *workflow.Lookup) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	h := l.Handover
	who := s.people(ctx, h, h.Items)
	lang := s.language(r, who[l.NIC])
	v := newView(lang, tr(lang, "handover_title", nil), "")
	describeHandover(v, h, h.Items, who)
	v.Intro = v.html(tr(lang, "handover_intro", map[string]any{"Requester": who.of(h.Requester)}))
	req := &workflow.Request{Requester: h.Requester, Approvals: h.Approvals, Changes: map[workflow.Role]workflow.Change{}}
	for role, to := range h.Changes {
		req.Changes[role] = workflow.Change{To: to}
	}
	for _, p := range approverPart(lang, req, l.NIC) {
		v.Parts = append(v.Parts, v.html(p))
	}
	for _, a := range h.Approvers() {
		st := h.Approvals[a].Status
		v.Approvals = append(v.Approvals, approvalRow{Who: v.html(who.of(a)), Status: locale.For(lang).Must("approval." + string(st)), Class: string(st)})
	}
	v.Expires = tr(lang, "expires", map[string]any{"Date": locale.For(lang).Date(h.ExpiresAt.In(s.loc))})
	v.Decide = true
	s.render(w, r, http.StatusOK, "handover", v)
}

// handoverOutcome is the page after a decision on a hand-over.
func (s *Server) handoverOutcome(w http.ResponseWriter, r *http.Request, out *workflow.Outcome) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	h := out.Handover
	s.log.Info("decision recorded", "handover_id", h.ID, "nic", out.NIC, "decision", string(out.Decision),
		"state", h.State, "channel", string(workflow.Web))
	who := s.people(ctx, h, nil)
	lang := s.language(r, who[out.NIC])
	v := newView(lang, tr(lang, "done_title", nil), "ok")
	v.nics = append(v.nics, h.Approvers()...)
	switch {
	case out.Decision == workflow.Decline:
		v.Tone = "warn"
		v.say(tr(lang, "handover_out_declined", nil))
	case h.State == "pending":
		var waiting []string
		for _, nic := range h.Awaited() {
			waiting = append(waiting, who.of(nic))
		}
		v.say(tr(lang, "handover_out_waiting", map[string]any{"Waiting": locale.For(lang).Join(waiting)}))
	default:
		v.say(tr(lang, "handover_out_approved", nil))
	}
	s.render(w, r, http.StatusOK, "message", v)
}

// handoverReport is GET /r/{token} for a hand-over's informed email: the
// services the contact was told of, and the "this wasn't me" button.
func (s *Server) handoverReport(w http.ResponseWriter, r *http.Request, l *workflow.ReportLookup) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	h := l.Handover
	items := h.ItemsOf(l.NIC)
	who := s.people(ctx, h, items)
	lang := s.language(r, who[l.NIC])
	v := newView(lang, tr(lang, "report_title", nil), "warn")
	describeHandover(v, h, items, who)
	v.Intro = v.html(tr(lang, "handover_report_intro", map[string]any{"Date": locale.For(lang).Date(h.CreatedAt.In(s.loc))}))
	v.Report = true
	s.render(w, r, http.StatusOK, "handover", v)
}

// createHandover is POST /api/v1/handovers. An Idempotency-Key header
// makes it safe to retry: a second call with the same key within a day
// answers the hand-over the first made.
func (s *Server) createHandover(w http.ResponseWriter, r *http.Request) {
	var ask workflow.HandoverAsk
	if err := readJSON(w, r, &ask, false); err != nil {
		s.apiError(w, r, err)
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	h, err := s.p.Store.CreateHandover(ctx, ask, workflow.API, strings.TrimSpace(r.Header.Get("Idempotency-Key")))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.log.Info("hand-over created", "handover_id", h.ID, "requester", h.Requester, "requests", len(h.Requests),
		"refused", len(h.Refused), "channel", string(workflow.API))
	writeJSON(w, http.StatusCreated, h)
}

// getHandover is GET /api/v1/handovers/{id}.
func (s *Server) getHandover(w http.ResponseWriter, r *http.Request) {
	answer(s, w, r, func(ctx context.Context) (*workflow.Handover, error) {
		return s.p.Store.GetHandover(ctx, r.PathValue("id"))
	})
}

// cancelHandover is POST /api/v1/handovers/{id}/cancel.
func (s *Server) cancelHandover(w http.ResponseWriter, r *http.Request) {
	var b nicBody
	if err := readJSON(w, r, &b, false); err != nil {
		s.apiError(w, r, err)
		return
	}
	if strings.TrimSpace(b.NIC) == "" {
		s.apiError(w, r, workflow.Errorf(workflow.EInvalidRequest, "nic is missing: name the requester"))
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	h, err := s.p.Store.CancelHandover(ctx, r.PathValue("id"), b.NIC, workflow.API)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.log.Info("hand-over cancelled", "handover_id", h.ID, "nic", b.NIC, "channel", string(workflow.API))
	writeJSON(w, http.StatusOK, h)
}

// resendHandover is POST /api/v1/handovers/{id}/resend: 202 with how
// many emails were queued.
func (s *Server) resendHandover(w http.ResponseWriter, r *http.Request) {
	var b nicBody
	if err := readJSON(w, r, &b, true); err != nil {
		s.apiError(w, r, err)
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	n, err := s.p.Store.ResendHandover(ctx, r.PathValue("id"), b.NIC)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"queued": n})
}
