package workflow

import "strings"

// ReasonCode names why a request ended failed. The store keeps the code,
// never a sentence: the words are written only when an email or a page
// shows the reason, in its reader's language (templates and web), or in
// English for the API.
type ReasonCode string

// The reasons a request fails when it is applied (SPEC section 2).
const (
	// ReasonRoleChanged: the holder of a role changed since the request
	// was made. Reason.Arg is the role.
	ReasonRoleChanged ReasonCode = "role_changed"
	// ReasonPaymentOverdue: a billing contact is not up to date with
	// payments. Reason.Arg is the NIC of that contact.
	ReasonPaymentOverdue ReasonCode = "payment_overdue"
)

// ReasonCodes lists every reason code.
var ReasonCodes = []ReasonCode{ReasonRoleChanged, ReasonPaymentOverdue}

// Reason is a reason code with its one argument (a role, a NIC).
type Reason struct {
	Code ReasonCode
	Arg  string
}

// String is the stored form of r: "code:arg", or "" for no reason.
func (r Reason) String() string {
	if r.Code == "" {
		return ""
	}
	if r.Arg == "" {
		return string(r.Code)
	}
	return string(r.Code) + ":" + r.Arg
}

// ParseReason reads the stored form of a reason. A value that is not one
// of ours (a request failed before reasons were codes kept an English
// sentence) is returned with an empty Code and the text as Arg, for a
// reader to show as it is.
func ParseReason(s string) Reason {
	code, arg, _ := strings.Cut(s, ":")
	for _, c := range ReasonCodes {
		if ReasonCode(code) == c {
			return Reason{Code: c, Arg: arg}
		}
	}
	return Reason{Arg: s}
}

// English writes r as the API shows it (the API speaks English; emails and
// pages write reasons in their reader's language).
func (r Reason) English(service string) string {
	switch r.Code {
	case ReasonRoleChanged:
		return "the " + r.Arg + " contact of " + service + " changed since the request was made"
	case ReasonPaymentOverdue:
		return "billing contact " + r.Arg + " is not up to date with payments"
	}
	return r.Arg
}
