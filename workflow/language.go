package workflow

import (
	"strings"

	"golang.org/x/text/language"
)

// Language is a language contactd writes its emails and pages in, and
// reads replies in: an ISO 639-1 code (SPEC section 1).
type Language string

// The languages contactd speaks.
const (
	English    Language = "en"
	French     Language = "fr"
	German     Language = "de"
	Spanish    Language = "es"
	Italian    Language = "it"
	Dutch      Language = "nl"
	Polish     Language = "pl"
	Portuguese Language = "pt"
)

// Languages lists every language contactd speaks, in the order of SPEC
// section 1. Adding one here, with its catalogue file, is adding a
// language.
var Languages = []Language{English, French, German, Spanish, Italian, Dutch, Polish, Portuguese}

// ParseLanguage reads a language code as a contact record or a
// configuration writes it: case and spaces do not matter, and a region
// ("fr-CA", "pt_BR") is dropped. It reports false for a language contactd
// does not speak.
func ParseLanguage(s string) (Language, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexAny(s, "-_"); i > 0 {
		s = s[:i]
	}
	for _, l := range Languages {
		if Language(s) == l {
			return l, true
		}
	}
	return "", false
}

// Valid reports whether l is one of Languages.
func (l Language) Valid() bool {
	_, ok := ParseLanguage(string(l))
	return ok && string(l) == strings.ToLower(string(l))
}

// Or returns l when it is one of Languages, else fallback.
func (l Language) Or(fallback Language) Language {
	if p, ok := ParseLanguage(string(l)); ok {
		return p
	}
	return fallback
}

// LanguageNames lists the codes of Languages as text, for messages that
// say which values are allowed ("en, fr, de, ...").
func LanguageNames() string {
	names := make([]string, len(Languages))
	for i, l := range Languages {
		names[i] = string(l)
	}
	return strings.Join(names, ", ")
}

// matcher picks among Languages; golang.org/x/text/language knows which
// languages are close (a Swiss German reader is served German, a
// Brazilian one Portuguese).
var matcher = func() language.Matcher {
	tags := make([]language.Tag, len(Languages))
	for i, l := range Languages {
		tags[i] = language.Make(string(l))
	}
	return language.NewMatcher(tags)
}()

// MatchAcceptLanguage picks the language of an Accept-Language header
// (RFC 9110, section 12.5.4) among Languages. It reports false when the
// header names none of them closely enough, so the caller can fall back
// to its own default.
func MatchAcceptLanguage(header string) (Language, bool) {
	tags, _, err := language.ParseAcceptLanguage(header)
	if err != nil || len(tags) == 0 {
		return "", false
	}
	_, i, conf := matcher.Match(tags...)
	if conf < language.High {
		return "", false
	}
	return Languages[i], true
}
