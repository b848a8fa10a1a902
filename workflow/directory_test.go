package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"contactd/internal/redistest"
	"contactd/workflow"

	"github.com/google/go-cmp/cmp"
)

func TestImport(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		d, err := s.Import(ctx, []byte(seedYAML))
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Contacts) != 8 || len(d.Services) != 4 {
			t.Fatalf("imported %d contacts, %d services", len(d.Contacts), len(d.Services))
		}
		c, err := s.GetContact(ctx, "TE1-OVH")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&workflow.Contact{NIC: "te1-ovh", Email: "tech@example.com", Name: "Tom Tech", Language: "fr", PaymentOK: true}, c); diff != "" {
			t.Errorf("contact (-want +got):\n%s", diff)
		}
		if c, _ := s.GetContact(ctx, "bi1-ovh"); c.Language != "en" || !c.PaymentOK {
			t.Errorf("defaults not applied: %+v", c)
		}
		if c, _ := s.GetContact(ctx, "od1-ovh"); c.PaymentOK {
			t.Errorf("payment_ok: false not kept: %+v", c)
		}
		// An import is an upsert: a second file may name known contacts.
		_, err = s.Import(ctx, []byte("contacts:\n  - {nic: ad1-ovh, email: alice@example.org, name: Alice}\nservices:\n  - {id: b.example, kind: domain, admin: ad1-ovh, tech: te1-ovh, billing: ad1-ovh}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := s.GetContact(ctx, "ad1-ovh"); c.Email != "alice@example.org" {
			t.Errorf("upsert did not replace the email: %+v", c)
		}
		svcs, _ := s.ServicesOf(ctx, "ad1-ovh")
		if len(svcs) != 4 {
			t.Errorf("ad1-ovh holds roles on %d services, want 4: %+v", len(svcs), svcs)
		}
	})
}

func TestImportRejectsWholeFile(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"bad nic", "contacts:\n  - {nic: ok1-ovh, email: a@example.com}\n  - {nic: bad, email: b@example.com}\n", "line 3:"},
		{"bad email", "contacts:\n  - {nic: ok1-ovh, email: not-an-address}\n", "line 2:"},
		{"bad language", "contacts:\n  - nic: ok1-ovh\n    email: a@example.com\n    language: xx\n", "line 2:"},
		{"unknown field", "contacts:\n  - nic: ok1-ovh\n    email: a@example.com\n    phone: 123\n", "line 4: unknown field \"phone\""},
		{"unknown contact in service", "contacts:\n  - {nic: ok1-ovh, email: a@example.com}\nservices:\n  - {id: x.example, admin: ok1-ovh, tech: zz1-ovh, billing: ok1-ovh}\n", "line 4:"},
		{"missing role", "contacts:\n  - {nic: ok1-ovh, email: a@example.com}\nservices:\n  - {id: x.example, admin: ok1-ovh, tech: ok1-ovh}\n", "line 4:"},
		{"duplicate contact", "contacts:\n  - {nic: ok1-ovh, email: a@example.com}\n  - {nic: OK1-OVH, email: b@example.com}\n", "line 3:"},
		{"wrong type", "contacts:\n  - {nic: ok1-ovh, email: a@example.com, payment_ok: maybe}\n", "line 2:"},
		{"unknown top key", "people: []\n", "line 1:"},
		{"not yaml", "contacts: [\n", "line"},
		{"list expected", "contacts: 3\n", "line 1:"},
		{"list expected below", "contacts:\n  nic: ok1-ovh\n", "line 2: contacts must be a list"},
		{"second list", "contacts: []\nservices: []\ncontacts:\n  - {nic: ok1-ovh, email: a@example.com}\n", "line 3: contacts: is given twice"},
		{"bad service after good ones", "contacts:\n  - {nic: ok1-ovh, email: a@example.com}\nservices:\n" +
			"  - {id: a.example, admin: ok1-ovh, tech: ok1-ovh, billing: ok1-ovh}\n  - {id: b.example, admin: ok1-ovh, tech: ok1-ovh, billing: ok1-ovh, extra: 1}\n", "line 5: unknown field \"extra\""},
		{"unknown contact before a bad service", "contacts:\n  - {nic: ok1-ovh, email: a@example.com}\nservices:\n" +
			"  - {id: a.example, admin: ok1-ovh, tech: zz1-ovh, billing: ok1-ovh}\n  - {id: b example, admin: ok1-ovh, tech: ok1-ovh, billing: ok1-ovh}\n", "line 4: service a.example: tech contact zz1-ovh"},
		{"duplicate service", "contacts:\n  - {nic: ok1-ovh, email: a@example.com}\nservices:\n" +
			"  - {id: a.example, admin: ok1-ovh, tech: ok1-ovh, billing: ok1-ovh}\n  - {id: a.example, admin: ok1-ovh, tech: ok1-ovh, billing: ok1-ovh}\n", "line 5: service a.example is listed twice"},
		{"duplicate in a flow list", "contacts: [\n  {nic: ok1-ovh, email: a@example.com},\n  {nic: ok1-ovh, email: b@example.com}]\n", "line 3: contact ok1-ovh is listed twice"},
		{"syntax error in a record", "contacts:\n  - {nic: ok1-ovh, email: a@example.com}\n  - {nic: ok2-ovh, email: b@example.com\n  - {nic: ok3-ovh}\n", "line 3: did not find expected ',' or '}'"},
		{"record not indented", "contacts:\n  - nic: ok1-ovh\n email: a@example.com\n", "line 3: expected \"- \" at column 3"},
		{"alias across records", "contacts:\n  - {nic: ok1-ovh, email: &e a@example.com}\n  - {nic: ok2-ovh, email: *e}\n", "line 3: an alias (*name) names an anchor of another record"},
		{"alias in a record", "contacts:\n  - nic: ok1-ovh\n    email: &e a@example.com\n    name: *e\n", "line 4: aliases (*e) are not accepted"},
		{"second document", "contacts: []\n---\nservices: []\n", "line 2: a second YAML document"},
		{"content after ---", "--- contacts: []\n", "line 1: nothing may follow ---"},
		{"directive", "%YAML 1.1\n---\ncontacts: []\n", "line 1: YAML directives"},
		{"after the end", "contacts: []\n...\nservices: []\n", "line 3: content after the end of the document"},
		{"indented top key", "  contacts: []\n", "line 1: expected contacts: or services: at column 1"},
		{"empty file", "", "line 1: expected a mapping with contacts: and services: lists"},
		{"record too long", "contacts:\n  - nic: ok1-ovh\n    email: a@example.com\n    name: x\n" + strings.Repeat("    # padding\n", 6000) + "    language: en\n", "line 2: a record longer than 64 KiB"},
		{"flow list too long", "contacts: [" + strings.Repeat("\n  {nic: ok1-ovh, email: a@example.com},", 30000) + "]\n", "line 1: a list in flow style ([...]) longer than 1024 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := redistest.Mini(t)
			s := newStore(t, b, newClock())
			_, err := s.Import(context.Background(), []byte(tt.yaml))
			if err == nil {
				t.Fatal("import accepted a bad file")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if keys := b.Mini.Keys(); len(keys) != 0 {
				t.Errorf("a rejected import wrote %v", keys)
			}
		})
	}
}

func TestPutService(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b, newClock())
	seed(t, s)
	ctx := context.Background()
	_, err := s.PutService(ctx, workflow.Service{ID: "new.example", Admin: "ad1-ovh", Tech: "zz1-ovh", Billing: "ad1-ovh"})
	wantCode(t, err, workflow.EUnknownContact)
	_, err = s.PutService(ctx, workflow.Service{ID: "new example", Admin: "ad1-ovh", Tech: "ad1-ovh", Billing: "ad1-ovh"})
	wantCode(t, err, workflow.EInvalidRequest)
	_, err = s.PutService(ctx, workflow.Service{ID: "new.example", Admin: "ad1", Tech: "ad1-ovh", Billing: "ad1-ovh"})
	wantCode(t, err, workflow.EInvalidNIC)
	v, err := s.PutService(ctx, workflow.Service{ID: "new.example", Kind: "domain", Admin: "AD1-OVH", Tech: "te1-ovh", Billing: "ad1-ovh"})
	if err != nil || v.Admin != "ad1-ovh" {
		t.Fatalf("put = %+v, %v", v, err)
	}
	_, err = s.GetService(ctx, "missing.example")
	wantCode(t, err, workflow.EUnknownService)
}

func TestDirectoryChecks(t *testing.T) {
	b := redistest.Mini(t)
	c := newClock()
	s, err := workflow.NewStore(b.Client, workflow.Options{KeyPrefix: b.Prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`,
		RequestTTL: ttl, RemindAfter: remindAfter, DefaultLanguage: "fr", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := s.PutContact(ctx, workflow.Contact{NIC: "ab1-ovh", Email: "a@example.com", Name: "Anne"})
	if err != nil || got.Language != "fr" {
		t.Fatalf("contact without a language = %+v, %v; want workflow.default_language", got, err)
	}
	for _, name := range []string{"a\x00b", "a\tb", "a\nb", strings.Repeat("x", 201), "\xff"} {
		_, err := s.PutContact(ctx, workflow.Contact{NIC: "ab1-ovh", Email: "a@example.com", Name: name})
		wantCode(t, err, workflow.EInvalidRequest)
	}
	for _, id := range []string{"a\xffb", "a b", "a{b}", ""} {
		if workflow.ValidServiceID(id) {
			t.Errorf("ValidServiceID(%q) = true", id)
		}
	}
	_, err = s.PutService(ctx, workflow.Service{ID: "x.example", Kind: strings.Repeat("k", 101), Admin: "ab1-ovh", Tech: "ab1-ovh", Billing: "ab1-ovh"})
	wantCode(t, err, workflow.EInvalidRequest)
	// A malformed NIC is reported before an unknown one, whatever the role.
	_, err = s.PutService(ctx, workflow.Service{ID: "x.example", Admin: "zz9-ovh", Tech: "bad", Billing: "ab1-ovh"})
	wantCode(t, err, workflow.EInvalidNIC)
}

func TestMyContactsFollowsTheService(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		seed(t, s)
		if _, err := s.PutService(ctx, workflow.Service{ID: "example.com", Kind: "domain", Admin: "ad1-ovh", Tech: "nw2-ovh", Billing: "bi1-ovh"}); err != nil {
			t.Fatal(err)
		}
		before, err := b.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, nic := range []string{"te1-ovh", "nw2-ovh"} {
			l, err := s.ServicesOf(ctx, nic)
			if err != nil {
				t.Fatal(err)
			}
			has := false
			for _, cs := range l {
				has = has || cs.Service == "example.com"
			}
			if has != (nic == "nw2-ovh") {
				t.Errorf("%s lists example.com: %v", nic, has)
			}
		}
		if ids, _ := s.IndexedServices(ctx, "te1-ovh"); slices.Contains(ids, "example.com") {
			t.Errorf("the former tech keeps its pointer to the service: %v", ids)
		}
		after, _ := b.Keys(ctx)
		if strings.Join(before, ",") != strings.Join(after, ",") {
			t.Error("reading My contacts changed the keys")
		}
	})
}

func TestParties(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b, newClock())
	seed(t, s)
	r := created(t, s, "example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	svc, contacts, err := s.Parties(context.Background(), r, "BI1-OVH", "zz9-ovh", "bad nic")
	if err != nil {
		t.Fatal(err)
	}
	if svc == nil || svc.Kind != "domain" {
		t.Errorf("service = %+v", svc)
	}
	var nics []string
	for nic := range contacts {
		nics = append(nics, nic)
	}
	sort.Strings(nics)
	if diff := cmp.Diff([]string{"ad1-ovh", "bi1-ovh", "nw1-ovh", "te1-ovh"}, nics); diff != "" {
		t.Errorf("contacts read (-want +got):\n%s", diff)
	}
}

func TestContactAddressIndex(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		seed(t, s)
		is := func(address string) bool {
			t.Helper()
			ok, err := s.IsContactAddress(ctx, address)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !is(" TECH@Example.com ") || is("stranger@example.com") || is("") {
			t.Fatal("the address of a contact is not recognised, or a stranger's is")
		}
		if _, err := s.PutContact(ctx, workflow.Contact{NIC: "te1-ovh", Email: "tom@example.org", Name: "Tom Tech"}); err != nil {
			t.Fatal(err)
		}
		if is("tech@example.com") || !is("tom@example.org") {
			t.Error("a changed address is not followed")
		}
		if nics, _ := s.IndexedNICs(ctx, "tech@example.com"); len(nics) != 0 {
			t.Errorf("the former address still points to %v", nics)
		}
		// Two contacts may share an address; each keeps its pointer.
		if _, err := s.PutContact(ctx, workflow.Contact{NIC: "nw1-ovh", Email: "Tom@example.org"}); err != nil {
			t.Fatal(err)
		}
		if nics, _ := s.IndexedNICs(ctx, "tom@example.org"); !slices.Equal(nics, []string{"nw1-ovh", "te1-ovh"}) {
			t.Errorf("tom@example.org points to %v", nics)
		}
		if _, err := s.PutContact(ctx, workflow.Contact{NIC: "nw1-ovh", Email: "nora@example.net"}); err != nil {
			t.Fatal(err)
		}
		if !is("tom@example.org") {
			t.Error("the contact still at an address lost it when another left it")
		}
	})
}

// TestServicesOfAnAgency lists the services of a NIC holding roles on
// 10,000 of them, beside a NIC that shares its index bucket.
func TestServicesOfAnAgency(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		const n = 10000
		agency, _ := workflow.IndexSlot("ag1-ovh")
		neighbour := ""
		for i := 2; neighbour == ""; i++ {
			if bucket, _ := workflow.IndexSlot(fmt.Sprintf("nb%d-ovh", i)); bucket == agency {
				neighbour = fmt.Sprintf("nb%d-ovh", i)
			}
		}
		var dir strings.Builder
		fmt.Fprintf(&dir, "contacts:\n  - {nic: ag1-ovh, email: agency@example.com}\n  - {nic: %s, email: nb@example.com}\nservices:\n", neighbour)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&dir, "  - {id: s%05d.example, admin: ag1-ovh, tech: ag1-ovh, billing: %s}\n", i, map[bool]string{true: neighbour, false: "ag1-ovh"}[i == 7])
		}
		if _, err := s.Import(ctx, []byte(dir.String())); err != nil {
			t.Fatal(err)
		}
		l, err := s.ServicesOf(ctx, "AG1-OVH")
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != n || l[0].Service != "s00000.example" || l[n-1].Service != fmt.Sprintf("s%05d.example", n-1) {
			t.Fatalf("the agency lists %d services, want %d in order", len(l), n)
		}
		if want := []workflow.Role{workflow.Admin, workflow.Tech}; !slices.Equal(l[7].Roles, want) {
			t.Errorf("roles on s00007.example = %v, want %v", l[7].Roles, want)
		}
		if want := []workflow.Role{workflow.Admin, workflow.Tech, workflow.Billing}; !slices.Equal(l[8].Roles, want) {
			t.Errorf("roles on s00008.example = %v, want %v", l[8].Roles, want)
		}
		nb, err := s.ServicesOf(ctx, neighbour)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]workflow.ContactService{{Service: "s00007.example", Roles: []workflow.Role{workflow.Billing}}}, nb); diff != "" {
			t.Errorf("services of %s, who shares the agency's bucket (-want +got):\n%s", neighbour, diff)
		}
	})
}

// TestImportLayouts reads the same directory written in the layouts YAML
// allows: block lists indented or not, records as flow or block mappings,
// comments, blank lines, CRLF line ends, a byte-order mark, lists in flow
// style, services before contacts.
func TestImportLayouts(t *testing.T) {
	want := &workflow.Directory{
		Contacts: []workflow.Contact{
			{NIC: "ok1-ovh", Email: "a@example.com", Name: "Ann # not a comment", Language: "fr", PaymentOK: true},
			{NIC: "ok2-ovh", Email: "b@example.com", Name: "Bob", Language: "en", PaymentOK: false},
		},
		Services: []workflow.Service{
			{ID: "a.example", Kind: "web hosting", Admin: "ok1-ovh", Tech: "ok2-ovh", Billing: "ok1-ovh"},
			{ID: "b.example", Kind: "", Admin: "ok2-ovh", Tech: "ok2-ovh", Billing: "ok2-ovh"},
		},
	}
	layouts := map[string]string{
		"indented flow records": `contacts:
  - {nic: ok1-ovh, email: a@example.com, name: "Ann # not a comment", language: fr}
  - {nic: OK2-OVH, email: b@example.com, name: Bob, payment_ok: false}
services:
  - {id: a.example, kind: web hosting, admin: ok1-ovh, tech: ok2-ovh, billing: ok1-ovh}
  - {id: b.example, admin: ok2-ovh, tech: ok2-ovh, billing: ok2-ovh}
`,
		"block records at column 0, comments and blank lines": `# The directory
---
contacts:   # people
- nic: ok1-ovh
  # the first
  email: a@example.com

  name: 'Ann # not a comment'
  language: fr
# between records

- nic: ok2-ovh
  email: b@example.com
  name: >-
    Bob
  payment_ok: no

services:
- id: a.example
  kind: web hosting
  admin: ok1-ovh
  tech: ok2-ovh
  billing: ok1-ovh
- {id: b.example, admin: ok2-ovh, tech: ok2-ovh, billing: ok2-ovh}
...
# the end
`,
		"services first, flow lists, CRLF and BOM": "\ufeffservices: [{id: a.example, kind: web hosting, admin: ok1-ovh, tech: ok2-ovh, billing: ok1-ovh},\r\n" +
			"  {id: b.example, admin: ok2-ovh, tech: ok2-ovh, billing: ok2-ovh}]\r\n" +
			"contacts:\r\n    -   nic: ok1-ovh\r\n        email: a@example.com\r\n        name: \"Ann # not a comment\"\r\n        language: fr\r\n" +
			"    - {nic: ok2-ovh, email: b@example.com, name: Bob, payment_ok: false}\r\n",
	}
	for name, y := range layouts {
		t.Run(name, func(t *testing.T) {
			b := redistest.Mini(t)
			s := newStore(t, b, newClock())
			ctx := context.Background()
			got, err := s.Import(ctx, []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records read (-want +got):\n%s", diff)
			}
			if c, err := s.GetContact(ctx, "ok2-ovh"); err != nil || c.Name != "Bob" || c.PaymentOK {
				t.Errorf("stored contact = %+v, %v", c, err)
			}
			if v, err := s.GetService(ctx, "a.example"); err != nil || *v != want.Services[0] {
				t.Errorf("stored service = %+v, %v", v, err)
			}
		})
	}
}

// TestImportReaderStreamsAFile imports a file through ImportReader, a
// service of it naming a contact already in the store, and checks what
// it counts and writes.
func TestImportReaderStreamsAFile(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		seed(t, s)
		const n = 2500 // more than one batch of writes and of look-ups
		var dir strings.Builder
		dir.WriteString("contacts:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&dir, "  - nic: cf%d-ovh\n    email: c%d@example.com\n    name: Contact %d\n", i, i, i)
		}
		dir.WriteString("services:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&dir, "  - {id: f%d.example, kind: vps, admin: cf%d-ovh, tech: te1-ovh, billing: nw%d-ovh}\n", i, i, 1+i%2)
		}
		path := filepath.Join(t.TempDir(), "dir.yaml")
		if err := os.WriteFile(path, []byte(dir.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		res, err := s.ImportReader(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if res != (workflow.ImportResult{Contacts: n, Services: n}) {
			t.Errorf("counted %+v", res)
		}
		if c, err := s.GetContact(ctx, fmt.Sprintf("cf%d-ovh", n-1)); err != nil || c.Name != fmt.Sprintf("Contact %d", n-1) || !c.PaymentOK || c.Language != "en" {
			t.Errorf("last contact = %+v, %v", c, err)
		}
		l, err := s.ServicesOf(ctx, "te1-ovh")
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != n+2 {
			t.Errorf("te1-ovh holds %d services, want %d", len(l), n+2)
		}
		if ok, _ := s.IsContactAddress(ctx, "c7@example.com"); !ok {
			t.Error("an imported address is not known")
		}
	})
}

// TestReindexUpgradesAnOldDirectory writes a directory as the previous
// layout did (long field names, one SET per address and per NIC), checks
// that it reads as before, and that ReindexDirectory moves it to the
// bucketed indexes and removes the old keys.
func TestReindexUpgradesAnOldDirectory(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		k := workflow.Keys{Prefix: b.Prefix}
		old := []struct{ nic, email string }{{"ad1-ovh", "Admin@Example.com"}, {"te1-ovh", "tech@example.com"}, {"bi1-ovh", "billing@example.com"}}
		for _, c := range old {
			must(t, b.Client.HSet(ctx, k.Contact(c.nic), "email", c.email, "name", "Old "+c.nic, "language", "fr", "payment_ok", "1").Err())
			must(t, b.Client.SAdd(ctx, k.LegacyContactsByEmail(c.email), c.nic).Err())
		}
		for _, id := range []string{"example.com", "old.example"} {
			must(t, b.Client.HSet(ctx, k.Service(id), "kind", "domain", "admin", "ad1-ovh", "tech", "te1-ovh", "billing", "bi1-ovh").Err())
			for _, c := range old {
				must(t, b.Client.SAdd(ctx, k.LegacyNICServices(c.nic), id).Err())
			}
		}
		// A pointer left behind by the old layout: the service moved on.
		must(t, b.Client.SAdd(ctx, k.LegacyNICServices("nw1-ovh"), "example.com").Err())

		check := func(when string) {
			t.Helper()
			c, err := s.GetContact(ctx, "ad1-ovh")
			if err != nil || c.Email != "Admin@Example.com" || c.Name != "Old ad1-ovh" || c.Language != "fr" || !c.PaymentOK {
				t.Errorf("%s: contact = %+v, %v", when, c, err)
			}
			l, err := s.ServicesOf(ctx, "te1-ovh")
			if err != nil || len(l) != 2 || l[0].Service != "example.com" || l[1].Service != "old.example" {
				t.Errorf("%s: services of te1-ovh = %+v, %v", when, l, err)
			}
			if l, _ := s.ServicesOf(ctx, "nw1-ovh"); len(l) != 0 {
				t.Errorf("%s: a stale pointer is listed: %+v", when, l)
			}
			if ok, err := s.IsContactAddress(ctx, "admin@example.com"); !ok || err != nil {
				t.Errorf("%s: the address of an old contact is not known: %v", when, err)
			}
		}
		check("before reindex")
		res, err := s.ReindexDirectory(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := (workflow.ReindexResult{Contacts: 3, Converted: 3, Services: 2, Removed: 7}); res != want {
			t.Errorf("reindex = %+v, want %+v", res, want)
		}
		check("after reindex")
		keys, err := b.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range keys {
			if strings.Contains(key, ":email:") || strings.HasSuffix(key, ":services") {
				t.Errorf("old index key %s left", key)
			}
		}
		h, _ := b.Client.HGetAll(ctx, k.Contact("te1-ovh")).Result()
		if diff := cmp.Diff(map[string]string{"e": "tech@example.com", "n": "Old te1-ovh", "l": "fr", "payment_ok": "1"}, h); diff != "" {
			t.Errorf("contact hash after reindex (-want +got):\n%s", diff)
		}
		if res, err := s.ReindexDirectory(ctx); err != nil || res != (workflow.ReindexResult{Contacts: 3, Services: 2}) {
			t.Errorf("second reindex = %+v, %v; want nothing converted or removed", res, err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// unseekable is a stream that cannot be read twice, as a pipe.
type unseekable struct{ io.Reader }

func (unseekable) Seek(int64, int) (int64, error) { return 0, errors.New("illegal seek") }

func TestImportReaderNeedsAFile(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b, newClock())
	_, err := s.ImportReader(context.Background(), unseekable{strings.NewReader(seedYAML)})
	wantCode(t, err, workflow.EInvalidRequest)
	if !strings.Contains(err.Error(), "must be a regular file") {
		t.Errorf("error %q does not say why", err)
	}
}
