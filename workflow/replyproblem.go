package workflow

// ReplyProblem names why an email reply could not be acted on (SPEC
// section 4). The inbox logs it and stores it in the not_understood email
// it answers with; the templates write it in the sender's language.
type ReplyProblem string

// The problems of a reply. The first ones are those a not_understood
// email explains; the last three are worded as a close one (Mailed).
const (
	ReplyNoToken      ReplyProblem = "no_token"      // no token anywhere, no reference to our emails
	ReplyTwoTokens    ReplyProblem = "conflict"      // two carriers name different tokens
	ReplyUnknownToken ReplyProblem = "unknown_token" // a token that never existed
	ReplyDeadToken    ReplyProblem = "dead_token"    // used, revoked, or its request has ended
	ReplyNoDecision   ReplyProblem = "no_decision"   // the first line is not a decision word
	ReplyWrongSender  ReplyProblem = "wrong_sender"  // From is not the approver's email on file
	ReplyNotAuthentic ReplyProblem = "not_authentic" // no dmarc or dkim pass from inbox.authserv_id
	ReplyTooLarge     ReplyProblem = "too_large"     // over inbox.max_message_bytes
	ReplyUnreadable   ReplyProblem = "unreadable"    // not a parseable email
	ReplyTwoDecisions ReplyProblem = "two_decisions" // the first line says both
	ReplyBadFrom      ReplyProblem = "bad_from"      // no usable From: nobody to answer
)

// ReplyProblems lists every reply problem.
var ReplyProblems = []ReplyProblem{ReplyNoToken, ReplyTwoTokens, ReplyUnknownToken, ReplyDeadToken, ReplyNoDecision,
	ReplyWrongSender, ReplyNotAuthentic, ReplyTooLarge, ReplyUnreadable, ReplyTwoDecisions, ReplyBadFrom}

// MailedProblems lists the problems a not_understood email explains:
// Mailed maps every problem to one of them.
var MailedProblems = []ReplyProblem{ReplyNoToken, ReplyTwoTokens, ReplyUnknownToken, ReplyDeadToken, ReplyNoDecision,
	ReplyWrongSender, ReplyNotAuthentic, ReplyTooLarge}

// ParseReplyProblem reads a problem's name; it reports false for a name
// that is not one of ReplyProblems.
func ParseReplyProblem(s string) (ReplyProblem, bool) {
	for _, p := range ReplyProblems {
		if ReplyProblem(s) == p {
			return p, true
		}
	}
	return "", false
}

// Mailed is the problem the not_understood email names for p: an
// unreadable message or one that says both words is worded as "no
// decision", a bad From (never answered: there is nobody to answer) as
// the closest, a wrong sender.
func (p ReplyProblem) Mailed() ReplyProblem {
	switch p {
	case ReplyUnreadable, ReplyTwoDecisions:
		return ReplyNoDecision
	case ReplyBadFrom:
		return ReplyWrongSender
	}
	return p
}
