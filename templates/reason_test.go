package templates_test

import (
	"html"
	"strings"
	"testing"

	"contactd/templates"
)

// reasonWords is what the not_understood email says for each reason the
// inbox names, in each language: the sentence a sender reads.
var reasonWords = map[string]map[string]string{
	"no_token": {
		"en": "because it names no request: the code we sent was found neither in the address, nor in the subject, nor in the text.",
		"fr": "car elle ne désigne aucune demande : le code que nous avons envoyé ne figure ni dans l'adresse, ni dans l'objet, ni dans le texte.",
	},
	"unknown_token": {
		"en": "because the code it carries is not one of ours.",
		"fr": "car le code qu'elle porte n'est pas l'un des nôtres.",
	},
	"dead_token": {
		"en": "because the code it carries is no longer valid (already used, replaced by a newer email, or the request is closed).",
		"fr": "car le code qu'elle porte n'est plus valable (déjà utilisée, remplacée par un email plus récent, ou demande close).",
	},
	"no_decision": {
		"en": "because its first line holds no answer we can read.",
		"fr": "car sa première ligne ne contient aucune réponse lisible.",
	},
	"wrong_sender": {
		"en": "because it was not sent from the email address we have on file for the contact the request was sent to.",
		"fr": "car elle ne vient pas de l'adresse email que nous connaissons pour le contact à qui la demande a été envoyée.",
	},
	"conflict": {
		"en": "because it carries two different codes.",
		"fr": "car elle porte deux codes différents.",
	},
	"not_authentic": {
		"en": "because we could not verify that it really comes from your address.",
		"fr": "car nous n'avons pas pu vérifier qu'elle provient bien de votre adresse.",
	},
	"too_large": {
		"en": "because it is too large.",
		"fr": "car elle est trop volumineuse.",
	},
}

// oneLine joins the words of s with single spaces, so a sentence the text
// part wraps over several lines compares equal to its one-line form.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// The not_understood email explains each reason in the words above, in its
// text and its HTML part, in both languages.
func TestNotUnderstoodReasonWording(t *testing.T) {
	set := templates.MustEmbedded()
	for code, byLang := range reasonWords {
		for _, lang := range templates.Languages {
			t.Run(code+"."+lang, func(t *testing.T) {
				want, ok := byLang[lang]
				if !ok {
					t.Fatalf("no expected wording for %s in %s", code, lang)
				}
				e, err := set.Render(templates.Data{Kind: "not_understood", Language: lang, Reason: code,
					ReplyAddress: "contacts@example.com"})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(oneLine(e.Text), want) {
					t.Errorf("text part does not say %q:\n%s", want, e.Text)
				}
				if !strings.Contains(oneLine(html.UnescapeString(e.HTML)), want) {
					t.Errorf("HTML part does not say %q:\n%s", want, e.HTML)
				}
			})
		}
	}
}
