package workflow_test

import (
	"testing"

	"contactd/workflow"
)

func TestNormalizeTokenReadsATypedCode(t *testing.T) {
	const tok = "kabcdefghijklmnopqrstuvwxyz234567"
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"as in the link", tok, true},
		{"upper case", "KABCDEFGHIJKLMNOPQRSTUVWXYZ234567", true},
		{"grouped with dashes", "kabc-defg-hijk-lmno-pqrs-tuvw-xyz2-34567", true},
		{"grouped with spaces", " kabc defg hijk\tlmno pqrs tuvw xyz2 34567 ", true},
		{"typographic dashes", "kabc‐defg–hijk—lmno-pqrs-tuvw-xyz2-34567", true},
		{"one character short", tok[:32], false},
		{"a letter outside the alphabet", "kabcdefghijklmnopqrstuvwxyz234561", false},
		{"other punctuation", "kabc.defg.hijk.lmno.pqrs.tuvw.xyz2.34567", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := workflow.NormalizeToken(c.in)
			if ok != c.ok {
				t.Fatalf("NormalizeToken(%q) ok = %v, want %v", c.in, ok, c.ok)
			}
			if ok && got != tok {
				t.Errorf("NormalizeToken(%q) = %q, want %q", c.in, got, tok)
			}
		})
	}
}
