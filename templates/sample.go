package templates

import (
	"fmt"
	"time"

	"contactd/workflow"
)

// SampleToken is the token of Sample's emails: shaped like a real one,
// valid for nothing.
const SampleToken = "kabcdefghijklmnopqrstuvwxyz234567"

// The people of the samples.
var (
	sampleAlice = Person{NIC: "aa1001-ovh", Name: "Alice Martin"}
	sampleBruno = Person{NIC: "bd2002-ovh", Name: "Bruno Durand"}
	sampleDavid = Person{NIC: "dl4004-ovh", Name: "David Leroy"}
)

// Sample returns the data of an email of kind in lang about a made-up
// request, for an operator to see an email before any is sent. Links
// start with baseURL ({http.base_url}).
func Sample(kind workflow.Kind, lang workflow.Language, baseURL string) Data {
	created := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	d := Data{
		Kind: kind, Language: lang, RequestID: "kq7vxkz2mfa3b4c5d",
		Service: "example.com", ServiceKind: "domain",
		Recipient: sampleDavid, Requester: sampleAlice,
		Changes: []Change{{Role: "tech", From: sampleBruno, To: sampleDavid}},
		Status:  "pending", CreatedAt: created, ExpiresAt: created.Add(336 * time.Hour),
		ReplyAddress: "contacts@example.com",
	}
	switch kind {
	case workflow.KindValidation, workflow.KindReminder, workflow.KindResend:
		d.Token, d.Link = SampleToken, baseURL+"/v/"+SampleToken
	case workflow.KindInformed:
		d.Recipient, d.Status = sampleBruno, "applied"
		d.Token, d.Link = SampleToken, baseURL+"/r/"+SampleToken
		d.LinkUntil = created.Add(720 * time.Hour)
	case workflow.KindRecorded:
		d.Answer, d.Awaited = "accepted", []Person{sampleAlice}
	case workflow.KindApplied:
		d.Status = "applied"
	case workflow.KindDeclined:
		d.Status, d.Decliners = "declined", []Person{sampleDavid}
	case workflow.KindExpired:
		d.Status, d.Awaited = "expired", []Person{sampleDavid}
	case workflow.KindCancelled:
		d.Status = "cancelled"
	case workflow.KindFailed:
		d.Status = "failed"
		d.Reason = workflow.Reason{Code: workflow.ReasonRoleChanged, Arg: "tech"}.String()
	case workflow.KindNotUnderstood:
		d.Recipient, d.Reason = Person{}, string(workflow.ReplyNoDecision)
	case workflow.KindUndeliverable:
		d.Recipient, d.About = sampleAlice, sampleDavid
	case workflow.KindDisputed:
		d.Recipient, d.About, d.Status = Person{Name: "Security team"}, sampleBruno, "applied"
	}
	return d
}

// sampleKinds are the service kinds the hand-over sample cycles through:
// the common ones, and one written as free text.
var sampleKinds = []string{"domain", "web hosting", "vps", "dedicated server", "email", "database", "ssl certificate", "storage box"}

// SampleHandover returns the data of the email of kind in lang about a
// made-up hand-over: Alice hands the technical role of her 28 services
// over to David. The email lists the first MaxItems and counts the
// others, as the mailer does. Kinds a hand-over does not send (see
// workflow.HandoverKinds) get the one-request sample.
func SampleHandover(kind workflow.Kind, lang workflow.Language, baseURL string) Data {
	d := Sample(kind, lang, baseURL)
	handover := false
	for _, k := range workflow.HandoverKinds {
		handover = handover || k == kind
	}
	if !handover {
		return d
	}
	d.Handover, d.RequestID, d.Service, d.ServiceKind, d.Changes = "hq4m2x7c9v", "", "", "", nil
	n := 28
	switch kind {
	case workflow.KindInformed, workflow.KindDisputed:
		n = 12 // the services on which Bruno held the role
	case workflow.KindFailed:
		n = 2
	}
	for i := 0; i < n; i++ {
		it := Item{Service: fmt.Sprintf("shop-%02d.example", i+1), ServiceKind: sampleKinds[i%len(sampleKinds)],
			Changes: []Change{{Role: "tech", From: sampleBruno, To: sampleDavid}}}
		if kind == workflow.KindFailed {
			it.Reason = workflow.Reason{Code: workflow.ReasonRoleChanged, Arg: "tech"}.String()
			if i == 1 {
				it.Changes = []Change{{Role: "billing", From: sampleBruno, To: sampleDavid}}
				it.Reason = workflow.Reason{Code: workflow.ReasonPaymentOverdue, Arg: sampleDavid.NIC}.String()
			}
		}
		if len(d.Items) < MaxItems {
			d.Items = append(d.Items, it)
		} else {
			d.More++
		}
	}
	d.Reason = ""
	return d
}
