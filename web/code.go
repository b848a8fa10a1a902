package web

import (
	"net/http"
	"strings"

	"contactd/workflow"
)

// getCode is GET /v: one field for the validation code of an email, for
// a contact whose link does not work. Submitted (a GET with ?code=), a
// code of the right shape leads to its page, /v/{code}, which tells
// whether it is valid; this page itself reads nothing from the store and
// so reveals nothing about any request.
func (s *Server) getCode(w http.ResponseWriter, r *http.Request) {
	lang := s.language(r, nil)
	v := newView(lang, tr(lang, "code_title", nil), "")
	q := r.URL.Query()
	if !q.Has("code") {
		s.render(w, r, http.StatusOK, "code", v)
		return
	}
	code, ok := workflow.NormalizeToken(q.Get("code"))
	if !ok {
		v.Tone = "warn"
		if strings.TrimSpace(q.Get("code")) == "" {
			v.say(tr(lang, "code_empty", nil))
		} else {
			v.say(tr(lang, "code_invalid", nil))
		}
		s.render(w, r, http.StatusBadRequest, "code", v)
		return
	}
	http.Redirect(w, r, "/v/"+code, http.StatusSeeOther)
}
