package workflow

import (
	"context"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

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
