package templates

import "time"

// SampleToken is the token of Sample's emails: shaped like a real one,
// valid for nothing.
const SampleToken = "kabcdefghijklmnopqrstuvwxyz234567"

// Sample returns the data of an email of kind in lang about a made-up
// request, for an operator to see an email before any is sent. Links
// start with baseURL ({http.base_url}).
func Sample(kind, lang, baseURL string) Data {
	created := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	alice := Person{NIC: "aa1001-ovh", Name: "Alice Martin"}
	bruno := Person{NIC: "bd2002-ovh", Name: "Bruno Durand"}
	david := Person{NIC: "dl4004-ovh", Name: "David Leroy"}
	d := Data{
		Kind: kind, Language: lang, RequestID: "kq7vxkz2mfa3b4c5d",
		Service: "example.com", ServiceKind: "domain",
		Recipient: david, Requester: alice,
		Changes: []Change{{Role: "tech", From: bruno, To: david}},
		Status:  "pending", CreatedAt: created, ExpiresAt: created.Add(336 * time.Hour),
		ReplyAddress: "contacts@example.com",
	}
	switch kind {
	case "validation", "reminder", "resend":
		d.Token, d.Link = SampleToken, baseURL+"/v/"+SampleToken
	case "informed":
		d.Recipient, d.Status = bruno, "applied"
		d.Token, d.Link = SampleToken, baseURL+"/r/"+SampleToken
		d.LinkUntil = created.Add(720 * time.Hour)
	case "recorded":
		d.Answer, d.Awaited = "accepted", []Person{alice}
	case "applied":
		d.Status = "applied"
	case "declined":
		d.Status, d.Decliners = "declined", []Person{david}
	case "expired":
		d.Status, d.Awaited = "expired", []Person{david}
	case "cancelled":
		d.Status = "cancelled"
	case "failed":
		d.Status, d.Reason = "failed", "the technical contact changed meanwhile"
	case "not_understood":
		d.Recipient, d.Reason = Person{}, "no_decision"
	case "undeliverable":
		d.Recipient, d.About = alice, david
	case "disputed":
		d.Recipient, d.About, d.Status = Person{Name: "Security team"}, bruno, "applied"
	}
	return d
}
