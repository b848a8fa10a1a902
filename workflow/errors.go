package workflow

import (
	"errors"
	"fmt"
)

// Error codes of the contract (SPEC section 2), plus the internal ones.
const (
	EInvalidRequest = "invalid_request"
	EInvalidNIC     = "invalid_nic"
	EUnknownService = "unknown_service"
	EUnknownContact = "unknown_contact"
	ENotAContact    = "not_a_contact"
	ERoleNotAllowed = "role_not_allowed"
	ENoChange       = "no_change"
	EPaymentOverdue = "payment_overdue"
	EConflict       = "conflict"
	// ENotFound is a request id or token that does not exist.
	ENotFound = "not_found"
	// EGone is a token that existed but is used, revoked or expired.
	EGone = "gone"
	// EUnavailable is a store that cannot be reached.
	EUnavailable = "unavailable"
	// EInternal is anything else; its message is not shown to users.
	EInternal = "internal"
)

// Error is the one error type of the domain: a code from the list above
// and a message meant for the person who made the call.
type Error struct {
	Code    string
	Message string
	// RequestID names the open request of a conflict.
	RequestID string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: its own if it is an *Error, else
// EInternal (or "" for nil).
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of err fit to show a user: internal
// errors are reduced to "internal error".
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
