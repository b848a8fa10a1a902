package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"strings"

	"contactd/workflow"
)

//go:embed pages/*.html
var pageFS embed.FS

// style is the pages' only stylesheet, inline; the Content-Security-Policy
// allows it by its hash and nothing else.
const style = `*{box-sizing:border-box}
body{margin:0;padding:1rem;background:#f3f4f6;color:#1f2937;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.card{max-width:40rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px rgba(0,0,0,.12);border-top:.4rem solid #2563eb}
.card.ok{border-top-color:#16a34a}.card.warn{border-top-color:#d97706}.card.bad{border-top-color:#dc2626}
h1{font-size:1.5rem;margin:0 0 1rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem;color:#374151}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{font-weight:600}dd{margin:0}
.kind{color:#6b7280}
table.changes{width:100%;border-collapse:collapse}
.changes th,.changes td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e5e7eb;vertical-align:top}
.changes th{font-size:.85rem;color:#6b7280;font-weight:600}.arrow{color:#6b7280}
.approvals{list-style:none;padding:0;margin:0}.approvals li{padding:.2rem 0}
.st{font-size:.85rem;padding:.05rem .5rem;border-radius:1rem;background:#e5e7eb}.st.accepted{background:#dcfce7}.st.declined{background:#fee2e2}
.expires{color:#6b7280;margin-top:1.5rem}.question{font-weight:600}
.buttons{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-start}
button{font:inherit;font-weight:600;padding:.7rem 1.6rem;border-radius:.5rem;border:0;cursor:pointer;color:#fff;min-width:8rem}
button.accept{background:#16a34a}button.decline{background:#dc2626}button.go{background:#2563eb}
details.confirm{flex:1 1 12rem}details.confirm summary{list-style:none;display:inline-block;font-weight:600;padding:.7rem 1.6rem;border-radius:.5rem;cursor:pointer;color:#dc2626;border:2px solid #dc2626;min-width:8rem;text-align:center}
details.confirm summary::-webkit-details-marker{display:none}details.confirm[open] summary{background:#fee2e2}
details.confirm summary:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}details.confirm p{margin:.75rem 0}
form.code label{display:block;font-weight:600;margin-bottom:.4rem}
form.code input{display:block;width:100%;font:1.15rem/1.4 ui-monospace,Menlo,Consolas,monospace;letter-spacing:.05em;padding:.6rem .75rem;margin-bottom:1rem;border:1px solid #9ca3af;border-radius:.5rem}
form.code input:focus-visible{outline:3px solid #93c5fd;outline-offset:1px}
.hint{color:#6b7280;font-size:.9rem;margin-top:1.5rem}
.brand{max-width:40rem;margin:1rem auto -1rem;font-weight:700;color:#1e3a8a}.support{max-width:40rem;margin:0 auto;font-size:.85rem;color:#6b7280;text-align:center}.support a{color:#6b7280}button:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}
@media (max-width:30rem){body{padding:.5rem}.card{margin:.5rem auto;padding:1rem}.buttons button{flex:1}.changes th:nth-child(3),.changes td.arrow{display:none}}
`

// styleHash is the CSP source for style.
var styleHash = func() string {
	sum := sha256.Sum256([]byte(style))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

// pageTemplates are the pages by name, each joined to the layout.
var pageTemplates = func() map[string]*template.Template {
	base := template.Must(template.ParseFS(pageFS, "pages/layout.html", "pages/request.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"validate", "report", "message", "code"} {
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(pageFS, "pages/"+name+".html"))
	}
	return out
}()

// maxFormBody bounds a page's form.
const maxFormBody = 4 << 10

// view is what a page shows.
type view struct {
	Lang  string
	T     map[string]string
	CSS   template.CSS
	Title string
	// Tone colours the card: "" (a question), ok, warn or bad.
	Tone string

	Service, ServiceKind string
	Requester            string
	Changes              []changeRow
	Parts                []string
	Approvals            []approvalRow
	Expires              string
	Intro                string
	Messages             []string
	// CodeLink offers the page where a validation code can be typed.
	CodeLink bool
	// Brand and SupportURL are branding.name and branding.support_url.
	Brand, SupportURL string
}

type changeRow struct{ Role, From, To string }

type approvalRow struct{ Who, Status, Class string }

func newView(lang, title, tone string) *view {
	return &view{Lang: lang, T: texts[lang], CSS: template.CSS(style), Title: title, Tone: tone}
}

// brand puts the provider's name and support address on a page, so a
// contact can tell it is genuine.
func (s *Server) brand(v *view) *view {
	v.Brand, v.SupportURL = s.p.Config.Branding.Name, s.p.Config.Branding.SupportURL
	return v
}

// render writes a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	var buf bytes.Buffer
	if err := pageTemplates[name].ExecuteTemplate(&buf, "layout", s.brand(v)); err != nil {
		s.log.Error("page template failed", "route", r.Pattern, "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// language picks the page language: the contact's own when known, else the
// browser's, else workflow.default_language.
func (s *Server) language(r *http.Request, c *workflow.Contact) string {
	if c != nil && texts[c.Language] != nil {
		return c.Language
	}
	if l := acceptLanguage(r.Header.Get("Accept-Language")); l != "" {
		return l
	}
	if texts[s.p.Config.Workflow.DefaultLanguage] != nil {
		return s.p.Config.Workflow.DefaultLanguage
	}
	return "en"
}

// pageError answers a page request that failed. Dead and unknown links
// get the same words, so the page tells nothing about any request.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	f := s.failureOf(r, err)
	lang := s.language(r, nil)
	v := newView(lang, tr(lang, "error_title"), "bad")
	switch f.Code {
	case workflow.ENotFound, workflow.EGone:
		v.Title, v.Tone = tr(lang, "invalid_title"), "warn"
		v.Messages = []string{tr(lang, "invalid_text")}
		v.CodeLink = strings.HasPrefix(r.Pattern, "/v/")
		if !strings.HasPrefix(r.Pattern, "/v/") && !strings.HasPrefix(r.Pattern, "/r/") {
			v.Title, v.Messages = tr(lang, "not_found_title"), []string{tr(lang, "not_found_text")}
		}
	case workflow.EUnavailable:
		w.Header().Set("Retry-After", "30")
		v.Messages = []string{tr(lang, "e_unavailable")}
	case workflow.EInvalidRequest:
		v.Tone, v.Messages = "warn", []string{tr(lang, "e_decision")}
	case eForbidden:
		v.Messages = []string{tr(lang, "e_forbidden")}
	case eTooLarge:
		v.Messages = []string{tr(lang, "e_too_large")}
	case eMediaType:
		v.Messages = []string{tr(lang, "e_media")}
	case eMethodNotAllowed:
		v.Messages = []string{tr(lang, "e_method")}
	default:
		v.Messages = []string{tr(lang, "e_internal")}
	}
	s.render(w, r, f.Status, "message", v)
}

// readForm checks where a form comes from, its type and its size, and
// parses it.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) error {
	if err := s.cross.Check(r); err != nil {
		return workflow.Errorf(eForbidden, "cross-site form post refused")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return workflow.Errorf(eMediaType, "a form (application/x-www-form-urlencoded) is expected")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return workflow.Errorf(eTooLarge, "the form is larger than %d bytes", maxFormBody)
		}
		return workflow.Errorf(workflow.EInvalidRequest, "the form could not be read")
	}
	return nil
}
