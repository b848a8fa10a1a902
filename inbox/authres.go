package inbox

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// Authenticated reports whether the topmost Authentication-Results field
// written by authservID says the reply's From domain passed DMARC, or DKIM
// with a signing domain (header.d, or the domain of header.i) equal to the
// From domain or a parent of it. Fields lower down may have been written
// by anyone and are not read.
func (r *Reply) Authenticated(authservID string) bool {
	from := domainOf(r.From)
	if from == "" {
		return false
	}
	// Fields are added at the top as a message travels: the first one in
	// the header is the one our own receiving server wrote.
	fields := r.header.FieldsByKey("Authentication-Results")
	for fields.Next() {
		id, results, err := authres.Parse(fields.Value())
		if !strings.EqualFold(strings.TrimSpace(id), authservID) {
			continue
		}
		// Our server's topmost field decides, even when it cannot be
		// read: a field further down could have been written by the sender.
		return err == nil && passes(results, from)
	}
	return false
}

func passes(results []authres.Result, from string) bool {
	for _, res := range results {
		switch v := res.(type) {
		case *authres.DMARCResult:
			if v.Value == authres.ResultPass && (v.From == "" || strings.EqualFold(v.From, from)) {
				return true
			}
		case *authres.DKIMResult:
			d := strings.ToLower(v.Domain)
			if d == "" {
				_, d, _ = strings.Cut(strings.ToLower(v.Identifier), "@")
			}
			if v.Value == authres.ResultPass && d != "" && (from == d || strings.HasSuffix(from, "."+d)) {
				return true
			}
		}
	}
	return false
}
