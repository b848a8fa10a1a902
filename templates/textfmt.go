package templates

import (
	"contactd/locale"
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

// replyWords are the decision words of a reply in every language (SPEC
// section 4), folded as the inbox reads them.
var replyWords = func() map[string]bool {
	out := map[string]bool{}
	for _, id := range []string{"reply.accept", "reply.decline"} {
		for w := range locale.Words(id) {
			out[w] = true
		}
	}
	return out
}()

// replyWord tells whether a line starting with w would read as a reply.
func replyWord(w string) bool {
	w = strings.TrimLeft(w, ">*_-–•¿¡«„\"'(")
	end := strings.IndexFunc(w, func(r rune) bool { return !unicode.IsLetter(r) })
	if end >= 0 {
		w = w[:end]
	}
	return replyWords[locale.Fold(w)]
}
