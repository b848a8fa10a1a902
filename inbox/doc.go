// Package inbox reads the replies that approvers send to contactd's emails
// and acts on them: accept or decline a change request, mark an approver
// undeliverable when a bounce names one of our emails, and set everything
// else aside.
//
// Reading is pure and never trusts the message: [Read] turns a raw RFC 5322
// message into a [Reply] (the decision, the token, the references, whether
// it is automatic). The [Reader] polls an IMAP mailbox (and IDLEs between
// polls), claims each message in Redis so that it is acted on once whatever
// crashes or daemons share the mailbox, acts through the workflow store,
// then flags the messages \Seen and moves them to the processed, rejected
// or ignored mailbox.
package inbox
