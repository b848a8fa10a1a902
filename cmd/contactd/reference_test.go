package main

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"contactd/config"
	"contactd/inbox"
	"contactd/internal/redistest"
	"contactd/web"
	"contactd/workflow"
)

// referencePath is the repository's reference, which the tests below hold
// to the code.
const referencePath = "../../docs/reference.md"

// reference is docs/reference.md cut at its headings: "## X" holds
// everything up to the next "## ", "### Y" up to the next heading.
type reference map[string]string

func loadReference(t *testing.T) reference {
	t.Helper()
	data, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	ref := reference{}
	var h2, h3 string
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			h2, h3 = line, ""
			ref[h2] = ""
			continue
		case strings.HasPrefix(line, "### "):
			h3 = line
			ref[h3] = ""
		case strings.HasPrefix(line, "#"):
			h3 = ""
		}
		if h2 != "" {
			ref[h2] += line + "\n"
		}
		if h3 != "" && line != h3 {
			ref[h3] += line + "\n"
		}
	}
	return ref
}

// section returns the text under heading, failing the test when there is
// none, with fix saying what to write.
func (r reference) section(t *testing.T, heading, fix string) (string, bool) {
	t.Helper()
	body, ok := r[heading]
	if !ok {
		t.Errorf("docs/reference.md has no section %q: %s", heading, fix)
	}
	return body, ok
}

var codeSpan = regexp.MustCompile("`([^`]*)`")

// rows returns the cells of the table rows of body, header and rule left
// out; an escaped \| stays inside its cell.
func rows(body string) [][]string {
	var out [][]string
	header := true
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "|") {
			header = true
			continue
		}
		if header { // the header row, then the rule under it
			if strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "| ---") {
				header = false
			}
			continue
		}
		line = strings.ReplaceAll(strings.Trim(line, "|"), `\|`, "\x00")
		var cells []string
		for _, c := range strings.Split(line, "|") {
			cells = append(cells, strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|")))
		}
		out = append(out, cells)
	}
	return out
}

// firstCode is the text of the first code span of cell, or "".
func firstCode(cell string) string {
	if m := codeSpan.FindStringSubmatch(cell); m != nil {
		return m[1]
	}
	return ""
}

// compare reports, in both directions, the names one side has and the
// other lacks.
func compare(t *testing.T, code, doc []string, missing, extra func(name string) string) {
	t.Helper()
	for _, n := range code {
		if !slices.Contains(doc, n) {
			t.Error(missing(n))
		}
	}
	for _, n := range doc {
		if !slices.Contains(code, n) {
			t.Error(extra(n))
		}
	}
}

var helpFlag = regexp.MustCompile(`(?m)^  --([a-z][a-z0-9-]*)`)

// commandFlags runs `contactd NAME --help` and returns the flags its flag
// set defines.
func commandFlags(t *testing.T, name string) []string {
	t.Helper()
	var out, errs bytes.Buffer
	if code := run(context.Background(), append(strings.Fields(name), "--help"), &out, &errs); code != 0 {
		t.Fatalf("contactd %s --help: exit %d: %s", name, code, errs.String())
	}
	var flags []string
	for _, m := range helpFlag.FindAllStringSubmatch(out.String(), -1) {
		flags = append(flags, m[1])
	}
	return flags
}

// Every command of the command line has its section, which lists every
// flag of its flag set and no other.
func TestReferenceCommands(t *testing.T) {
	ref := loadReference(t)
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
		heading := "### `contactd " + c.name + "`"
		body, ok := ref.section(t, heading, "document the command, its usage and a table of its flags there")
		if !ok {
			continue
		}
		var doc []string
		for _, row := range rows(body) {
			if f := firstCode(row[0]); strings.HasPrefix(f, "--") {
				doc = append(doc, strings.Fields(strings.TrimPrefix(f, "--"))[0])
			}
		}
		compare(t, commandFlags(t, c.name), doc,
			func(f string) string {
				return fmt.Sprintf("docs/reference.md does not document the flag --%s of `contactd %s`: add a row to the flag table under %s", f, c.name, heading)
			},
			func(f string) string {
				return fmt.Sprintf("docs/reference.md documents a flag --%s of `contactd %s`, which has no such flag", f, c.name)
			})
	}
	for heading := range ref {
		if name, ok := strings.CutPrefix(heading, "### `contactd "); ok && !slices.Contains(names, strings.TrimSuffix(name, "`")) {
			t.Errorf("docs/reference.md has a section %s for a command the command line does not have", heading)
		}
	}
}

// configKey is one key of the configuration, its type and its default.
type configKey struct {
	name  string
	value reflect.Value
}

// configKeys walks the configuration's structs by their yaml tags.
func configKeys(prefix string, v reflect.Value) []configKey {
	var out []configKey
	for i := 0; i < v.NumField(); i++ {
		name := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]
		if prefix != "" {
			name = prefix + "." + name
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(config.Duration(0)) {
			out = append(out, configKeys(name, f)...)
			continue
		}
		out = append(out, configKey{name, f})
	}
	return out
}

// Every configuration key is listed with its default, and every key
// listed exists.
func TestReferenceConfiguration(t *testing.T) {
	body, ok := loadReference(t).section(t, "## Configuration", "list every key with its default in a table")
	if !ok {
		return
	}
	defaults := map[string]string{}
	var doc []string
	for _, row := range rows(body) {
		if len(row) < 2 {
			continue
		}
		key := firstCode(row[0])
		doc = append(doc, key)
		defaults[key] = firstCode(row[1])
	}
	keys := configKeys("", reflect.ValueOf(config.Default()))
	var names []string
	for _, k := range keys {
		names = append(names, k.name)
		written, ok := defaults[k.name]
		if !ok {
			continue // reported by compare below
		}
		got := reflect.New(k.value.Type())
		if err := yaml.Unmarshal([]byte(written), got.Interface()); err != nil {
			t.Errorf("docs/reference.md: the default of %s, `%s`, is not a value of its type: %v", k.name, written, err)
			continue
		}
		if want := k.value.Interface(); !sameValue(got.Elem(), k.value) {
			out, _ := yaml.Marshal(want)
			t.Errorf("docs/reference.md gives %s the default `%s`; the code's is %s", k.name, written, strings.TrimSpace(string(out)))
		}
	}
	compare(t, names, doc,
		func(k string) string {
			for _, c := range keys {
				if c.name == k {
					out, _ := yaml.Marshal(c.value.Interface())
					return fmt.Sprintf("docs/reference.md does not list the configuration key %s (default %s): add a row to the table of ## Configuration",
						k, strings.TrimSpace(string(out)))
				}
			}
			return ""
		},
		func(k string) string {
			return fmt.Sprintf("docs/reference.md lists the configuration key %s, which the configuration does not have", k)
		})
}

// sameValue compares two values of a key, an empty list equal to none.
func sameValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// Every route the server answers is listed, and every route listed is
// answered.
func TestReferenceRoutes(t *testing.T) {
	body, ok := loadReference(t).section(t, "## HTTP routes", "list every route in a table of method and route")
	if !ok {
		return
	}
	var doc []string
	for _, row := range rows(body) {
		if len(row) > 1 {
			doc = append(doc, firstCode(row[0])+" "+firstCode(row[1]))
		}
	}
	st, err := workflow.NewStore(redistest.Mini(t).Client, workflow.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Params{Store: st, Config: config.Default(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, srv.Routes(), doc,
		func(r string) string {
			return fmt.Sprintf("docs/reference.md does not list the route %s: add a row to the table of ## HTTP routes", r)
		},
		func(r string) string {
			return fmt.Sprintf("docs/reference.md lists the route %s, which the server does not answer", r)
		})
}

// goConsts returns the string constants of the non-test Go files of dir
// that keep, for which, their name and declared type.
func goConsts(t *testing.T, dir string, keep func(name, typ string) bool) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				typ := ""
				if id, ok := vs.Type.(*ast.Ident); ok {
					typ = id.Name
				}
				for i, name := range vs.Names {
					if i >= len(vs.Values) || !keep(name.Name, typ) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						out = append(out, v)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// firstColumn returns the first code span of every row under heading.
func firstColumn(t *testing.T, heading, fix string) []string {
	t.Helper()
	body, ok := loadReference(t).section(t, heading, fix)
	if !ok {
		return nil
	}
	var out []string
	for _, row := range rows(body) {
		if c := firstCode(row[0]); c != "" {
			out = append(out, c)
		}
	}
	return out
}

var errorConst = regexp.MustCompile(`^[eE][A-Z]`)

// Every error code of the workflow and of the HTTP layer is listed, and
// nothing else.
func TestReferenceErrorCodes(t *testing.T) {
	isCode := func(name, _ string) bool { return errorConst.MatchString(name) }
	codes := append(goConsts(t, "../../workflow", isCode), goConsts(t, "../../web", isCode)...)
	doc := firstColumn(t, "## Error codes", "list every error code in a table")
	compare(t, codes, doc,
		func(c string) string {
			return fmt.Sprintf("docs/reference.md does not list the error code %s: add a row to the table of ## Error codes", c)
		},
		func(c string) string {
			return fmt.Sprintf("docs/reference.md lists an error code %s that the code does not have", c)
		})
}

// Every kind of outbox entry (workflow.Kind) is listed, and nothing else.
func TestReferenceEmailKinds(t *testing.T) {
	kinds := goConsts(t, "../../workflow", func(_, typ string) bool { return typ == "Kind" })
	if len(kinds) == 0 {
		t.Fatal("found no constant of type workflow.Kind")
	}
	doc := firstColumn(t, "## Email kinds", "list every kind in a table")
	compare(t, kinds, doc,
		func(k string) string {
			return fmt.Sprintf("docs/reference.md does not list the email kind %s: add a row to the table of ## Email kinds", k)
		},
		func(k string) string {
			return fmt.Sprintf("docs/reference.md lists an email kind %s that workflow has no Kind for", k)
		})
}

// Every field of the JSON objects is described under its object, and
// nothing else.
func TestReferenceJSONFields(t *testing.T) {
	ref := loadReference(t)
	for heading, v := range map[string]any{"### Request": workflow.Request{}, "### Approval": workflow.Approval{},
		"### History event": workflow.Event{}, "### Contact": workflow.Contact{}, "### Service": workflow.Service{}} {
		body, ok := ref.section(t, heading, "describe the object's fields in a table")
		if !ok {
			continue
		}
		var doc, fields []string
		for _, row := range rows(body) {
			doc = append(doc, firstCode(row[0]))
		}
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumField(); i++ {
			if name := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]; name != "" && name != "-" {
				fields = append(fields, name)
			}
		}
		compare(t, fields, doc,
			func(f string) string {
				return fmt.Sprintf("docs/reference.md does not describe the field %s of %s: add a row to the table under %s", f, typ, heading)
			},
			func(f string) string {
				return fmt.Sprintf("docs/reference.md describes a field %s under %s, which %s does not have", f, heading, typ)
			})
	}
}

// Every reply word listed decides as listed, upper- or lower-case.
func TestReferenceReplyWords(t *testing.T) {
	body, ok := loadReference(t).section(t, "## Reply words", "list the words in a table of language, accept and decline")
	if !ok {
		return
	}
	for _, row := range rows(body) {
		if len(row) < 3 {
			continue
		}
		for col, want := range map[int]workflow.Decision{1: workflow.Accept, 2: workflow.Decline} {
			for _, m := range codeSpan.FindAllStringSubmatch(row[col], -1) {
				for _, word := range []string{m[1], strings.ToLower(m[1])} {
					raw := "From: Ann <ann@example.com>\r\nTo: contacts@example.com\r\nSubject: Re: your request\r\n" +
						"Message-ID: <r1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + word + "\r\n"
					if got := inbox.Read([]byte(raw), "contacts@example.com").Decision; got != want {
						t.Errorf("docs/reference.md lists %q (%s) as %s, but a reply saying it decides %q", word, row[0], want, got)
					}
				}
			}
		}
	}
}
