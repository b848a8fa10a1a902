package inbox

import (
	"regexp"
	"strings"
	"unicode"

	"contactd/locale"
	"contactd/workflow"

	"github.com/jaytaylor/html2text"
)

// htmlText turns an HTML body into text; blockquotes come out as "> "
// lines, which ownText then cuts.
func htmlText(html string) string {
	s, err := html2text.FromString(html, html2text.Options{OmitLinks: true})
	if err != nil {
		return ""
	}
	return s
}

// ownText returns the reply's own text: the lines above the end of the
// reply (an Outlook-style header block, an original or forwarded message
// separator, a signature delimiter), without the quoted lines, the
// attribution lines and the phone signatures, wherever they stand; and
// the language of the first marker that names one alone ("" when none
// does).
func ownText(text string) (string, workflow.Language) {
	p := newPage(text)
	var own []string
	var lang workflow.Language
	for i := 0; i < len(p.raw); i++ {
		if end, marker := p.endsReply(i); end {
			if lang == "" {
				lang = marker.one()
			}
			break
		}
		if quoted(p.raw[i]) || signatureLine(p.clean[i]) {
			continue
		}
		if n, marker := p.attribution(i); n > 0 {
			if lang == "" {
				lang = marker.one()
			}
			if !p.quotedNext(i + n) {
				// The original follows unmarked: it is never the reply's.
				break
			}
			i += n - 1
			continue
		}
		own = append(own, p.raw[i])
	}
	return strings.TrimSpace(strings.Join(own, "\n")), lang
}

// page is a text as lines, each also cleaned once.
type page struct{ raw, clean []string }

func newPage(text string) *page {
	raw := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	p := &page{raw: raw, clean: make([]string, len(raw))}
	for i, l := range raw {
		p.clean[i] = clean(l)
	}
	return p
}

// clean trims a line and the emphasis marks an HTML rendering adds.
func clean(line string) string {
	line = strings.Map(func(r rune) rune {
		if r == '\u00a0' || r == '\u202f' {
			return ' '
		}
		return r
	}, line)
	return strings.Trim(strings.TrimSpace(line), "*_ \t")
}

// quoted reports whether a line is quoted text ("> ...").
func quoted(line string) bool {
	return strings.HasPrefix(strings.TrimLeftFunc(line, unicode.IsSpace), ">")
}

// quotedNext reports whether the first non-empty line from i on is
// quoted (true, too, when there is none).
func (p *page) quotedNext(i int) bool {
	for ; i < len(p.raw); i++ {
		if strings.TrimSpace(p.raw[i]) != "" {
			return quoted(p.raw[i])
		}
	}
	return true
}

// endsReply reports whether lines[i] ends the reply's own text: what
// follows is a signature, or an original or forwarded message that is
// not marked as quoted. It returns the languages the marker is of.
func (p *page) endsReply(i int) (bool, langs) {
	raw := strings.TrimRight(p.raw[i], " \t\r")
	if raw == "--" || raw == "-- " || rule(raw) {
		return true, nil
	}
	if ls, ok := separator(p.clean[i]); ok {
		return true, ls
	}
	return p.headerBlock(i)
}

// rule reports a line of underscores, the rule Outlook draws above the
// header block of the message replied to.
func rule(raw string) bool {
	t := strings.TrimSpace(raw)
	return len(t) >= 5 && strings.Trim(t, "_") == ""
}

// decisionWords is the grammar of SPEC section 4: the reply words of
// every language's catalogue, folded (lower case, no accents), each with
// its decision and the languages it is a word of.
var decisionWords = func() map[string]struct {
	decision workflow.Decision
	langs    langs
} {
	out := map[string]struct {
		decision workflow.Decision
		langs    langs
	}{}
	for id, d := range map[string]workflow.Decision{"reply.accept": workflow.Accept, "reply.decline": workflow.Decline} {
		for w, ls := range locale.Words(id) {
			out[w] = struct {
				decision workflow.Decision
				langs    langs
			}{d, ls}
		}
	}
	return out
}()

// decision reads the first non-empty line of own. The line must be a
// decision word, with trailing punctuation allowed; a line made only of
// decision words of both kinds is two decisions.
func decision(own string) (workflow.Decision, string) {
	first := ""
	for _, line := range strings.Split(own, "\n") {
		if l := clean(line); l != "" {
			first = l
			break
		}
	}
	// Spanish opens an exclamation with its own mark: "¡Sí!".
	first = strings.TrimPrefix(first, "¡")
	words := strings.FieldsFunc(locale.Fold(first), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) == 0 || !unicode.IsLetter([]rune(first)[0]) {
		return "", ReasonNoDecision
	}
	kinds := map[workflow.Decision]bool{}
	for _, w := range words {
		d, ok := decisionWords[w]
		if !ok {
			return "", ReasonNoDecision
		}
		kinds[d.decision] = true
	}
	if len(kinds) > 1 {
		return "", ReasonTwoDecisions
	}
	return decisionWords[words[0]].decision, ""
}

// languageOfWords guesses the language of a reply from its first reply
// word: the language it belongs to alone ("oui": French), or English when
// English is among several ("no": English, Spanish, Italian), else none
// ("ja": German or Dutch).
func languageOfWords(own string) workflow.Language {
	for _, w := range strings.FieldsFunc(locale.Fold(own), func(r rune) bool { return !unicode.IsLetter(r) }) {
		d, ok := decisionWords[w]
		if !ok {
			continue
		}
		if l := d.langs.one(); l != "" {
			return l
		}
		if len(d.langs.and(langs{workflow.English})) == 1 {
			return workflow.English
		}
		return ""
	}
	return ""
}

// tokenRun finds candidate tokens: runs of the base32 alphabet, matched
// case-insensitively since mail systems may change case.
var tokenRun = regexp.MustCompile(`(?i)[a-z2-7]{33,}`)

// firstToken returns the first run in s that has exactly a token's shape.
func firstToken(s string) string {
	for _, m := range tokenRun.FindAllString(s, 20) {
		if t, ok := workflow.NormalizeToken(m); ok {
			return t
		}
	}
	return ""
}

// readTokens finds the token in the recipient's sub-address, the subject
// and the body, keeps the first by that order, and notes a conflict.
func (r *Reply) readTokens(replyAddress, body string) {
	carriers := []struct{ name, token string }{
		{"address", subAddressToken(r.header, replyAddress)},
		{"subject", firstToken(r.Subject)},
		{"body", firstToken(body)},
	}
	for _, c := range carriers {
		if c.token == "" {
			continue
		}
		if r.Token == "" {
			r.Token, r.TokenFrom = c.token, c.name
		} else if r.Token != c.token {
			r.Problem = ReasonTwoTokens
		}
	}
}
