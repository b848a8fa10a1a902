package inbox

import (
	"mime"
	"net/mail"
	"strings"

	"contactd/workflow"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// addressParser parses address fields as RFC 5322 says, decoding encoded
// words (RFC 2047) in display names only, in any common charset.
var addressParser = &mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader}}

// fromAddress returns the lower-cased address of the one From field of
// h, and false when there is no such field, several, several addresses
// in it, or none that can be read.
func fromAddress(h textproto.Header) (string, bool) {
	values := h.Values("From")
	if len(values) != 1 {
		return "", false
	}
	list, err := addressParser.ParseList(values[0])
	if err != nil {
		a, ok := angleAddress(values[0])
		return a, ok
	}
	if len(list) != 1 {
		return "", false
	}
	return strings.ToLower(list[0].Address), true
}

// angleAddress reads a From field RFC 5322 parsing refuses, as some
// clients write it (an unquoted @ or bracket in the display name):
// only when it holds one <addr-spec> at its end and no quotes, comments
// or commas that could hide another.
func angleAddress(v string) (string, bool) {
	v = strings.TrimSpace(v)
	i := strings.IndexByte(v, '<')
	if i < 0 || strings.Count(v, "<") != 1 || strings.Count(v, ">") != 1 || !strings.HasSuffix(v, ">") ||
		strings.ContainsAny(v, "\"(),") {
		return "", false
	}
	a, err := mail.ParseAddress(v[i:])
	if err != nil {
		return "", false
	}
	return strings.ToLower(a.Address), true
}

// recipientFields are the header fields that may carry the address the
// reply was sent to, sub-address included.
var recipientFields = []string{"To", "Cc", "Delivered-To", "X-Original-To"}

// subAddressToken returns the token of the first recipient written
// local+TOKEN@domain, where local@domain is the reply address.
func subAddressToken(h textproto.Header, replyAddress string) string {
	local, domain, ok := splitAddress(replyAddress)
	if !ok {
		return ""
	}
	for _, k := range recipientFields {
		for _, v := range h.Values(k) {
			for _, a := range addresses(v) {
				l, d, ok := splitAddress(a)
				if !ok || !strings.EqualFold(d, domain) {
					continue
				}
				base, sub, found := strings.Cut(l, "+")
				if !found || !strings.EqualFold(base, local) {
					continue
				}
				if t, ok := workflow.NormalizeToken(sub); ok {
					return t
				}
			}
		}
	}
	return ""
}

// addresses parses an address list leniently: a field that is not a
// valid list is read as bare addresses separated by commas.
func addresses(v string) []string {
	v = decodeWords(v)
	if list, err := mail.ParseAddressList(v); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if i := strings.LastIndexByte(part, '<'); i >= 0 {
			part = strings.TrimSuffix(part[i+1:], ">")
		}
		if strings.Contains(part, "@") {
			out = append(out, part)
		}
		if len(out) >= 20 {
			break
		}
	}
	return out
}

// splitAddress splits local@domain.
func splitAddress(a string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(a, '@')
	if i <= 0 || i == len(a)-1 {
		return "", "", false
	}
	return a[:i], a[i+1:], true
}

// domainOf returns the lower-cased domain of an address.
func domainOf(a string) string {
	_, d, _ := splitAddress(a)
	return strings.ToLower(d)
}
