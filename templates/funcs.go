package templates

import (
	"contactd/locale"
)

// funcsFor returns the template functions of a language: t writes a
// message of the catalogue, tn a plural one for a count, say the message
// of an email about one request or, for a hand-over, its KEY_handover
// counterpart (plural, for the number of services, when so written), and button gives
// the "button" template its link and label.
func funcsFor(c *locale.Catalogue) map[string]any {
	return map[string]any{
		"t":  c.T,
		"tn": c.N,
		"say": func(id string, d Data) (string, error) {
			switch h := id + "_handover"; {
			case d.Handover == "" || !c.Has(h):
			case c.Plural(h):
				return c.N(h, d.Total(), d)
			default:
				return c.T(h, d)
			}
			return c.T(id, d)
		},
		"button": func(link, label string) buttonData { return buttonData{Link: link, Label: label} },
	}
}

// buttonData is a link drawn as a button in HTML.
type buttonData struct{ Link, Label string }
