package templates_test

import (
	"testing"

	"contactd/templates"
	"contactd/workflow"
)

// BenchmarkRender measures writing one email: the validation email about
// one request, in English and in Polish (plural forms, dates), and about
// a hand-over listing 20 services.
func BenchmarkRender(b *testing.B) {
	set := templates.MustEmbedded()
	for _, c := range []struct {
		name string
		d    templates.Data
	}{
		{"validation/en", templates.Sample(workflow.KindValidation, workflow.English, "https://contacts.example.com")},
		{"validation/pl", templates.Sample(workflow.KindValidation, workflow.Polish, "https://contacts.example.com")},
		{"validation/fr", templates.Sample(workflow.KindValidation, workflow.French, "https://contacts.example.com")},
		{"handover-validation/de", templates.SampleHandover(workflow.KindValidation, workflow.German, "https://contacts.example.com")},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := set.Render(c.d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
