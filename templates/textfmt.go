package templates

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// textWidth is the widest line of a text body, in characters.
const textWidth = 78

// wrap breaks the lines of a text body longer than width at spaces. A
// word longer than the width (a link) is never cut: it stands alone on
// its line. A continuation keeps the indentation of its line, and of a
// list item's text.
func wrap(text string, width int) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if utf8.RuneCountInString(l) <= width || l == "-- " {
			out = append(out, l)
			continue
		}
		out = append(out, wrapLine(l, width)...)
	}
	return strings.Join(out, "\n")
}

// wrapLine breaks one long line, filling each line greedily. No
// continuation starts with a reply word (ACCEPT, OUI, NO…): a client that
// sends our text back unquoted must not turn a wrapped name into a
// decision, so such a word is carried down with the word before it.
func wrapLine(l string, width int) []string {
	body := strings.TrimLeft(l, " ")
	indent := l[:len(l)-len(body)]
	cont := indent
	if strings.HasPrefix(body, "- ") {
		cont += "  "
	}
	words := strings.Split(body, " ")
	var out []string
	prefix := indent
	for i := 0; i < len(words); {
		j := fit(words, i, width-utf8.RuneCountInString(prefix))
		for j < len(words) && j-1 > i && replyWord(words[j]) {
			j--
		}
		out = append(out, prefix+strings.Join(words[i:j], " "))
		prefix, i = cont, j
	}
	return out
}

// fit returns the end of the longest run of words from i that fits in
// width, one word at least.
func fit(words []string, i, width int) int {
	n := utf8.RuneCountInString(words[i])
	j := i + 1
	for j < len(words) && n+1+utf8.RuneCountInString(words[j]) <= width {
		n += 1 + utf8.RuneCountInString(words[j])
		j++
	}
	return j
}

// replyWords are the decision words of a reply (SPEC section 4).
var replyWords = map[string]bool{"accept": true, "accepter": true, "yes": true, "oui": true, "valider": true,
	"decline": true, "refuser": true, "no": true, "non": true}

// replyWord tells whether a line starting with w would read as a reply.
func replyWord(w string) bool {
	w = strings.TrimLeft(w, ">*_-–•")
	end := strings.IndexFunc(w, func(r rune) bool { return !unicode.IsLetter(r) })
	if end >= 0 {
		w = w[:end]
	}
	return replyWords[strings.ToLower(w)]
}

// frenchSpacing puts the no-break space French typography wants before
// ":", ";", "?" and "!", and inside « guillemets ».
var frenchSpacing = strings.NewReplacer(" :", "\u00a0:", " ;", "\u00a0;", " ?", "\u00a0?", " !", "\u00a0!",
	"« ", "«\u00a0", " »", "\u00a0»").Replace
