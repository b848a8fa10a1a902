// Package locale holds what contactd writes and reads in each language of
// workflow.Languages: one catalogue file per language, LANG.yaml, embedded
// in the binary. A catalogue holds the words of every email and page, the
// reasons and refusals shown to a contact, the names of roles, statuses
// and common service kinds, how dates are written, the reply words of
// SPEC section 4 and the words mail clients write around quoted text.
//
// The files are go-i18n message files (github.com/nicksnyder/go-i18n/v2):
// each message is a text/template, plural messages carry the CLDR forms
// of their language (one, few, many, other), and the functions below
// (date, kind, role, status, people, reason, problem, accept, decline)
// are available inside every message. Lists (month names, reply words,
// quoting markers) are one message whose items are separated by "|".
//
// Adding a language is adding its file here and its constant to
// workflow.Languages; the tests then check that the file has every key of
// en.yaml and that every email and page renders in it.
package locale

import (
	"embed"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"contactd/workflow"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"github.com/nicksnyder/go-i18n/v2/i18n/template"
	"go.yaml.in/yaml/v3"
	"golang.org/x/text/language"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

//go:embed *.yaml
var files embed.FS

// Catalogue is what contactd says and reads in one language.
type Catalogue struct {
	// Lang is the catalogue's language.
	Lang workflow.Language
	loc  *i18n.Localizer
	ids  map[string]bool
	// plural holds the ids of the messages written in plural forms.
	plural map[string]bool
	funcs  texttemplate.FuncMap
	// parser parses each message once, with the functions of this
	// catalogue (go-i18n parses a message at each use when it is given
	// functions).
	parser *cachedParser
	// typography: the punctuation that takes a no-break space before
	// it, and after it.
	spaceBefore, spaceAfter string
	// static holds the ids of the messages that use no data (no template
	// action), and plain keeps them as T returns them: every email and
	// page writes the same ones again.
	static map[string]bool
	plain  sync.Map
	// single holds the message of each id written in one form, executed
	// directly: the Localizer would match the language again at each use.
	single map[string]executer
	// lists keeps the lists List has split.
	lists sync.Map
}

var (
	bundle     *i18n.Bundle
	catalogues = map[workflow.Language]*Catalogue{}
)

func init() {
	if err := load(); err != nil {
		panic(err)
	}
}

// load reads every catalogue file. A file missing for a language of
// workflow.Languages, or one that does not parse, is an error.
func load() error {
	bundle = i18n.NewBundle(language.English)
	bundle.RegisterUnmarshalFunc("yaml", yaml.Unmarshal)
	for _, l := range workflow.Languages {
		name := string(l) + ".yaml"
		b, err := files.ReadFile(name)
		if err != nil {
			return fmt.Errorf("locale: no catalogue for %s: %w", l, err)
		}
		mf, err := bundle.ParseMessageFileBytes(b, name)
		if err != nil {
			return fmt.Errorf("locale: %s: %w", name, err)
		}
		c := &Catalogue{Lang: l, loc: i18n.NewLocalizer(bundle, string(l)), ids: map[string]bool{}, plural: map[string]bool{},
			static: map[string]bool{}, single: map[string]executer{}}
		for _, m := range mf.Messages {
			c.ids[m.ID] = true
			c.plural[m.ID] = m.One != "" || m.Few != "" || m.Many != ""
			c.static[m.ID] = !c.plural[m.ID] && !strings.Contains(m.Other, "{{")
			if mt := i18n.NewMessageTemplate(m); mt != nil && !c.plural[m.ID] {
				if t := mt.PluralTemplates["other"]; t != nil {
					c.single[m.ID] = t
				}
			}
		}
		c.funcs = c.funcMap()
		c.parser = &cachedParser{template.TextParser{Funcs: c.funcs}}
		catalogues[l] = c
		c.spaceBefore = strings.TrimPrefix(c.raw("typography.space_before"), "none")
		c.spaceAfter = strings.TrimPrefix(c.raw("typography.space_after"), "none")
	}
	return nil
}

// For returns the catalogue of l; a language contactd does not speak gets
// English.
func For(l workflow.Language) *Catalogue {
	if c, ok := catalogues[l]; ok {
		return c
	}
	return catalogues[workflow.English]
}

// Keys lists the message ids of l's catalogue file, sorted.
func Keys(l workflow.Language) []string {
	var out []string
	for id := range For(l).ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Has reports whether the catalogue's own file holds id.
func (c *Catalogue) Has(id string) bool { return c.ids[id] }

// Plural reports whether the message id is written in plural forms (and
// so is written with N).
func (c *Catalogue) Plural(id string) bool { return c.plural[id] }

// T writes the message id with data, in the catalogue's language and its
// typography. A message missing from the catalogue is an error, and the
// English words are returned with it.
func (c *Catalogue) T(id string, data any) (string, error) {
	if !c.ids[id] {
		return c.missing(id, func(en *Catalogue) (string, error) { return en.T(id, data) })
	}
	if c.static[id] {
		if s, ok := c.plain.Load(id); ok {
			return s.(string), nil
		}
	}
	var s string
	var err error
	if t := c.single[id]; t != nil {
		s, err = t.Execute(c.parser, data)
	} else {
		s, err = c.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data, TemplateParser: c.parser})
	}
	s = c.Typography(s)
	if c.static[id] && err == nil {
		c.plain.Store(id, s)
	}
	return s, err
}

// N writes the plural message id for count n: the form the language's
// CLDR rule gives n. Inside the message, .Count is n and .Data is data.
func (c *Catalogue) N(id string, n int, data any) (string, error) {
	if !c.ids[id] {
		return c.missing(id, func(en *Catalogue) (string, error) { return en.N(id, n, data) })
	}
	s, err := c.loc.Localize(&i18n.LocalizeConfig{MessageID: id, PluralCount: n,
		TemplateData: struct {
			Count int
			Data  any
		}{n, data}, TemplateParser: c.parser})
	return c.Typography(s), err
}

// missing answers for a message the catalogue lacks: English's words,
// written by the English catalogue itself (a message is parsed with the
// functions of the catalogue that owns it), and an error.
func (c *Catalogue) missing(id string, english func(*Catalogue) (string, error)) (string, error) {
	err := fmt.Errorf("locale: %s has no message %s", c.Lang, id)
	en := catalogues[workflow.English]
	if c == en || !en.ids[id] {
		return "", err
	}
	s, _ := english(en)
	return s, err
}

// executer is a message of go-i18n's, parsed once (see cachedParser).
type executer interface {
	Execute(parser template.Parser, data any) (string, error)
}

// cachedParser is go-i18n's text/template parser with the catalogue's
// functions, whose parsed messages go-i18n may keep: each catalogue
// only ever parses its own messages (see missing).
type cachedParser struct{ template.TextParser }

// Cacheable implements go-i18n's template.Parser.
func (*cachedParser) Cacheable() bool { return true }

// Must is T for messages that take no data and are known to exist (the
// package's tests check every key in every language): it returns the
// English words, or the id, rather than fail.
func (c *Catalogue) Must(id string) string {
	s, err := c.T(id, nil)
	if s == "" && err != nil {
		return id
	}
	return s
}

// raw is a message as written, without typography, or "".
func (c *Catalogue) raw(id string) string {
	s, _ := c.loc.Localize(&i18n.LocalizeConfig{MessageID: id})
	return s
}

// List is a list message split at "|", each item trimmed; empty items
// are dropped.
func (c *Catalogue) List(id string) []string {
	if l, ok := c.lists.Load(id); ok {
		return slices.Clone(l.([]string))
	}
	var out []string
	for _, item := range strings.Split(c.raw(id), "|") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	c.lists.Store(id, out)
	return slices.Clone(out)
}

// Typography puts the no-break spaces the language wants: French writes
// one before ":", ";", "?", "!" and "»", and after "«". Only the space
// the text already has is replaced, so a URL or a time ("09:00") is left
// alone.
func (c *Catalogue) Typography(s string) string {
	if c.spaceBefore == "" && c.spaceAfter == "" {
		return s
	}
	var b []byte // a copy, begun at the first space to change
	last := 0    // s is copied into b up to there
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			continue
		}
		next, _ := utf8.DecodeRuneInString(s[i+1:])
		prev, _ := utf8.DecodeLastRuneInString(s[:i])
		if !(i+1 < len(s) && strings.ContainsRune(c.spaceBefore, next)) && !(i > 0 && strings.ContainsRune(c.spaceAfter, prev)) {
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s)+8)
		}
		b = append(b, s[last:i]...)
		b = utf8.AppendRune(b, '\u00a0')
		last = i + 1
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

// Date writes t, in its own time zone, as the language writes a date and
// a time: "Monday 2 March 2026 at 10:00 CET", "lundi 2 mars 2026 à
// 10:00 CET", "2 marca 2026 (poniedziałek), godz. 10:00 CET".
func (c *Catalogue) Date(t time.Time) string {
	days, months := c.List("date.weekdays"), c.List("date.months")
	if len(days) != 7 || len(months) != 12 {
		return t.Format("2006-01-02 15:04 MST")
	}
	s, err := c.T("date.format", map[string]any{
		"Weekday": days[t.Weekday()], "Day": t.Day(), "Month": months[t.Month()-1],
		"Year": t.Year(), "Time": t.Format("15:04"), "Zone": t.Format("MST"),
	})
	if err != nil {
		return t.Format("2006-01-02 15:04 MST")
	}
	return s
}

// Kind names a service kind: one of the common kinds in the language,
// any other as written.
func (c *Catalogue) Kind(k string) string {
	id := "kind." + strings.Join(strings.Fields(strings.ToLower(k)), "_")
	if c.ids[id] {
		return c.Must(id)
	}
	return k
}

// Role names a role ("technical contact"); an unknown one as written.
func (c *Catalogue) Role(r string) string {
	if id := "role." + r; c.ids[id] {
		return c.Must(id)
	}
	return r
}

// Status names a request's status ("expired"); an unknown one as written.
func (c *Catalogue) Status(s string) string {
	if id := "status." + s; c.ids[id] {
		return c.Must(id)
	}
	return s
}

// Join writes a list as the language does: "a", "a and b", "a, b and c".
func (c *Catalogue) Join(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + c.Must("list.and") + " " + items[len(items)-1]
}

// Reason writes why a request failed, from the stored form of a
// workflow.Reason ("role_changed:tech"); service names the service it
// concerns. A reason stored before reasons were codes (English words) is
// shown as it is.
func (c *Catalogue) Reason(stored, service string) string {
	r := workflow.ParseReason(stored)
	if r.Code == "" {
		return r.Arg
	}
	s, err := c.T("reason."+string(r.Code), map[string]string{"Arg": r.Arg, "Service": service})
	if err != nil {
		return r.English(service)
	}
	return s
}

// Refusal writes why a request (a service of a hand-over) was refused,
// from its error code (SPEC section 2); an unknown code as written.
func (c *Catalogue) Refusal(code string) string {
	if id := "refusal." + code; c.ids[id] {
		return c.Must(id)
	}
	return code
}

// Problem writes why a reply could not be used (a workflow.ReplyProblem);
// an unknown one as written.
func (c *Catalogue) Problem(p string) string {
	if id := "problem." + string(workflow.ReplyProblem(p).Mailed()); c.ids[id] {
		return c.Must(id)
	}
	return p
}

// AcceptWord is the language's first word to accept, the one its emails
// suggest (SPEC section 4's table).
func (c *Catalogue) AcceptWord() string { return first(c.List("reply.accept")) }

// DeclineWord is the language's first word to decline, the one its
// emails suggest.
func (c *Catalogue) DeclineWord() string { return first(c.List("reply.decline")) }

func first(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

// funcMap is what messages may call.
func (c *Catalogue) funcMap() texttemplate.FuncMap {
	return texttemplate.FuncMap{
		"date":    c.Date,
		"kind":    c.Kind,
		"role":    c.Role,
		"status":  c.Status,
		"reason":  c.Reason,
		"problem": c.Problem,
		"accept":  c.AcceptWord,
		"decline": c.DeclineWord,
		// people joins a list of anything printable (people, names).
		"people": func(v any) string {
			rv := reflect.ValueOf(v)
			if rv.Kind() != reflect.Slice {
				return fmt.Sprint(v)
			}
			items := make([]string, rv.Len())
			for i := range items {
				items[i] = fmt.Sprint(rv.Index(i).Interface())
			}
			return c.Join(items)
		},
	}
}

// folders holds the transformers Fold uses: one is not safe for two
// goroutines at once, and making one costs more than using it.
var folders = sync.Pool{New: func() any {
	return transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}}

// Fold reduces a word for matching what a person typed: lower case,
// accents removed ("SÍ", "si" and "Sì" are all "si"; "AKCEPTUJĘ" is
// "akceptuje").
func Fold(s string) string {
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] < utf8.RuneSelf
	}
	if ascii {
		return strings.ToLower(s)
	}
	t := folders.Get().(transform.Transformer)
	defer folders.Put(t)
	out, _, err := transform.String(t, strings.ToLower(s))
	if err != nil {
		return strings.ToLower(s)
	}
	return out
}

// Words gathers the items of a list message in every language, folded,
// each with the languages that use it: the reply words and the quoting
// markers a reply may hold in any language.
func Words(id string) map[string][]workflow.Language {
	out := map[string][]workflow.Language{}
	for _, l := range workflow.Languages {
		for _, w := range For(l).List(id) {
			w = Fold(w)
			if ls := out[w]; len(ls) == 0 || ls[len(ls)-1] != l {
				out[w] = append(ls, l)
			}
		}
	}
	return out
}
