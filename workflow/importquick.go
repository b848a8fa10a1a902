package workflow

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// Decoding a record with the YAML library costs some ten microseconds,
// several times what writing it to Redis costs. Most records of a large
// import file are written in the plainest form YAML has, one of
//
//	- {nic: ab1-ovh, email: a@example.com, name: Ann Smith}
//	- nic: ab1-ovh
//	  email: a@example.com
//
// with known field names and plain values made of letters, digits,
// spaces and a few safe signs. quickRecord reads exactly that form and
// nothing else; anything it does not recognise (quotes, comments, other
// signs, unknown or repeated fields, null or boolean-looking values) goes
// to the library, which also words every error. The fuzz tests check that
// whatever quickRecord reads, the library reads the same.

// quickRecord reads the record text (one record of a block list, its "- "
// included) when it is in the plainest form, calling set with the index
// in fields of each field and its value, which set checks (plainValue).
// It returns false, having perhaps called set for some fields, when text
// is not in that form or set refuses a value.
func quickRecord(text []byte, fields []string, set func(int, []byte) bool) bool {
	line, rest := cutLine(text)
	indent := 0
	for indent < len(line) && line[indent] == ' ' {
		indent++
	}
	if !bytes.HasPrefix(line[indent:], []byte("- ")) {
		return false
	}
	body := line[indent+2:]
	var seen uint
	if len(body) > 0 && body[0] == '{' {
		return len(rest) == 0 && quickFlow(body[1:], fields, &seen, set)
	}
	inner := indent + 2
	for {
		if !quickPair(body, fields, &seen, set) {
			return false
		}
		if len(rest) == 0 {
			return true
		}
		line, rest = cutLine(rest)
		if len(line) <= inner || string(line[:inner]) != spaces(inner) || line[inner] == ' ' {
			return false
		}
		body = line[inner:]
	}
}

// quickFlow reads "k: v, k: v}" (the text after "{").
func quickFlow(b []byte, fields []string, seen *uint, set func(int, []byte) bool) bool {
	for {
		b = bytes.TrimLeft(b, " ")
		end := bytes.IndexAny(b, ",}")
		if end < 0 || !quickPair(bytes.TrimRight(b[:end], " "), fields, seen, set) {
			return false
		}
		if b[end] == '}' {
			return len(bytes.TrimRight(b[end+1:], " ")) == 0
		}
		b = b[end+1:]
	}
}

// quickPair reads "key: value" with a known key not seen before and a
// plain value.
func quickPair(b []byte, fields []string, seen *uint, set func(int, []byte) bool) bool {
	colon := bytes.IndexByte(b, ':')
	if colon < 0 || colon+1 >= len(b) || b[colon+1] != ' ' {
		return false
	}
	f := -1
	for i, name := range fields {
		if string(b[:colon]) == name {
			f = i
		}
	}
	if f < 0 || *seen&(1<<f) != 0 {
		return false
	}
	*seen |= 1 << f
	return set(f, bytes.TrimLeft(b[colon+1:], " "))
}

// plainValue tells a value that YAML reads as the string it spells: it
// starts with a letter or digit, ends with neither a space nor a colon,
// holds only letters, digits, spaces and the signs . _ @ + - / ( ), and
// is not a word YAML reads as null or a boolean.
func plainValue(v []byte) bool {
	if len(v) == 0 || v[len(v)-1] == ' ' || !isAlnum(v[0]) {
		return false
	}
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRune(v[i:])
		switch {
		case r < utf8.RuneSelf && (isAlnum(byte(r)) || bytes.IndexByte([]byte(" ._@+-/()"), byte(r)) >= 0):
		case r >= utf8.RuneSelf && r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r)):
		default:
			return false
		}
		i += size
	}
	return !yamlWords[string(bytes.ToLower(v))]
}

// yamlWords are the plain values YAML (1.1 or 1.2) may read as something
// other than a string.
var yamlWords = map[string]bool{
	"null": true, "true": true, "false": true, "yes": true, "no": true, "on": true, "off": true, "y": true, "n": true,
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// cutLine returns the first line of b without its end of line, and the
// lines after it.
func cutLine(b []byte) ([]byte, []byte) {
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest
}

func spaces(n int) string {
	return "                                                                "[:min(n, 64)]
}

// quickContact reads a contact record in the plainest form (see
// quickRecord) into c.
func quickContact(text []byte, c *Contact) bool {
	return quickRecord(text, contactFields, func(f int, v []byte) bool {
		if f == 4 { // payment_ok, a boolean
			c.PaymentOK = string(v) == "true"
			return c.PaymentOK || string(v) == "false"
		}
		*[]*string{&c.NIC, &c.Email, &c.Name, &c.Language}[f] = string(v)
		return plainValue(v)
	})
}

// quickService reads a service record in the plainest form into v.
func quickService(text []byte, v *Service) bool {
	return quickRecord(text, serviceFields, func(f int, b []byte) bool {
		*[]*string{&v.ID, &v.Kind, &v.Admin, &v.Tech, &v.Billing}[f] = string(b)
		return plainValue(b)
	})
}
