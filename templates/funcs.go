package templates

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
		// date writes t in its own time zone: Render has put every date
		// of the data in the set's zone.
		"date": func(t time.Time) string { return w.date(t) },
		// kind names a service kind in the language when it is a common
		// one, and leaves free text as it is.
		"kind": func(k string) string {
			if v, ok := w.kinds[strings.ToLower(k)]; ok {
				return v
			}
			return k
		},
		// of writes "of X" in English and "de X" or "d'X" in French.
		"of": w.of,
		// button gives the "button" template its link and label.
		"button": func(link, label string) buttonData { return buttonData{Link: link, Label: label} },
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

// buttonData is a link drawn as a button in HTML.
type buttonData struct{ Link, Label string }

// vocabulary holds what the functions write in one language.
type vocabulary struct {
	roles   map[string]string
	kinds   map[string]string
	of      func(string) string
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
			"no_token":      "it names no request: the code we sent was found neither in the address, nor in the subject, nor in the text",
			"unknown_token": "the code it carries is not one of ours",
			"dead_token":    "the code it carries is no longer valid (already used, replaced by a newer email, or the request is closed)",
			"no_decision":   "its first line holds no answer we can read",
			"wrong_sender":  "it was not sent from the email address we have on file for the contact the request was sent to",
			"conflict":      "it carries two different codes",
			"not_authentic": "we could not verify that it really comes from your address",
			"too_large":     "it is too large",
		},
		kinds: map[string]string{"domain": "domain name", "hosting": "web hosting", "vps": "virtual private server",
			"dedicated": "dedicated server", "server": "server", "email": "email service", "cloud": "cloud project"},
		of:  func(s string) string { return "of " + s },
		and: "and",
		date: func(t time.Time) string {
			return t.Format("Monday 2 January 2006, 15:04 MST")
		},
	},
	"fr": {
		roles: map[string]string{"admin": "contact administratif", "tech": "contact technique", "billing": "contact de facturation"},
		reasons: map[string]string{
			"no_token":      "elle ne désigne aucune demande : le code que nous avons envoyé ne figure ni dans l'adresse, ni dans l'objet, ni dans le texte",
			"unknown_token": "le code qu'elle porte n'est pas l'un des nôtres",
			"dead_token":    "le code qu'elle porte n'est plus valable (déjà utilisée, remplacée par un email plus récent, ou demande close)",
			"no_decision":   "sa première ligne ne contient aucune réponse lisible",
			"wrong_sender":  "elle ne vient pas de l'adresse email que nous connaissons pour le contact à qui la demande a été envoyée",
			"conflict":      "elle porte deux codes différents",
			"not_authentic": "nous n'avons pas pu vérifier qu'elle provient bien de votre adresse",
			"too_large":     "elle est trop volumineuse",
		},
		kinds: map[string]string{"domain": "nom de domaine", "hosting": "hébergement web", "vps": "serveur privé virtuel",
			"dedicated": "serveur dédié", "server": "serveur", "email": "offre email", "cloud": "projet cloud"},
		of:   frenchOf,
		and:  "et",
		date: frenchDate,
	},
}

var (
	frDays   = []string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	frMonths = []string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
		"septembre", "octobre", "novembre", "décembre"}
)

// frenchDate writes "lundi 1er mars 2026 à 09:00 CET".
func frenchDate(t time.Time) string {
	day := strconv.Itoa(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return fmt.Sprintf("%s %s %s %d à %s", frDays[t.Weekday()], day, frMonths[t.Month()-1], t.Year(), t.Format("15:04 MST"))
}

// frenchOf writes "de X", elided to "d'X" before a vowel: "la demande
// d'Alice", "de Bob".
func frenchOf(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	if strings.ContainsRune("aeiouyàâäéèêëîïôöùûüœæ", unicode.ToLower(r)) {
		return "d'" + s
	}
	return "de " + s
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
