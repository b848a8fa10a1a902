package inbox

import (
	"regexp"
	"strings"
	"unicode"

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

var (
	// attribution lines of the common clients: Gmail, Apple Mail,
	// Thunderbird ("On … wrote:") and their French forms ("Le … a écrit :").
	wroteEN = regexp.MustCompile(`(?i)^on\b.*\bwrote\s*:?$`)
	wroteFR = regexp.MustCompile(`(?i)^le\b.*\ba\s+[ée]crit\s*:?$`)
	// separators above a quoted or forwarded message.
	separator = regexp.MustCompile(`(?i)^-{2,}\s*(original message|message d'origine|forwarded message|message transf[ée]r[ée]|message r[ée]exp[ée]di[ée])\s*-*$|^(begin forwarded message|d[ée]but du message r[ée]exp[ée]di[ée])\s*:$|^_{5,}$`)
	// Outlook's header block: a From line followed by Sent, Date, To or Subject.
	headerFrom = regexp.MustCompile(`(?i)^(from|de)\s*:`)
	headerNext = regexp.MustCompile(`(?i)^(sent|date|envoy[ée]|to|[àa]|subject|objet|cc)\s*:`)
	// first lines of attributions wrapped over two lines.
	startsWrote = regexp.MustCompile(`(?i)^(on|le)\s`)
	endsWrote   = regexp.MustCompile(`(?i)(wrote|a\s+[ée]crit)\s*:?$`)
)

// ownText returns the lines of text before the first quote, attribution,
// forwarded or original message block, or signature delimiter, and the
// language of the marker that ended it ("" when none or unknown).
func ownText(text string) (string, string) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := range lines {
		if end, lang := quoteStarts(lines, i); end {
			return strings.TrimSpace(strings.Join(lines[:i], "\n")), lang
		}
	}
	return strings.TrimSpace(text), ""
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

// quoteStarts reports whether lines[i] begins the quoted part of a reply.
func quoteStarts(lines []string, i int) (bool, string) {
	raw := strings.TrimRight(lines[i], " \t\r")
	if raw == "--" || raw == "-- " || strings.HasPrefix(strings.TrimSpace(raw), ">") {
		return true, ""
	}
	if strings.TrimSpace(raw) == strings.Repeat("_", len(strings.TrimSpace(raw))) && len(strings.TrimSpace(raw)) >= 5 {
		return true, ""
	}
	l := clean(raw)
	switch {
	case wroteEN.MatchString(l):
		return true, "en"
	case wroteFR.MatchString(l):
		return true, "fr"
	case separator.MatchString(l):
		return true, languageOfMarker(l)
	case startsWrote.MatchString(l) && i+1 < len(lines) && endsWrote.MatchString(clean(lines[i+1])):
		return true, languageOfMarker(clean(lines[i+1]))
	case headerFrom.MatchString(l):
		for j := i + 1; j < len(lines) && j <= i+3; j++ {
			if headerNext.MatchString(clean(lines[j])) {
				return true, languageOfMarker(l)
			}
		}
	}
	return false, ""
}

// languageOfMarker guesses the language of a quote marker.
func languageOfMarker(l string) string {
	l = strings.ToLower(l)
	for _, w := range []string{"écrit", "ecrit", "origine", "transf", "réexp", "de :", "de:", "début"} {
		if strings.Contains(l, w) {
			return "fr"
		}
	}
	return "en"
}

// decisionWords is the grammar of SPEC section 4.
var decisionWords = map[string]workflow.Decision{
	"accept": workflow.Accept, "accepter": workflow.Accept, "yes": workflow.Accept,
	"oui": workflow.Accept, "valider": workflow.Accept,
	"decline": workflow.Decline, "refuser": workflow.Decline, "no": workflow.Decline, "non": workflow.Decline,
}

var frenchWords = map[string]bool{"accepter": true, "oui": true, "valider": true, "refuser": true, "non": true}

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
	words := strings.FieldsFunc(strings.ToLower(first), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) == 0 || !unicode.IsLetter([]rune(first)[0]) {
		return "", ReasonNoDecision
	}
	kinds := map[workflow.Decision]bool{}
	for _, w := range words {
		d, ok := decisionWords[w]
		if !ok {
			return "", ReasonNoDecision
		}
		kinds[d] = true
	}
	if len(kinds) > 1 {
		return "", ReasonTwoDecisions
	}
	return decisionWords[words[0]], ""
}

// languageOfWords guesses the language of a reply from its first words.
func languageOfWords(own string) string {
	for _, w := range strings.FieldsFunc(strings.ToLower(own), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if frenchWords[w] {
			return "fr"
		}
		if _, ok := decisionWords[w]; ok {
			return "en"
		}
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
