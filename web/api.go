package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"contactd/workflow"
)

// maxJSONBody bounds an API request body.
const maxJSONBody = 64 << 10

// storeCtx bounds one request's calls to the store. A client that goes
// away does not cut them short: a decision or change that arrived whole
// is carried through, and applied at once when it completes a request.
func storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
}

// answer runs one read of the store, bounded by storeTimeout, and answers
// 200 with its result as JSON, or the error.
func answer[T any](s *Server, w http.ResponseWriter, r *http.Request, read func(context.Context) (T, error)) {
	ctx, cancel := storeCtx(r)
	defer cancel()
	v, err := read(ctx)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// readJSON decodes the body of r into dst strictly: a JSON content type,
// one object, no unknown field, nothing after it. With optional, an empty
// body leaves dst as it is.
func readJSON(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return workflow.Errorf(eTooLarge, "the body is larger than %d bytes", maxJSONBody)
	}
	if err != nil {
		return workflow.Errorf(workflow.EInvalidRequest, "the body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return workflow.Errorf(workflow.EInvalidRequest, "the body is empty: a JSON object is expected")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return workflow.Errorf(eMediaType, "the body must be JSON, sent with Content-Type: application/json")
	}
	if !utf8.Valid(body) {
		return workflow.Errorf(workflow.EInvalidRequest, "the body is not valid UTF-8: JSON must be sent in UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return workflow.Errorf(workflow.EInvalidRequest, "unexpected data after the JSON object")
	}
	return nil
}

// jsonError explains a decoding failure without Go type names.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return workflow.Errorf(workflow.EInvalidRequest, "malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ) && typ.Field != "":
		return workflow.Errorf(workflow.EInvalidRequest, "field %s must be %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case errors.As(err, &typ):
		return workflow.Errorf(workflow.EInvalidRequest, "the body must be %s, not %s", jsonKind(typ.Type), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return workflow.Errorf(workflow.EInvalidRequest, "malformed JSON: the body ends too early")
	}
	return workflow.Errorf(workflow.EInvalidRequest, "%s", clip(strings.TrimPrefix(err.Error(), "json: ")))
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "an array"
	}
	return "a number"
}

// createRequest is POST /api/v1/requests.
func (s *Server) createRequest(w http.ResponseWriter, r *http.Request) {
	var ask workflow.Ask
	if err := readJSON(w, r, &ask, false); err != nil {
		s.apiError(w, r, err)
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	req, err := s.p.Store.Create(ctx, ask, workflow.API)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.log.Info("request created", "request_id", req.ID, "service", req.Service, "requester", req.Requester)
	w.Header().Set("Location", "/api/v1/requests/"+req.ID)
	writeJSON(w, http.StatusCreated, req)
}

// listRequests is GET /api/v1/requests?nic=N&status=S ("My requests").
func (s *Server) listRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	nic := q.Get("nic")
	if nic == "" {
		s.apiError(w, r, workflow.Errorf(workflow.EInvalidRequest, "the query parameter nic is required"))
		return
	}
	answer(s, w, r, func(ctx context.Context) ([]*workflow.Request, error) {
		return s.p.Store.List(ctx, nic, q.Get("status"))
	})
}

// getRequest is GET /api/v1/requests/{id}.
func (s *Server) getRequest(w http.ResponseWriter, r *http.Request) {
	answer(s, w, r, func(ctx context.Context) (*workflow.Request, error) { return s.p.Store.Get(ctx, r.PathValue("id")) })
}

// nicBody is the body of resend and cancel.
type nicBody struct {
	NIC string `json:"nic"`
}

// resendRequest is POST /api/v1/requests/{id}/resend.
func (s *Server) resendRequest(w http.ResponseWriter, r *http.Request) {
	var b nicBody
	if err := readJSON(w, r, &b, true); err != nil {
		s.apiError(w, r, err)
		return
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	n, err := s.p.Store.Resend(ctx, r.PathValue("id"), b.NIC)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"queued": n})
}

// cancelRequest is POST /api/v1/requests/{id}/cancel.
func (s *Server) cancelRequest(w http.ResponseWriter, r *http.Request) {
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
	req, err := s.p.Store.Cancel(ctx, r.PathValue("id"), b.NIC, workflow.API)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.log.Info("request cancelled", "request_id", req.ID, "nic", req.Requester)
	writeJSON(w, http.StatusOK, req)
}

// contactServices is GET /api/v1/contacts/{nic}/services ("My contacts").
func (s *Server) contactServices(w http.ResponseWriter, r *http.Request) {
	answer(s, w, r, func(ctx context.Context) ([]workflow.ContactService, error) {
		return s.p.Store.ServicesOf(ctx, r.PathValue("nic"))
	})
}

// getContact is GET /api/v1/contacts/{nic}.
func (s *Server) getContact(w http.ResponseWriter, r *http.Request) {
	answer(s, w, r, func(ctx context.Context) (*workflow.Contact, error) {
		return s.p.Store.GetContact(ctx, r.PathValue("nic"))
	})
}

// contactBody is a contact as PUT sends it: nic may be left out, and
// payment_ok defaults to true.
type contactBody struct {
	NIC       *string `json:"nic"`
	Email     string  `json:"email"`
	Name      string  `json:"name"`
	Language  string  `json:"language"`
	PaymentOK *bool   `json:"payment_ok"`
}

// putContact is PUT /api/v1/contacts/{nic}: create or replace.
func (s *Server) putContact(w http.ResponseWriter, r *http.Request) {
	var b contactBody
	if err := readJSON(w, r, &b, false); err != nil {
		s.apiError(w, r, err)
		return
	}
	nic, err := s.p.Store.NICs().Normalize(r.PathValue("nic"))
	if err == nil && b.NIC != nil {
		err = samePathID("nic", nic, *b.NIC, s.p.Store.NICs().Normalize)
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	c := workflow.Contact{NIC: nic, Email: b.Email, Name: b.Name, Language: b.Language, PaymentOK: b.PaymentOK == nil || *b.PaymentOK}
	ctx, cancel := storeCtx(r)
	defer cancel()
	if b.PaymentOK == nil {
		// Left out, payment_ok keeps its stored value: updating an address
		// must not clear a contact's arrears. A new contact is up to date.
		old, err := s.p.Store.GetContact(ctx, nic)
		switch workflow.ErrorCode(err) {
		case "":
			c.PaymentOK = old.PaymentOK
		case workflow.EUnknownContact:
		default:
			s.apiError(w, r, err)
			return
		}
	}
	saved, err := s.p.Store.PutContact(ctx, c)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.log.Info("contact saved", "nic", saved.NIC)
	writeJSON(w, http.StatusOK, saved)
}

// samePathID checks that an id given in a body names what the path names.
func samePathID(field, inPath, inBody string, normalize func(string) (string, error)) error {
	v, err := normalize(inBody)
	if err != nil {
		return err
	}
	if v != inPath {
		return workflow.Errorf(workflow.EInvalidRequest, "%s %q in the body differs from %q in the path", field, clip(inBody), inPath)
	}
	return nil
}

// getService is GET /api/v1/services/{id}.
func (s *Server) getService(w http.ResponseWriter, r *http.Request) {
	answer(s, w, r, func(ctx context.Context) (*workflow.Service, error) {
		return s.p.Store.GetService(ctx, r.PathValue("id"))
	})
}

// serviceBody is a service as PUT sends it; id may be left out.
type serviceBody struct {
	ID      *string `json:"id"`
	Kind    string  `json:"kind"`
	Admin   string  `json:"admin"`
	Tech    string  `json:"tech"`
	Billing string  `json:"billing"`
}

// putService is PUT /api/v1/services/{id}: create or replace.
func (s *Server) putService(w http.ResponseWriter, r *http.Request) {
	var b serviceBody
	if err := readJSON(w, r, &b, false); err != nil {
		s.apiError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if !utf8.ValidString(id) {
		s.apiError(w, r, workflow.Errorf(workflow.EInvalidRequest, "the service id in the path is not valid UTF-8"))
		return
	}
	if b.ID != nil {
		if err := samePathID("id", id, *b.ID, func(v string) (string, error) { return strings.TrimSpace(v), nil }); err != nil {
			s.apiError(w, r, err)
			return
		}
	}
	ctx, cancel := storeCtx(r)
	defer cancel()
	saved, err := s.p.Store.PutService(ctx, workflow.Service{ID: id, Kind: b.Kind, Admin: b.Admin, Tech: b.Tech, Billing: b.Billing})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.log.Info("service saved", "service", saved.ID)
	writeJSON(w, http.StatusOK, saved)
}
