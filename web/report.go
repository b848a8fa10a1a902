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
	req, nic, err := s.p.Store.LookupReport(ctx, r.PathValue("token"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
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
	req, nic, err := s.p.Store.Dispute(ctx, r.PathValue("token"), workflow.Web)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
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
