package workflow

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzQuickRecord checks that whatever record the quick reader reads, the
// YAML library reads the same.
func FuzzQuickRecord(f *testing.F) {
	for _, s := range []string{
		"  - {nic: ab1-ovh, email: a@example.com, name: Ann Smith, language: fr}\n",
		"  - {nic: ab1-ovh,email: a@example.com,   name: Ann  Smith , payment_ok: false}\r\n",
		"- nic: ab1-ovh\n  email: a.b+c@example-mail.com\n  name: Zoë Müller (ACME)\n  payment_ok: true\n",
		"    - nic: 123\n      name: 2001-12-14\n      email: 1e3\n      language: 0x1F\n",
		"  - {id: vps-1.ovh.net, kind: web hosting, admin: ab1-ovh, tech: ab2-ovh, billing: 1_000}\n",
		"  - {nic: ab1-ovh, name: no, language: Null}\n",
		"  - {nic: ab1-ovh, name: a/b}\n  - {nic: x}\n",
		"  - nic: ab1-ovh\n    email: a\n   name: b\n",
		"  - {nic: ab1-ovh, nic: ab2-ovh}\n",
		"  - {nic: ab1-ovh} # c\n",
		"  - nic: x\n    name: y\n      z\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		var quick Contact
		if quickContact(text, &quick) {
			slow := Contact{}
			if err := slowRecord(text, &slow, contactFields); err != nil {
				t.Fatalf("quick reader read %+v, the library refuses it: %v", quick, err)
			}
			if diff := cmp.Diff(slow, quick); diff != "" {
				t.Fatalf("quick reader differs from the library (-library +quick):\n%s", diff)
			}
		}
		var qs Service
		if quickService(text, &qs) {
			var slow Service
			if err := slowRecord(text, &slow, serviceFields); err != nil {
				t.Fatalf("quick reader read %+v, the library refuses it: %v", qs, err)
			}
			if diff := cmp.Diff(slow, qs); diff != "" {
				t.Fatalf("quick reader differs from the library (-library +quick):\n%s", diff)
			}
		}
	})
}

func slowRecord(text []byte, out any, fields []string) error {
	n, err := (&record{line: 1, text: text}).decode()
	if err != nil {
		return err
	}
	return decodeStrict(n, out, fields)
}
