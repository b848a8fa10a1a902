package templates_test

import (
	"html"
	"strings"
	"testing"

	"contactd/locale"
	"contactd/templates"
	"contactd/workflow"
)

// reasonWords is what the not_understood email says for each reason the
// inbox names, in each language: the sentence a sender reads.
var reasonWords = map[string]map[string]string{
	"no_token": {
		"en": "because it names no request: the code we sent was found neither in the address, nor in the subject, nor in the text.",
		"fr": "car elle ne désigne aucune demande : le code que nous avons envoyé ne figure ni dans l’adresse, ni dans l’objet, ni dans le texte.",
	},
	"unknown_token": {
		"en": "because the code it carries is not one of ours.",
		"fr": "car le code qu’elle porte n’est pas l’un des nôtres.",
	},
	"dead_token": {
		"en": "because the code it carries is no longer valid (already used, replaced by a newer email, or the request is closed).",
		"fr": "car le code qu’elle porte n’est plus valable (déjà utilisé, remplacé par un message plus récent, ou demande close).",
	},
	"no_decision": {
		"en": "because its first line holds no answer we can read.",
		"fr": "car sa première ligne ne contient aucune réponse lisible.",
	},
	"wrong_sender": {
		"en": "because it was not sent from the email address we have on file for the contact the request was sent to.",
		"fr": "car elle ne vient pas de l’adresse email que nous connaissons pour le contact à qui la demande a été envoyée.",
	},
	"conflict": {
		"en": "because it carries two different codes.",
		"fr": "car elle porte deux codes différents.",
	},
	"not_authentic": {
		"en": "because we could not verify that it really comes from your address.",
		"fr": "car nous n’avons pas pu vérifier qu’elle provient bien de votre adresse.",
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
// text and its HTML part; in the other languages, in the words of their
// catalogue, which are not the English ones.
func TestNotUnderstoodReasonWording(t *testing.T) {
	set := templates.MustEmbedded()
	for _, code := range workflow.MailedProblems {
		for _, lang := range workflow.Languages {
			t.Run(string(code)+"."+string(lang), func(t *testing.T) {
				want, ok := reasonWords[string(code)][string(lang)]
				if !ok {
					want = locale.For(lang).Problem(string(code))
					if want == locale.For(workflow.English).Problem(string(code)) {
						t.Fatalf("%s: the reason %s is in English", lang, code)
					}
				}
				e, err := set.Render(templates.Data{Kind: workflow.KindNotUnderstood, Language: lang, Reason: string(code),
					ReplyAddress: "contacts@example.com"})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(oneLine(e.Text), oneLine(want)) {
					t.Errorf("text part does not say %q:\n%s", want, e.Text)
				}
				if !strings.Contains(oneLine(html.UnescapeString(e.HTML)), oneLine(want)) {
					t.Errorf("HTML part does not say %q:\n%s", want, e.HTML)
				}
			})
		}
	}
}

// The reason a request failed is written in the reader's language, in
// both parts, for one request and for each service of a hand-over.
func TestFailedReasonInEveryLanguage(t *testing.T) {
	set := templates.MustEmbedded()
	english := locale.For(workflow.English).Reason("payment_overdue:bi1-ovh", "example.com")
	for _, lang := range workflow.Languages {
		want := locale.For(lang).Reason("payment_overdue:bi1-ovh", "example.com")
		if lang != workflow.English && want == english {
			t.Errorf("%s: the reason is in English: %q", lang, want)
		}
		e, err := set.Render(sample(workflow.KindFailed, lang))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(oneLine(e.Text), want) || !strings.Contains(oneLine(html.UnescapeString(e.HTML)), want) {
			t.Errorf("%s: a part of the failed email lacks %q:\n%s", lang, want, e.Text)
		}
		h := templates.SampleHandover(workflow.KindFailed, lang, "https://x.example")
		e, err = set.Render(h)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range h.Items {
			why := locale.For(lang).Reason(it.Reason, it.Service)
			if !strings.Contains(oneLine(e.Text), why) || !strings.Contains(oneLine(html.UnescapeString(e.HTML)), why) {
				t.Errorf("%s: the hand-over's failed email lacks %q for %s", lang, why, it.Service)
			}
		}
	}
	// A reason stored as words, before reasons were codes, is shown as is.
	d := sample(workflow.KindFailed, workflow.French)
	d.Reason = "the billing contact bi1-ovh is not up to date with payments"
	if e, err := set.Render(d); err != nil || !strings.Contains(oneLine(e.Text), d.Reason) {
		t.Errorf("an old reason in words is not shown as it is (%v)", err)
	}
}
