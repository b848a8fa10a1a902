package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"contactd/workflow"
)

// Codes of the HTTP layer, beside the workflow's codes of SPEC section 2.
const (
	eUnauthorized     = "unauthorized"
	eForbidden        = "forbidden"
	eMethodNotAllowed = "method_not_allowed"
	eTooLarge         = "too_large"
	eMediaType        = "unsupported_media_type"
)

// statusOf is the one place where an error code becomes an HTTP status.
// A code it does not know is an internal error.
func statusOf(code string) int {
	switch code {
	case workflow.EInvalidRequest, workflow.EInvalidNIC:
		return http.StatusBadRequest
	case eUnauthorized:
		return http.StatusUnauthorized
	case workflow.ENotAContact, workflow.ERoleNotAllowed, eForbidden:
		return http.StatusForbidden
	case workflow.EUnknownService, workflow.EUnknownContact, workflow.ENotFound:
		return http.StatusNotFound
	case eMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case workflow.EConflict:
		return http.StatusConflict
	case workflow.EGone:
		return http.StatusGone
	case eTooLarge:
		return http.StatusRequestEntityTooLarge
	case eMediaType:
		return http.StatusUnsupportedMediaType
	case workflow.ENoChange, workflow.EPaymentOverdue:
		return http.StatusUnprocessableEntity
	case workflow.EUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// failure is what a response says about an error: its status, code and
// a message fit to show. Internal errors are logged and reduced to
// "internal error"; an unreachable store never shows its address.
type failure struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (s *Server) failureOf(r *http.Request, err error) failure {
	code := workflow.ErrorCode(err)
	if errors.Is(err, context.DeadlineExceeded) {
		code = workflow.EUnavailable
	}
	f := failure{Status: statusOf(code), Code: code, Message: workflow.ErrorMessage(err)}
	var we *workflow.Error
	if errors.As(err, &we) {
		f.RequestID = we.RequestID
	}
	switch f.Status {
	case http.StatusInternalServerError:
		s.log.Error("request failed", "route", r.Pattern, "method", r.Method, "err", err)
		f.Code, f.Message, f.RequestID = workflow.EInternal, "internal error", ""
	case http.StatusServiceUnavailable:
		s.log.Warn("store unavailable", "route", r.Pattern, "method", r.Method, "err", err)
		f.Code, f.Message = workflow.EUnavailable, "the service is temporarily unavailable, try again later"
	}
	return f
}

// errorBody is the JSON shape of every API error.
type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id,omitempty"`
	} `json:"error"`
}

// apiError answers an API call with the JSON error for err.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	f := s.failureOf(r, err)
	var b errorBody
	b.Error.Code, b.Error.Message, b.Error.RequestID = f.Code, f.Message, f.RequestID
	if f.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, f.Status, b)
}

// writeJSON answers with v as JSON. The body is application/json, never
// HTML, so <, > and & are written as they are ("Bearer <token>"), not
// escaped for a page as json.Marshal does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	body := []byte(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
	if err := enc.Encode(v); err == nil {
		body = buf.Bytes()
	} else {
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
