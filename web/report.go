package web

import (
	"net/http"
	"time"

	"contactd/locale"
	"contactd/workflow"
)

// getReport is GET /r/{token}: what changed, and a button to say "this
// wasn't me". It reads and never writes.
func (s *Server) getReport(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	l, err := s.p.Store.LookupAnyReport(ctx, r.PathValue("token"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if l.Handover != nil {
		s.handoverReport(w, r, l)
		return
	}
	req, nic := l.Request, l.NIC
	who := s.parties(ctx, req)
	lang := s.language(r, who.contacts[nic])
	v := newView(lang, tr(lang, "report_title", nil)+" — "+req.Service, "warn")
	describe(v, req, who)
	v.Intro = v.html(tr(lang, "report_intro", map[string]any{"Date": locale.For(lang).Date(appliedAt(req).In(s.loc))}))
	s.render(w, r, http.StatusOK, "report", v)
}

// postReport is POST /r/{token}: records the dispute.
func (s *Server) postReport(w http.ResponseWriter, r *http.Request) {
	if err := s.readForm(w, r); err != nil {
		s.pageError(w, r, err)
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	l, err := s.p.Store.DisputeAny(ctx, r.PathValue("token"), workflow.Web)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if l.Handover != nil {
		s.log.Warn("change disputed", "handover_id", l.Handover.ID, "nic", l.NIC, "channel", string(workflow.Web))
		lang := s.language(r, nil)
		if c, err := s.p.Store.ReadContacts(ctx, []string{l.NIC}); err == nil {
			lang = s.language(r, c[l.NIC])
		}
		v := newView(lang, tr(lang, "done_title", nil), "ok")
		v.nics = []string{l.NIC}
		v.say(tr(lang, "reported", nil))
		s.render(w, r, http.StatusOK, "message", v)
		return
	}
	req, nic := l.Request, l.NIC
	s.log.Warn("change disputed", "request_id", req.ID, "nic", nic, "service", req.Service, "channel", string(workflow.Web))
	who := s.parties(ctx, req)
	lang := s.language(r, who.contacts[nic])
	v := newView(lang, tr(lang, "done_title", nil), "ok")
	describe(v, req, who)
	v.say(tr(lang, "reported", nil))
	s.render(w, r, http.StatusOK, "message", v)
}

// appliedAt is when the request was applied (its last event otherwise).
func appliedAt(req *workflow.Request) time.Time {
	var last time.Time
	for _, e := range req.History {
		if e.Event == string(workflow.Applied) {
			return e.At
		}
		last = e.At
	}
	return last
}
