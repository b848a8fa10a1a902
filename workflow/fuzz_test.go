package workflow_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

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

// FuzzParseDirectory checks that no import file can crash the parser,
// that whatever it accepts is clean, and that what it reads record by
// record is what the YAML library reads from the whole file.
func FuzzParseDirectory(f *testing.F) {
	f.Add([]byte(seedYAML))
	f.Add([]byte("contacts:\n  - {nic: ok1-ovh, email: a@example.com}\n"))
	f.Add([]byte("contacts: [{nic: ok1-ovh, email: 'a@example.com', payment_ok: no}]\nservices: [{id: x, admin: ok1-ovh, tech: ok1-ovh, billing: ok1-ovh}]"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("contacts:\n  - &c {nic: ok1-ovh, email: a@example.com}\n  - *c\n"))
	f.Add([]byte("services:\n  - {id: \"a\\u0000b\", admin: x}\n"))
	f.Add([]byte("contacts:\n- nic: ok1-ovh\n  email: a@example.com\n  name: |-\n    x\n# c\n- nic: ok2-ovh\n  email: b@example.com\n"))
	f.Add([]byte("---\ncontacts:\n  -   nic: ok1-ovh\n      email: \"a@example.com\"\n\n  - {nic: ok2-ovh,\n     email: b@example.com}\n...\n"))
	f.Add([]byte("contacts:\n  [{nic: ok1-ovh, email: a@example.com}]\nservices:\n"))
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
		whole := wholeFile(t, s, data)
		if diff := cmp.Diff(whole, d, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("records read one by one differ from the whole file's (-whole +one by one):\n%s", diff)
		}
	})
}

// wholeFile reads an import file the way the YAML library reads it whole,
// each record normalised as the import does.
func wholeFile(t *testing.T, s *workflow.Store, data []byte) *workflow.Directory {
	var raw struct {
		Contacts []yaml.Node `yaml:"contacts"`
		Services []yaml.Node `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatalf("accepted a file the YAML library refuses: %v", err)
	}
	d := &workflow.Directory{}
	for _, n := range raw.Contacts {
		c := workflow.Contact{PaymentOK: true}
		if err := n.Decode(&c); err != nil {
			t.Fatalf("accepted a contact the YAML library refuses: %v", err)
		}
		c, err := s.CheckContact(c)
		if err != nil {
			t.Fatalf("accepted a bad contact: %v", err)
		}
		d.Contacts = append(d.Contacts, c)
	}
	for _, n := range raw.Services {
		var v workflow.Service
		if err := n.Decode(&v); err != nil {
			t.Fatalf("accepted a service the YAML library refuses: %v", err)
		}
		v.ID, v.Kind = strings.TrimSpace(v.ID), strings.TrimSpace(v.Kind)
		for _, p := range []*string{&v.Admin, &v.Tech, &v.Billing} {
			*p = strings.ToLower(strings.TrimSpace(*p))
		}
		d.Services = append(d.Services, v)
	}
	return d
}
