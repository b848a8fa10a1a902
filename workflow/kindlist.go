package workflow

// EmailKinds lists every kind of email contactd writes, in the order of
// SPEC section 3 and then the notices to the requester and to the
// security contact. It is the one list the templates are checked
// against: every kind has its email in every language.
var EmailKinds = []Kind{KindValidation, KindReminder, KindResend, KindRecorded, KindApplied, KindInformed,
	KindDeclined, KindExpired, KindCancelled, KindFailed, KindNotUnderstood, KindUndeliverable, KindDisputed}

// HandoverKinds lists the kinds of email a hand-over sends: one email per
// recipient for the whole hand-over, listing its services.
var HandoverKinds = []Kind{KindValidation, KindReminder, KindResend, KindRecorded, KindApplied, KindInformed,
	KindDeclined, KindExpired, KindCancelled, KindFailed, KindUndeliverable, KindDisputed}

// ParseEmailKind reads the name of an email kind; it reports false for a
// name that is not one of EmailKinds.
func ParseEmailKind(s string) (Kind, bool) {
	for _, k := range EmailKinds {
		if Kind(s) == k {
			return k, true
		}
	}
	return "", false
}

// KindNames lists the names of kinds as text, for messages that say which
// values are allowed.
func KindNames(kinds []Kind) string {
	s := ""
	for i, k := range kinds {
		if i > 0 {
			s += ", "
		}
		s += string(k)
	}
	return s
}
