package workflow_test

import (
	"strings"
	"testing"

	"contactd/workflow"
)

// FuzzNormalizeNIC checks that any input either is refused with
// invalid_nic or comes back lower-case, trimmed and matching the pattern.
func FuzzNormalizeNIC(f *testing.F) {
	for _, s := range []string{"aa123456-ovh", "AA123456-OVH", " ab1-ovh ", "a1-ovh", "aa-ovh", "aa1-ovh\n", "ää1-ovh", "", "aa1-ovh-ovh", strings.Repeat("a", 100) + "1-ovh"} {
		f.Add(s)
	}
	nics, err := workflow.NewNICs(`^[a-z]{2}[0-9]+-ovh$`)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := nics.Normalize(in)
		if err != nil {
			if workflow.ErrorCode(err) != workflow.EInvalidNIC {
				t.Fatalf("Normalize(%q) error code %q", in, workflow.ErrorCode(err))
			}
			return
		}
		if got != strings.ToLower(strings.TrimSpace(in)) || strings.ContainsAny(got, " \r\n{}") {
			t.Fatalf("Normalize(%q) = %q", in, got)
		}
		again, err := nics.Normalize(got)
		if err != nil || again != got {
			t.Fatalf("Normalize is not idempotent on %q: %q, %v", got, again, err)
		}
	})
}

// FuzzParseDirectory checks that no import file can crash the parser, and
// that whatever it accepts is clean.
func FuzzParseDirectory(f *testing.F) {
	f.Add([]byte(seedYAML))
	f.Add([]byte("contacts:\n  - {nic: ok1-ovh, email: a@example.com}\n"))
	f.Add([]byte("contacts: [{nic: ok1-ovh, email: 'a@example.com', payment_ok: no}]\nservices: [{id: x, admin: ok1-ovh, tech: ok1-ovh, billing: ok1-ovh}]"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("contacts:\n  - &c {nic: ok1-ovh, email: a@example.com}\n  - *c\n"))
	f.Add([]byte("services:\n  - {id: \"a\\u0000b\", admin: x}\n"))
	s, err := workflow.NewStore(nil, workflow.Options{NICPattern: `^[a-z]{2}[0-9]+-ovh$`})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := s.ParseDirectory(data, func(string) (bool, error) { return false, nil })
		if err != nil {
			if c := workflow.ErrorCode(err); c == workflow.EInternal {
				t.Fatalf("internal error for bad input: %v", err)
			}
			return
		}
		for _, c := range d.Contacts {
			if c.NIC != strings.ToLower(c.NIC) || (c.Language != "en" && c.Language != "fr") || strings.ContainsAny(c.Name, "\r\n") {
				t.Fatalf("accepted an unclean contact %+v", c)
			}
		}
		for _, v := range d.Services {
			if !workflow.ValidServiceID(v.ID) {
				t.Fatalf("accepted service id %q", v.ID)
			}
		}
	})
}
