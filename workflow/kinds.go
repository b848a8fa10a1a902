package workflow

// Kind names an outbox entry: an email kind of SPEC section 3, or one of
// the entries contactd writes for itself (undeliverable, disputed, event).
type Kind string

// The kinds of outbox entry.
const (
	KindValidation    Kind = "validation"
	KindReminder      Kind = "reminder"
	KindResend        Kind = "resend"
	KindRecorded      Kind = "recorded"
	KindApplied       Kind = "applied"
	KindInformed      Kind = "informed"
	KindDeclined      Kind = "declined"
	KindExpired       Kind = "expired"
	KindCancelled     Kind = "cancelled"
	KindFailed        Kind = "failed"
	KindNotUnderstood Kind = "not_understood"
	// KindUndeliverable tells a requester that an approver's address
	// bounced (the approver is Message.About).
	KindUndeliverable Kind = "undeliverable"
	// KindDisputed tells workflow.security_contact of a "this wasn't me".
	KindDisputed Kind = "disputed"
	// KindEvent is not an email: a request to publish to the events
	// stream and the webhook.
	KindEvent Kind = "event"
	// KindJob is not an email: work that carries a decision on a
	// hand-over (Message.Op) to each of its requests (see RunJob).
	KindJob Kind = "job"
)

// sentEvents names the history event written when an email of a kind
// that carries an approver's token reaches the mail server. It is the one
// list of those kinds.
var sentEvents = map[Kind]string{KindValidation: "sent", KindReminder: "reminded", KindResend: "resent"}

// CarriesToken reports whether emails of kind k carry an approver's
// validation token (and so a new one is issued for each).
func (k Kind) CarriesToken() bool { return sentEvents[k] != "" }

// SentEvent is the history event of a token-carrying email once sent, or "".
func (k Kind) SentEvent() string { return sentEvents[k] }

// ApprovalState is where one approver stands on a request (or a
// hand-over): Approval.Status.
type ApprovalState string

// The states of an approval.
const (
	ApprovalPending  ApprovalState = "pending"
	ApprovalAccepted ApprovalState = "accepted"
	ApprovalDeclined ApprovalState = "declined"
)

// ApprovalStates lists every approval state.
var ApprovalStates = []ApprovalState{ApprovalPending, ApprovalAccepted, ApprovalDeclined}
