package workflow

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// An import file is read as a stream of records, so that its memory does
// not grow with its size: the YAML library reads a whole document into
// memory, so the file is cut into its records here, at the level of lines,
// and each record is decoded on its own by the library (with its line
// numbers shifted to the file's).
//
// The cut follows YAML's block structure: a line at column 0 is a key of
// the top-level mapping (contacts: or services:); under a key with no value
// on its line, each "- " at the indentation of the first one starts a
// record, and the lines indented deeper belong to it. A list written in
// flow style ([...]) is read whole, up to maxFlowBytes. What this cut
// cannot read as YAML would, it refuses with the line: a second document
// (---), directives (%YAML), a line of a record at column 0 other than its
// "- " (a record's lines are indented, as YAML requires in a block list),
// and aliases (*name), which could only name an anchor of another record.

// Limits on the parts of an import file read at once.
const (
	maxRecordBytes = 64 << 10 // one record of a block list
	maxFlowBytes   = 1 << 20  // a list written in flow style, whole
)

// section is one of the two lists of an import file.
type section int

const (
	noSection section = iota
	contactsSection
	servicesSection
)

func (s section) String() string {
	switch s {
	case contactsSection:
		return "contacts"
	case servicesSection:
		return "services"
	}
	return "?"
}

// chunk is a piece of an import file decoded on its own: one record of a
// block list (whole is false: text starts with the record's "- "), or a
// top-level key with its value on the lines that follow (whole is true:
// the key's list in flow style, or something that is not a list).
type chunk struct {
	sec   section // for a record: its list
	whole bool
	line  int    // line of the file where text starts
	text  []byte // valid until the next call to next
}

// splitter cuts an import file into chunks.
type splitter struct {
	r      *bufio.Reader
	line   int // number of the last line read
	held   []byte
	heldAt int // line of held, which next has to handle first; 0 if none

	sec     section // the block list being read, or noSection
	indent  int     // indentation of its records' "- ", -1 before the first
	keyText []byte  // the line of its key
	keyAt   int     // and its number
	seen    [3]bool // which lists were met
	started bool    // a key was met (so --- is a second document)
	ended   bool    // "..." was met
	buf     []byte
	tail    []byte // blank and comment lines after the current record
}

func newSplitter(r io.Reader) *splitter {
	return &splitter{r: bufio.NewReaderSize(r, 64<<10), indent: -1}
}

// errLine is an error about line n of the file.
func errLine(n int, format string, args ...any) error {
	return Errorf(EInvalidRequest, "line %d: %s", n, fmt.Sprintf(format, args...))
}

// readLine returns the next line of the file with its end of line, or
// io.EOF.
func (sp *splitter) readLine() ([]byte, int, error) {
	if sp.heldAt != 0 {
		l, n := sp.held, sp.heldAt
		sp.heldAt = 0
		return l, n, nil
	}
	var line []byte
	for {
		part, err := sp.r.ReadSlice('\n')
		if len(line)+len(part) > maxRecordBytes {
			return nil, 0, errLine(sp.line+1, "line longer than %d KiB", maxRecordBytes>>10)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, part...)
			continue
		}
		if line != nil {
			part = append(line, part...)
		}
		if err != nil && (err != io.EOF || len(part) == 0) {
			return nil, 0, err
		}
		sp.line++
		if sp.line == 1 {
			part = bytes.TrimPrefix(part, []byte("\xef\xbb\xbf"))
		}
		return part, sp.line, nil
	}
}

// hold gives line n back to be read again by the next call to next.
func (sp *splitter) hold(line []byte, n int) {
	sp.held = append(sp.held[:0], line...)
	sp.heldAt = n
}

// shape describes a line: its indentation and what follows it, without
// the end of line.
func shape(line []byte) (indent int, rest []byte) {
	body := bytes.TrimRight(line, "\r\n")
	rest = bytes.TrimLeft(body, " ")
	return len(body) - len(rest), rest
}

func isBlank(rest []byte) bool { return len(rest) == 0 || rest[0] == '#' }

// isItem tells a line that starts a record of a block list ("- ...").
func isItem(rest []byte) bool {
	return len(rest) > 0 && rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ' || rest[1] == '\t')
}

// isMarker tells the line "---" or "..." (with anything after a space).
func isMarker(rest []byte, m string) bool {
	return bytes.HasPrefix(rest, []byte(m)) && (len(rest) == 3 || rest[3] == ' ' || rest[3] == '\t')
}

// next returns the next chunk of the file, or io.EOF after the last.
func (sp *splitter) next() (*chunk, error) {
	sp.buf, sp.tail = sp.buf[:0], sp.tail[:0]
	c := &chunk{}
	for {
		line, n, err := sp.readLine()
		if err == io.EOF {
			if len(sp.buf) > 0 {
				c.text = sp.buf
				return c, nil
			}
			if !sp.started {
				return nil, errLine(1, "expected a mapping with contacts: and services: lists")
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		indent, rest := shape(line)
		if isBlank(rest) {
			if len(sp.buf) > 0 {
				sp.tail = append(sp.tail, line...)
			}
			continue
		}
		if sp.ended {
			return nil, errLine(n, "content after the end of the document (...)")
		}
		if len(sp.buf) > 0 {
			// A chunk is under way: does this line go on with it?
			if (c.whole && (indent > 0 || bytes.IndexByte([]byte("]},"), rest[0]) >= 0)) ||
				(!c.whole && indent > sp.indent && !(indent == 0 && isItem(rest))) {
				if len(sp.buf)+len(sp.tail)+len(line) > limitOf(c) {
					return nil, errLine(c.line, "%s", tooLong(c))
				}
				sp.buf = append(append(sp.buf, sp.tail...), line...)
				sp.tail = sp.tail[:0]
				continue
			}
			if !c.whole && indent > 0 && !(indent == sp.indent && isItem(rest)) {
				// The record ends on a line that cannot follow it.
				return nil, errLine(n, "expected \"- \" at column %d, starting a record of %s", sp.indent+1, sp.sec)
			}
			sp.hold(line, n)
			c.text = sp.buf
			return c, nil
		}
		switch {
		case sp.sec != noSection && isItem(rest) && (sp.indent < 0 || indent == sp.indent):
			sp.indent = indent
			c.sec, c.line = sp.sec, n
			sp.buf = append(sp.buf, line...)
		case sp.sec != noSection && indent > 0 && sp.indent < 0:
			// The key's value is on the lines after it, but not as a
			// block list: read the key and its value whole, as a list in
			// flow style or for the library to say what it is.
			sp.seen[sp.sec] = false
			sp.sec = noSection
			c.whole, c.line = true, sp.keyAt
			sp.buf = append(append(append(sp.buf, sp.keyText...), sp.tail...), line...)
			sp.tail = sp.tail[:0]
		case indent > 0:
			if sp.sec == noSection {
				return nil, errLine(n, "expected contacts: or services: at column 1")
			}
			return nil, errLine(n, "expected \"- \" at column %d, starting a record of %s", sp.indent+1, sp.sec)
		case isItem(rest):
			if sp.sec == noSection {
				return nil, errLine(n, "expected a mapping with contacts: and services: lists")
			}
			return nil, errLine(n, "expected \"- \" at column %d, starting a record of %s", sp.indent+1, sp.sec)
		case isMarker(rest, "---"):
			if sp.started {
				return nil, errLine(n, "a second YAML document (---): an import file holds one")
			}
			if !isBlank(bytes.TrimSpace(rest[3:])) {
				return nil, errLine(n, "nothing may follow --- on its line: start contacts: or services: on the next")
			}
		case isMarker(rest, "..."):
			sp.ended = true
		case rest[0] == '%':
			return nil, errLine(n, "YAML directives (%%...) are not accepted in an import file")
		default:
			if err := sp.key(c, line, n); err != nil {
				return nil, err
			}
		}
	}
}

// key handles a line at column 0 that is not a marker: a top-level key.
// With no value on its line, it opens a block list; otherwise the key and
// its value (on this line and the indented ones after it) make a whole
// chunk, as does a line that is not a simple key, so that the library
// names its fault.
func (sp *splitter) key(c *chunk, line []byte, n int) error {
	sp.started = true
	sp.sec, sp.indent = noSection, -1
	name, open := keyLine(line)
	if !open {
		c.whole, c.line = true, n
		sp.buf = append(sp.buf, line...)
		return nil
	}
	sec, err := sp.open(name, n)
	if err != nil {
		return err
	}
	sp.sec = sec
	sp.keyText, sp.keyAt = append(sp.keyText[:0], line...), n
	return nil
}

// open marks the list name, met at line n, as read.
func (sp *splitter) open(name string, n int) (section, error) {
	sec, err := sectionOf(name, n)
	if err != nil {
		return sec, err
	}
	if sp.seen[sec] {
		return sec, errLine(n, "%s: is given twice: write all %s in one list", sec, sec)
	}
	sp.seen[sec] = true
	return sec, nil
}

// sectionOf returns the list a top-level key names.
func sectionOf(name string, n int) (section, error) {
	switch name {
	case "contacts":
		return contactsSection, nil
	case "services":
		return servicesSection, nil
	}
	return noSection, errLine(n, "unknown key %q (expected contacts or services)", clip(name))
}

// limitOf is the size a chunk may reach.
func limitOf(c *chunk) int {
	if c.whole {
		return maxFlowBytes
	}
	return maxRecordBytes
}

func tooLong(c *chunk) string {
	if c.whole {
		return fmt.Sprintf("a list in flow style ([...]) longer than %d KiB: write it as a block list, one \"- \" per record", maxFlowBytes>>10)
	}
	return fmt.Sprintf("a record longer than %d KiB", maxRecordBytes>>10)
}
