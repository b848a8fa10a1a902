package templates

import (
	"fmt"
	"strings"
	"time"
)

// funcsFor returns the template functions of a language: role names,
// dates, lists of people and reasons, written in that language.
func funcsFor(lang string) map[string]any {
	w := words[lang]
	return map[string]any{
		"role": func(r string) string {
			if v, ok := w.roles[r]; ok {
				return v
			}
			return r
		},
		"date": func(t time.Time) string { return w.date(t.UTC()) },
		"people": func(ps []Person) string {
			names := make([]string, len(ps))
			for i, p := range ps {
				names[i] = p.String()
			}
			return joinList(names, w.and)
		},
		"reason": func(code string) string {
			if v, ok := w.reasons[code]; ok {
				return v
			}
			return code
		},
	}
}

// vocabulary holds what the functions write in one language.
type vocabulary struct {
	roles   map[string]string
	reasons map[string]string
	and     string
	date    func(time.Time) string
}

// Reasons a reply is not understood, as the inbox names them; any other
// reason is shown as it is.
var words = map[string]vocabulary{
	"en": {
		roles: map[string]string{"admin": "administrative contact", "tech": "technical contact", "billing": "billing contact"},
		reasons: map[string]string{
			"no_token":      "it names no request: the reference we sent was not found in the address, the subject or the text",
			"unknown_token": "the reference it carries is not one of ours",
			"dead_token":    "the reference it carries is no longer valid (already used, replaced by a newer email, or the request is closed)",
			"no_decision":   "its first line holds no answer we can read",
			"wrong_sender":  "it was not sent from the email address we have on file for the contact the request was sent to",
			"conflict":      "it carries two different references",
			"not_authentic": "we could not verify that it really comes from your address",
			"too_large":     "it is too large",
		},
		and: "and",
		date: func(t time.Time) string {
			return t.Format("Monday 2 January 2006, 15:04 UTC")
		},
	},
	"fr": {
		roles: map[string]string{"admin": "contact administratif", "tech": "contact technique", "billing": "contact de facturation"},
		reasons: map[string]string{
			"no_token":      "elle ne désigne aucune demande : la référence que nous avons envoyée ne figure ni dans l'adresse, ni dans l'objet, ni dans le texte",
			"unknown_token": "la référence qu'elle porte n'est pas l'une des nôtres",
			"dead_token":    "la référence qu'elle porte n'est plus valable (déjà utilisée, remplacée par un email plus récent, ou demande close)",
			"no_decision":   "sa première ligne ne contient aucune réponse lisible",
			"wrong_sender":  "elle ne vient pas de l'adresse email que nous connaissons pour le contact à qui la demande a été envoyée",
			"conflict":      "elle porte deux références différentes",
			"not_authentic": "nous n'avons pas pu vérifier qu'elle provient bien de votre adresse",
			"too_large":     "elle est trop volumineuse",
		},
		and:  "et",
		date: frenchDate,
	},
}

var (
	frDays   = []string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	frMonths = []string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
		"septembre", "octobre", "novembre", "décembre"}
)

func frenchDate(t time.Time) string {
	return fmt.Sprintf("%s %d %s %d, %02d:%02d UTC", frDays[t.Weekday()], t.Day(), frMonths[t.Month()-1],
		t.Year(), t.Hour(), t.Minute())
}

// joinList writes "a", "a and b", "a, b and c".
func joinList(items []string, and string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + and + " " + items[len(items)-1]
}
