package inbox

import (
	"html"
	"strings"
	"testing"

	"contactd/templates"
	"contactd/workflow"
)

// Every reason a reply is rejected for is explained in words, in every
// language, by the not_understood email: the words that fit that reason,
// never its code.
func TestEveryReasonIsWorded(t *testing.T) {
	words := map[string]map[string]string{ // reason → language → what the email says
		ReasonUnreadable:       {"en": "its first line holds no answer we can read", "fr": "sa première ligne ne contient aucune réponse lisible"},
		ReasonTooLarge:         {"en": "it is too large", "fr": "elle est trop volumineuse"},
		ReasonNoToken:          {"en": "it names no request", "fr": "elle ne désigne aucune demande"},
		ReasonTwoTokens:        {"en": "it carries two different codes", "fr": "elle porte deux codes différents"},
		ReasonUnknownToken:     {"en": "the code it carries is not one of ours", "fr": "le code qu’elle porte n’est pas l’un des nôtres"},
		ReasonUsedToken:        {"en": "the code it carries is no longer valid", "fr": "le code qu’elle porte n’est plus valable"},
		ReasonNoDecision:       {"en": "its first line holds no answer we can read", "fr": "sa première ligne ne contient aucune réponse lisible"},
		ReasonTwoDecisions:     {"en": "its first line holds no answer we can read", "fr": "sa première ligne ne contient aucune réponse lisible"},
		ReasonWrongSender:      {"en": "it was not sent from the email address we have on file", "fr": "elle ne vient pas de l’adresse email que nous connaissons"},
		ReasonNotAuthenticated: {"en": "we could not verify that it really comes from your address", "fr": "nous n’avons pas pu vérifier qu’elle provient bien de votre adresse"},
		ReasonBadFrom:          {"en": "it was not sent from the email address we have on file", "fr": "elle ne vient pas de l’adresse email que nous connaissons"},
	}
	set := templates.MustEmbedded()
	for reason, byLang := range words {
		for _, lang := range []workflow.Language{workflow.English, workflow.French} {
			t.Run(reason+"."+string(lang), func(t *testing.T) {
				code := mailReason(reason)
				m, err := set.Render(templates.Data{Kind: workflow.KindNotUnderstood, Language: lang, Reason: code,
					ReplyAddress: "contacts@example.com"})
				if err != nil {
					t.Fatalf("%s: %v", code, err)
				}
				text := strings.Join(strings.Fields(m.Text), " ")
				page := strings.Join(strings.Fields(html.UnescapeString(m.HTML)), " ")
				if want := byLang[string(lang)]; want == "" || !strings.Contains(text, want) || !strings.Contains(page, want) {
					t.Errorf("the not_understood email for %s (sent as %q) does not say %q:\n%s", reason, code, want, m.Text)
				}
				if strings.Contains(m.Text, code) || strings.Contains(m.HTML, code) {
					t.Errorf("the not_understood email shows the code %q instead of words", code)
				}
			})
		}
	}
}
