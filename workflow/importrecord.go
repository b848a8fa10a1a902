package workflow

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The fields of the records of an import file.
var (
	contactFields = []string{"nic", "email", "name", "language", "payment_ok"}
	serviceFields = []string{"id", "kind", "admin", "tech", "billing"}
)

// keyLine tells whether line, alone, is a top-level key with no value on
// its line (the start of a block list), and returns the key.
func keyLine(line []byte) (string, bool) {
	var doc yaml.Node
	if yaml.Unmarshal(line, &doc) != nil || len(doc.Content) != 1 {
		return "", false
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode || len(m.Content) != 2 {
		return "", false
	}
	k, v := m.Content[0], m.Content[1]
	if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || v.Tag != "!!null" || v.Value != "" || v.Anchor != "" {
		return "", false
	}
	return k.Value, true
}

// record is one record of an import file: the line where it starts and
// either its text (a record of a block list, decoded when needed) or its
// YAML tree.
type record struct {
	line int
	text []byte
	node *yaml.Node
}

// decode returns the record's YAML tree, its lines the file's.
func (r *record) decode() (*yaml.Node, error) {
	if r.node != nil {
		return r.node, nil
	}
	doc, err := decodeChunk(&chunk{line: r.line, text: r.text})
	if err != nil {
		return nil, err
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode || len(seq.Content) != 1 {
		return nil, errLine(r.line, "expected one record")
	}
	r.node = seq.Content[0]
	return r.node, nil
}

// eachRecord calls f with each record of the list want that chunk c holds.
// A list in flow style is decoded whole, to find its records.
func (sp *splitter) eachRecord(c *chunk, want section, f func(*record) error) error {
	if !c.whole {
		if c.sec != want {
			return nil
		}
		return f(&record{line: c.line, text: c.text})
	}
	doc, err := decodeChunk(c)
	if err != nil {
		return err
	}
	if doc.Content[0].Kind != yaml.MappingNode {
		return errLine(c.line, "expected a mapping with contacts: and services: lists")
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		sec, err := sp.open(k.Value, k.Line)
		if err != nil {
			return err
		}
		if v.Kind != yaml.SequenceNode && v.Tag != "!!null" {
			return errLine(v.Line, "%s must be a list", sec)
		}
		if sec != want {
			continue
		}
		for _, n := range v.Content {
			if err := f(&record{line: n.Line, node: n}); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeChunk parses a chunk into a YAML tree whose lines are the file's.
func decodeChunk(c *chunk) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(c.text, &doc); err != nil {
		return nil, yamlError(err, c.line)
	}
	if a := shiftLines(&doc, c.line-1); a != nil {
		return nil, errLine(a.Line, "aliases (*%s) are not accepted in an import file: write each record in full", clip(a.Value))
	}
	if len(doc.Content) == 0 {
		return nil, errLine(c.line, "expected a mapping with contacts: and services: lists")
	}
	return &doc, nil
}

// shiftLines adds by to the line of every node under n, and returns the
// first alias it meets, if any.
func shiftLines(n *yaml.Node, by int) *yaml.Node {
	n.Line += by
	var alias *yaml.Node
	if n.Kind == yaml.AliasNode {
		alias = n
	}
	for _, c := range n.Content {
		if a := shiftLines(c, by); alias == nil {
			alias = a
		}
	}
	return alias
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)

// yamlError words an error of the YAML library about a chunk that starts
// at line first of the file.
func yamlError(err error, first int) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.Contains(msg, "unknown anchor") {
		return errLine(first, "an alias (*name) names an anchor of another record: aliases are not accepted in an import file")
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return errLine(first+n-1, "%s", msg[len(m[0]):])
	}
	return errLine(first, "%s", msg)
}

// decodeStrict decodes one record, refusing keys other than fields.
func decodeStrict(n *yaml.Node, out any, fields []string) error {
	if n.Kind != yaml.MappingNode {
		return errLine(n.Line, "expected a record with the fields %s", strings.Join(fields, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !contains(fields, k.Value) {
			return errLine(k.Line, "unknown field %q (expected %s)", clip(k.Value), strings.Join(fields, ", "))
		}
	}
	if err := n.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			if yamlLine.MatchString(te.Errors[0]) {
				return Errorf(EInvalidRequest, "%s", te.Errors[0])
			}
			return errLine(n.Line, "%s", te.Errors[0])
		}
		return errLine(n.Line, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// lineErr puts the line of a record before a domain error about it.
func lineErr(n int, err error) error {
	return &Error{Code: ErrorCode(err), Message: fmt.Sprintf("line %d: %s", n, ErrorMessage(err))}
}
