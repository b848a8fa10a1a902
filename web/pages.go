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
.card{max-width:40rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px rgba(0,0,0,.12);border-top:.4rem solid #1d4ed8}
.card.ok{border-top-color:#15803d}.card.warn{border-top-color:#b45309}.card.bad{border-top-color:#b91c1c}
h1{font-size:1.5rem;margin:0 0 1rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem;color:#374151}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{font-weight:600}dd{margin:0;min-width:0}
.kind{color:#4b5563}.nic{white-space:nowrap}
table.changes{width:100%;border-collapse:collapse}
.changes th,.changes td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e5e7eb;vertical-align:top}
.changes th{font-size:.85rem;color:#4b5563;font-weight:600}.arrow{color:#4b5563}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
.approvals{list-style:none;padding:0;margin:0}.approvals li{padding:.2rem 0}
.st{font-size:.85rem;padding:.05rem .5rem;border-radius:1rem;background:#e5e7eb;color:#1f2937}.st.accepted{background:#dcfce7;color:#14532d}.st.declined{background:#fee2e2;color:#7f1d1d}
.expires{color:#4b5563;margin-top:1.5rem}.question{font-weight:600}
.buttons{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-start}
button{font:inherit;font-weight:600;padding:.7rem 1.6rem;border-radius:.5rem;border:0;cursor:pointer;color:#fff;min-width:8rem;min-height:2.75rem}
button.accept{background:#15803d}button.decline{background:#b91c1c}button.go{background:#1d4ed8}
details.confirm{flex:1 1 12rem}details.confirm summary{list-style:none;display:inline-block;font-weight:600;padding:.7rem 1.6rem;border-radius:.5rem;cursor:pointer;color:#b91c1c;border:2px solid #b91c1c;min-width:8rem;text-align:center}
details.confirm summary::-webkit-details-marker{display:none}details.confirm[open] summary{background:#fee2e2}
a{color:#1d4ed8}a:focus-visible,summary:focus-visible,button:focus-visible{outline:3px solid #1e3a8a;outline-offset:2px}details.confirm p{margin:.75rem 0}
form.code label{display:block;font-weight:600;margin-bottom:.4rem}
form.code input{display:block;width:100%;font:1.15rem/1.4 ui-monospace,Menlo,Consolas,monospace;letter-spacing:.05em;padding:.6rem .75rem;margin-bottom:1rem;border:1px solid #6b7280;border-radius:.5rem}
form.code input:focus-visible{outline:3px solid #1e3a8a;outline-offset:1px}
.hint{color:#4b5563;font-size:.9rem;margin-top:1.5rem}
.brand{max-width:40rem;margin:1rem auto -1rem;font-weight:700;color:#1e3a8a}.support{max-width:40rem;margin:0 auto;font-size:.85rem;color:#374151;text-align:center}.support a{color:#1e3a8a}
@media (max-width:30rem){body{padding:.5rem}.brand{margin:.5rem auto 0}.card{margin:.5rem auto;padding:1rem}.buttons button{flex:1}details.confirm summary{display:block}.changes th:nth-child(3),.changes td.arrow{display:none}}
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
	for _, name := range []string{"validate", "report", "message", "code", "handover"} {
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(pageFS, "pages/"+name+".html"))
	}
	return out
}()

// maxFormBody bounds a page's form.
const maxFormBody = 4 << 10

// view is what a page shows. The texts that may name a contact are
// HTML in which NIC handles and codes are kept on one line (unbroken).
type view struct {
	Lang  workflow.Language
	T     map[string]template.HTML
	CSS   template.CSS
	Title string
	// Tone colours the card: "" (a question), ok, warn or bad.
	Tone string

	Service, ServiceKind string
	Requester            template.HTML
	Changes              []changeRow
	Parts                []template.HTML
	Approvals            []approvalRow
	Expires              string
	Intro                template.HTML
	Messages             []template.HTML
	// CodeLink offers the page where a validation code can be typed.
	CodeLink bool
	// A hand-over's page lists its Services under ServicesHeading, and
	// offers to Decide them (validation) or to Report them (this wasn't
	// me).
	ServicesHeading string
	Services        []serviceRow
	Decide, Report  bool
	// Brand and SupportURL are branding.name and branding.support_url.
	Brand, SupportURL string

	// nics are the NIC handles the page names, kept unbroken.
	nics []string
}

type changeRow struct {
	Role     string
	From, To template.HTML
}

// serviceRow is one change on one service of a hand-over.
type serviceRow struct {
	Service, Kind, Role string
	From, To            template.HTML
}

type approvalRow struct {
	Who           template.HTML
	Status, Class string
}

func newView(lang workflow.Language, title, tone string) *view {
	return &view{Lang: lang, T: pageTexts[lang], CSS: template.CSS(style), Title: title, Tone: tone}
}

// html is s for the page, its NIC handles and codes kept on one line.
func (v *view) html(s string) template.HTML { return unbroken(s, v.nics) }

// say adds a message to the page.
func (v *view) say(s string) { v.Messages = append(v.Messages, v.html(s)) }

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
// browser's (Accept-Language, among the eight), else
// workflow.default_language.
func (s *Server) language(r *http.Request, c *workflow.Contact) workflow.Language {
	if c != nil {
		if l, ok := workflow.ParseLanguage(c.Language); ok {
			return l
		}
	}
	if l, ok := workflow.MatchAcceptLanguage(r.Header.Get("Accept-Language")); ok {
		return l
	}
	return workflow.Language(s.p.Config.Workflow.DefaultLanguage).Or(workflow.English)
}

// pageError answers a page request that failed. Dead and unknown links
// get the same words, so the page tells nothing about any request.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	f := s.failureOf(r, err)
	lang := s.language(r, nil)
	v := newView(lang, tr(lang, "error_title", nil), "bad")
	message := "e_internal"
	switch f.Code {
	case workflow.ENotFound, workflow.EGone:
		v.Title, v.Tone, message = tr(lang, "invalid_title", nil), "warn", "invalid_text"
		v.CodeLink = strings.HasPrefix(r.Pattern, "/v/")
		if !strings.HasPrefix(r.Pattern, "/v/") && !strings.HasPrefix(r.Pattern, "/r/") {
			v.Title, message = tr(lang, "not_found_title", nil), "not_found_text"
		}
	case workflow.EUnavailable:
		w.Header().Set("Retry-After", "30")
		message = "e_unavailable"
	case workflow.EInvalidRequest:
		v.Tone, message = "warn", "e_decision"
	case eForbidden:
		message = "e_forbidden"
	case eTooLarge:
		message = "e_too_large"
	case eMediaType:
		message = "e_media"
	case eMethodNotAllowed:
		message = "e_method"
	}
	v.say(tr(lang, message, nil))
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
