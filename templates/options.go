package templates

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Options are what an operator sets once for every email: who the
// provider is, and the time zone dates are written in.
type Options struct {
	// Brand is the provider's name, shown in the signature; "" writes a
	// generic signature.
	Brand string
	// SupportURL is where a contact can check that an email is genuine or
	// ask for help; "" leaves it out.
	SupportURL string
	// Location is the time zone of the dates; nil means UTC.
	Location *time.Location
}

// WithOptions returns a copy of the set that renders with o.
func (s *Set) WithOptions(o Options) *Set {
	c := *s
	c.opt = o
	return &c
}

// GroupCode writes a validation code for reading and typing: groups of
// four characters joined by dashes, the last group taking a lone
// character left over ("kabc-defg-…-34567").
func GroupCode(code string) string {
	if !utf8.ValidString(code) || len(code) < 8 {
		return code
	}
	var groups []string
	for len(code) > 5 {
		groups = append(groups, code[:4])
		code = code[4:]
	}
	return strings.Join(append(groups, code), "-")
}

// fill completes d with what Render derives: the grouped code and the
// address of the code page (from the token and the link the mailer gives),
// the branding, and every date in the set's time zone.
func (s *Set) fill(d Data) Data {
	if d.Token != "" && d.Kind.CarriesToken() {
		if d.Code == "" {
			d.Code = GroupCode(d.Token)
		}
		if d.CodeURL == "" {
			if base, ok := strings.CutSuffix(d.Link, "/v/"+d.Token); ok {
				d.CodeURL = base + "/v"
			}
		}
	}
	if d.Brand == "" {
		d.Brand = OneLine(s.opt.Brand)
	}
	if d.SupportURL == "" {
		d.SupportURL = OneLine(s.opt.SupportURL)
	}
	loc := s.opt.Location
	if loc == nil {
		loc = time.UTC
	}
	for _, t := range []*time.Time{&d.CreatedAt, &d.ExpiresAt, &d.LinkUntil} {
		*t = t.In(loc)
	}
	return d
}
