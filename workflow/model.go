// Package workflow is contactd's domain: the directory of contacts and
// services, the rules of who may ask for which change, the tokens, the
// lifecycle of a change request, and their Redis store.
package workflow

import (
	"encoding/json"
	"time"
)

// Role is one of the three contacts of a service.
type Role string

// The roles, in the order they are shown.
const (
	Admin   Role = "admin"
	Tech    Role = "tech"
	Billing Role = "billing"
)

// Roles lists every role in display order.
var Roles = []Role{Admin, Tech, Billing}

// ParseRole returns the role named s, or false.
func ParseRole(s string) (Role, bool) {
	switch Role(s) {
	case Admin, Tech, Billing:
		return Role(s), true
	}
	return "", false
}

// Contact is a person or organisation known by its NIC handle.
type Contact struct {
	NIC       string `json:"nic" yaml:"nic"`
	Email     string `json:"email" yaml:"email"`
	Name      string `json:"name" yaml:"name"`
	Language  string `json:"language" yaml:"language"`
	PaymentOK bool   `json:"payment_ok" yaml:"payment_ok"`
}

// Service is a domain, hosting plan or server with its three contacts.
type Service struct {
	ID      string `json:"id" yaml:"id"`
	Kind    string `json:"kind" yaml:"kind"`
	Admin   string `json:"admin" yaml:"admin"`
	Tech    string `json:"tech" yaml:"tech"`
	Billing string `json:"billing" yaml:"billing"`
}

// Holder returns the NIC that holds role r.
func (s Service) Holder(r Role) string {
	switch r {
	case Admin:
		return s.Admin
	case Tech:
		return s.Tech
	case Billing:
		return s.Billing
	}
	return ""
}

// RolesOf lists the roles nic holds on the service.
func (s Service) RolesOf(nic string) []Role {
	var out []Role
	for _, r := range Roles {
		if s.Holder(r) == nic {
			out = append(out, r)
		}
	}
	return out
}

// Status is where a request stands in its lifecycle.
type Status string

// The statuses of SPEC section 2.
const (
	Pending   Status = "pending"
	Approved  Status = "approved"
	Applied   Status = "applied"
	Declined  Status = "declined"
	Expired   Status = "expired"
	Cancelled Status = "cancelled"
	Failed    Status = "failed"
)

// ValidStatus reports whether s names a status.
func ValidStatus(s string) bool {
	switch Status(s) {
	case Pending, Approved, Applied, Declined, Expired, Cancelled, Failed:
		return true
	}
	return false
}

// Channel is the way an action reached contactd.
type Channel string

// The channels of SPEC section 2.
const (
	Web    Channel = "web"
	Email  Channel = "email"
	API    Channel = "api"
	CLI    Channel = "cli"
	System Channel = "system"
)

// Decision is an approver's answer.
type Decision string

// The two decisions.
const (
	Accept  Decision = "accept"
	Decline Decision = "decline"
)

// Change is one role's move from a holder to another.
type Change struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Approval is one approver's state on a request.
type Approval struct {
	Status        ApprovalState `json:"status"`
	Channel       Channel       `json:"channel,omitempty"`
	At            *time.Time    `json:"at,omitempty"`
	Undeliverable bool          `json:"undeliverable,omitempty"`
	Reminders     int           `json:"reminders"`
}

// MarshalJSON writes every field of the contract, null where there is no
// value yet (the channel and time of an approver who has not answered).
func (a Approval) MarshalJSON() ([]byte, error) {
	type approval struct {
		Status        ApprovalState `json:"status"`
		Channel       *Channel      `json:"channel"`
		At            *time.Time    `json:"at"`
		Undeliverable bool          `json:"undeliverable"`
		Reminders     int           `json:"reminders"`
	}
	out := approval{Status: a.Status, At: a.At, Undeliverable: a.Undeliverable, Reminders: a.Reminders}
	if a.Channel != "" {
		out.Channel = &a.Channel
	}
	return json.Marshal(out)
}

// Event is one line of a request's history.
type Event struct {
	At      time.Time `json:"at"`
	Event   string    `json:"event"`
	NIC     string    `json:"nic,omitempty"`
	Channel Channel   `json:"channel"`
}

// MarshalJSON writes every field of the contract, with a null nic for
// events of the system itself.
func (e Event) MarshalJSON() ([]byte, error) {
	type event struct {
		At      time.Time `json:"at"`
		Event   string    `json:"event"`
		NIC     *string   `json:"nic"`
		Channel Channel   `json:"channel"`
	}
	out := event{At: e.At, Event: e.Event, Channel: e.Channel}
	if e.NIC != "" {
		out.NIC = &e.NIC
	}
	return json.Marshal(out)
}

// Request is a change request as the API shows it.
type Request struct {
	ID        string              `json:"id"`
	Service   string              `json:"service"`
	Requester string              `json:"requester"`
	Changes   map[Role]Change     `json:"changes"`
	Status    Status              `json:"status"`
	Approvals map[string]Approval `json:"approvals"`
	Informed  []string            `json:"informed"`
	// Handover is the id of the hand-over the request belongs to, if any.
	Handover  string    `json:"handover,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Reason is, for a failed request, why, in English (the API's
	// language); Why is the same as a code, for pages and emails to word
	// in their reader's language.
	Reason string `json:"reason,omitempty"`
	Why    Reason `json:"-"`
	// ServiceKind is the kind of the service when the request was made,
	// for emails (not part of the API's request).
	ServiceKind string  `json:"-"`
	History     []Event `json:"history"`
}

// Approvers lists the NICs whose agreement the request needs, sorted.
func (r *Request) Approvers() []string {
	out := make([]string, 0, len(r.Approvals))
	for nic := range r.Approvals {
		out = append(out, nic)
	}
	sortStrings(out)
	return out
}

// Awaited lists the approvers who have not answered yet, sorted.
func (r *Request) Awaited() []string {
	var out []string
	for _, nic := range r.Approvers() {
		if r.Approvals[nic].Status == ApprovalPending {
			out = append(out, nic)
		}
	}
	return out
}
