package inbox

import (
	"strings"
	"testing"

	"contactd/templates"
)

// Every reason a reply is rejected for is explained in words, in every
// language, by the not_understood email.
func TestEveryReasonIsWorded(t *testing.T) {
	reasons := []string{ReasonUnreadable, ReasonTooLarge, ReasonNoToken, ReasonTwoTokens, ReasonUnknownToken,
		ReasonUsedToken, ReasonNoDecision, ReasonTwoDecisions, ReasonWrongSender, ReasonNotAuthenticated, ReasonBadFrom}
	set := templates.MustEmbedded()
	for _, lang := range templates.Languages {
		for _, reason := range reasons {
			code := mailReason(reason)
			m, err := set.Render(templates.Data{Kind: "not_understood", Language: lang, Reason: code,
				ReplyAddress: "contacts@example.com"})
			if err != nil {
				t.Fatalf("%s %s: %v", lang, code, err)
			}
			if strings.Contains(m.Text, code) || strings.Contains(m.HTML, code) {
				t.Errorf("%s: the not_understood email shows the code %q instead of words", lang, code)
			}
		}
	}
}
