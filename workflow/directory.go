package workflow

import (
	"context"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"
)

func decodeContact(nic string, h map[string]string) *Contact {
	return &Contact{NIC: nic, Email: h["email"], Name: h["name"], Language: h["language"], PaymentOK: h["payment_ok"] == "1"}
}

func decodeService(id string, h map[string]string) *Service {
	return &Service{ID: id, Kind: h["kind"], Admin: h["admin"], Tech: h["tech"], Billing: h["billing"]}
}

func boolField(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// CheckContact normalises a contact and checks every field.
func (s *Store) CheckContact(c Contact) (Contact, error) {
	nic, err := s.nics.Normalize(c.NIC)
	if err != nil {
		return c, err
	}
	c.NIC = nic
	c.Email = strings.TrimSpace(c.Email)
	if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
		return c, Errorf(EInvalidRequest, "contact %s: email %q is not a valid address", nic, clip(c.Email))
	}
	c.Name = strings.TrimSpace(c.Name)
	if !oneLine(c.Name, 200) {
		return c, Errorf(EInvalidRequest, "contact %s: name must be one line of at most 200 bytes of text", nic)
	}
	if c.Language == "" {
		c.Language = s.opt.DefaultLanguage
	}
	lang, ok := ParseLanguage(c.Language)
	if !ok {
		return c, Errorf(EInvalidRequest, "contact %s: language must be one of %s, not %q", nic, LanguageNames(), clip(c.Language))
	}
	c.Language = string(lang)
	return c, nil
}

// oneLine reports whether s is valid UTF-8 of at most max bytes without
// control characters (so no line break either).
func oneLine(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}

// checkService normalises a service and checks its fields; known tells
// whether a NIC is in the directory. Every NIC is checked for its shape
// before any is looked up, as for a request.
func (s *Store) checkService(v Service, known func(string) bool) (Service, error) {
	v.ID = strings.TrimSpace(v.ID)
	if !ValidServiceID(v.ID) {
		return v, Errorf(EInvalidRequest, "service id %q is not valid", clip(v.ID))
	}
	v.Kind = strings.TrimSpace(v.Kind)
	if !oneLine(v.Kind, 100) {
		return v, Errorf(EInvalidRequest, "service %s: kind must be one line of at most 100 bytes of text", v.ID)
	}
	holders := []*string{&v.Admin, &v.Tech, &v.Billing}
	for i, r := range Roles {
		nic, err := s.nics.Normalize(*holders[i])
		if err != nil {
			return v, &Error{Code: EInvalidNIC, Message: fmt.Sprintf("service %s: %s: %s", v.ID, r, ErrorMessage(err))}
		}
		*holders[i] = nic
	}
	for i, r := range Roles {
		if !known(*holders[i]) {
			return v, Errorf(EUnknownContact, "service %s: %s contact %s is not in the directory", v.ID, r, *holders[i])
		}
	}
	return v, nil
}

// GetContact returns a contact of the directory (EUnknownContact if none).
func (s *Store) GetContact(ctx context.Context, nic string) (*Contact, error) {
	nic, err := s.nics.Normalize(nic)
	if err != nil {
		return nil, err
	}
	h, err := s.rdb.HGetAll(ctx, s.keys.Contact(nic)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	if len(h) == 0 {
		return nil, Errorf(EUnknownContact, "%s is not in the directory", nic)
	}
	return decodeContact(nic, h), nil
}

// Parties reads, in one round trip, the service of a request and every
// contact it names (requester, approvers, informed, each change's from and
// to) plus any extra NICs. Contacts missing from the directory are absent
// from the map; a missing service is nil.
func (s *Store) Parties(ctx context.Context, r *Request, extra ...string) (*Service, map[string]*Contact, error) {
	nics := append([]string{r.Requester}, extra...)
	nics = append(nics, r.Informed...)
	for nic := range r.Approvals {
		nics = append(nics, nic)
	}
	for _, c := range r.Changes {
		nics = append(nics, c.From, c.To)
	}
	seen := map[string]bool{}
	var uniq []string
	for _, nic := range nics {
		if n, err := s.nics.Normalize(nic); err == nil && !seen[n] {
			seen[n] = true
			uniq = append(uniq, n)
		}
	}
	svc, contacts, err := s.readDirectory(ctx, r.Service, uniq)
	if err != nil {
		return nil, nil, err
	}
	for nic, c := range contacts {
		if c == nil {
			delete(contacts, nic)
		}
	}
	return svc, contacts, nil
}

// PutContact creates or replaces a contact.
func (s *Store) PutContact(ctx context.Context, c Contact) (*Contact, error) {
	c, err := s.CheckContact(c)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	s.writeContact(ctx, pipe, c)
	_, err = pipe.Exec(ctx)
	return &c, storeErr(err)
}

func (s *Store) writeContact(ctx context.Context, pipe redis.Pipeliner, c Contact) {
	pipe.HSet(ctx, s.keys.Contact(c.NIC), "email", c.Email, "name", c.Name, "language", c.Language,
		"payment_ok", boolField(c.PaymentOK))
	if c.Email != "" {
		pipe.SAdd(ctx, s.keys.ContactsByEmail(c.Email), c.NIC)
	}
}

// GetService returns a service (EUnknownService if none).
func (s *Store) GetService(ctx context.Context, id string) (*Service, error) {
	if !ValidServiceID(id) {
		return nil, Errorf(EUnknownService, "no service with id %q", clip(id))
	}
	h, err := s.rdb.HGetAll(ctx, s.keys.Service(id)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	if len(h) == 0 {
		return nil, Errorf(EUnknownService, "no service with id %q", id)
	}
	return decodeService(id, h), nil
}

// PutService creates or replaces a service; its three contacts must be in
// the directory.
func (s *Store) PutService(ctx context.Context, v Service) (*Service, error) {
	var unknown error
	v, err := s.checkService(v, func(nic string) bool {
		n, err := s.rdb.Exists(ctx, s.keys.Contact(nic)).Result()
		if err != nil {
			unknown = err
		}
		return n == 1
	})
	if unknown != nil {
		return nil, storeErr(unknown)
	}
	if err != nil {
		return nil, err
	}
	old, err := s.rdb.HGetAll(ctx, s.keys.Service(v.ID)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	pipe := s.rdb.Pipeline()
	s.writeService(ctx, pipe, v)
	// Former holders lose their "My contacts" pointer; one left behind by
	// a race is harmless, as readers check the service itself.
	for _, r := range Roles {
		if was := old[string(r)]; was != "" && len(v.RolesOf(was)) == 0 {
			pipe.SRem(ctx, s.keys.NICServices(was), v.ID)
		}
	}
	_, err = pipe.Exec(ctx)
	return &v, storeErr(err)
}

// writeService writes the "My contacts" pointers first, then the service.
func (s *Store) writeService(ctx context.Context, pipe redis.Pipeliner, v Service) {
	for _, r := range Roles {
		pipe.SAdd(ctx, s.keys.NICServices(v.Holder(r)), v.ID)
	}
	pipe.HSet(ctx, s.keys.Service(v.ID), "kind", v.Kind, "admin", v.Admin, "tech", v.Tech, "billing", v.Billing)
}

// ContactService is one line of "My contacts": a service and nic's roles on it.
type ContactService struct {
	Service string `json:"service"`
	Kind    string `json:"kind"`
	Roles   []Role `json:"roles"`
}

// ServicesOf lists the services where nic holds a role, by service id.
func (s *Store) ServicesOf(ctx context.Context, nic string) ([]ContactService, error) {
	nic, err := s.nics.Normalize(nic)
	if err != nil {
		return nil, err
	}
	ids, err := s.rdb.SMembers(ctx, s.keys.NICServices(nic)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	sort.Strings(ids)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.keys.Service(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, storeErr(err)
		}
	}
	out := []ContactService{}
	for i, id := range ids {
		v := decodeService(id, cmds[i].Val())
		if roles := v.RolesOf(nic); len(roles) > 0 {
			out = append(out, ContactService{Service: id, Kind: v.Kind, Roles: roles})
		}
	}
	return out, nil
}

// Directory is the content of an import file.
type Directory struct {
	Contacts []Contact `yaml:"contacts"`
	Services []Service `yaml:"services"`
}

// ParseDirectory reads an import file and checks every record, without
// touching the store; known tells whether a NIC is already in the
// directory (a service may name contacts of the file or of the store). The
// first bad record is reported with its line in the file.
func (s *Store) ParseDirectory(data []byte, known func(string) (bool, error)) (*Directory, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errorf(EInvalidRequest, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, Errorf(EInvalidRequest, "line 1: expected a mapping with contacts: and services: lists")
	}
	var contacts, services []*yaml.Node
	doc := root.Content[0]
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if v.Kind != yaml.SequenceNode && v.Tag != "!!null" {
			return nil, Errorf(EInvalidRequest, "line %d: %s must be a list", v.Line, k.Value)
		}
		switch k.Value {
		case "contacts":
			contacts = v.Content
		case "services":
			services = v.Content
		default:
			return nil, Errorf(EInvalidRequest, "line %d: unknown key %q (expected contacts or services)", k.Line, clip(k.Value))
		}
	}
	d := &Directory{}
	inFile := map[string]bool{}
	for _, n := range contacts {
		c := Contact{PaymentOK: true}
		if err := decodeStrict(n, &c, []string{"nic", "email", "name", "language", "payment_ok"}); err != nil {
			return nil, err
		}
		c, err := s.CheckContact(c)
		if err != nil {
			return nil, lineErr(n, err)
		}
		if inFile[c.NIC] {
			return nil, Errorf(EInvalidRequest, "line %d: contact %s is listed twice", n.Line, c.NIC)
		}
		inFile[c.NIC] = true
		d.Contacts = append(d.Contacts, c)
	}
	var lookupErr error
	seen := map[string]bool{}
	for _, n := range services {
		var v Service
		if err := decodeStrict(n, &v, []string{"id", "kind", "admin", "tech", "billing"}); err != nil {
			return nil, err
		}
		v, err := s.checkService(v, func(nic string) bool {
			if inFile[nic] {
				return true
			}
			ok, err := known(nic)
			if err != nil {
				lookupErr = err
			}
			return ok
		})
		if lookupErr != nil {
			return nil, storeErr(lookupErr)
		}
		if err != nil {
			return nil, lineErr(n, err)
		}
		if seen[v.ID] {
			return nil, Errorf(EInvalidRequest, "line %d: service %s is listed twice", n.Line, v.ID)
		}
		seen[v.ID] = true
		d.Services = append(d.Services, v)
	}
	return d, nil
}

// decodeStrict decodes one record, refusing keys other than fields.
func decodeStrict(n *yaml.Node, out any, fields []string) error {
	if n.Kind != yaml.MappingNode {
		return Errorf(EInvalidRequest, "line %d: expected a record with the fields %s", n.Line, strings.Join(fields, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !contains(fields, n.Content[i].Value) {
			return Errorf(EInvalidRequest, "line %d: unknown field %q (expected %s)", n.Content[i].Line,
				clip(n.Content[i].Value), strings.Join(fields, ", "))
		}
	}
	if err := n.Decode(out); err != nil {
		return Errorf(EInvalidRequest, "line %d: %s", n.Line, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

func lineErr(n *yaml.Node, err error) error {
	return &Error{Code: ErrorCode(err), Message: fmt.Sprintf("line %d: %s", n.Line, ErrorMessage(err))}
}

// Import checks a whole import file, then upserts every record. One bad
// record rejects the file and nothing is written.
func (s *Store) Import(ctx context.Context, data []byte) (*Directory, error) {
	d, err := s.ParseDirectory(data, func(nic string) (bool, error) {
		n, err := s.rdb.Exists(ctx, s.keys.Contact(nic)).Result()
		return n == 1, err
	})
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	for _, c := range d.Contacts {
		s.writeContact(ctx, pipe, c)
	}
	for _, v := range d.Services {
		s.writeService(ctx, pipe, v)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, storeErr(err)
	}
	return d, nil
}
