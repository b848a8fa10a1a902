package inbox

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"contactd/locale"
	"contactd/workflow"
)

// The words mail clients write around the text they quote. Those of
// contactd's eight languages come from their catalogues (package locale,
// the quote.* messages); a few of other languages, which contactd does
// not write but whose clients its correspondents may use, are listed here
// with no language. Every table is matched on folded lines (lower case,
// accents removed: see locale.Fold), so "Envoyé" and "Envoye" are one.

// langs are the languages whose clients write a marker: several when
// they share it (Outlook's "De:" is French, Spanish and Portuguese), none
// when it is of another language.
type langs []workflow.Language

// one returns the language when there is exactly one.
func (ls langs) one() workflow.Language {
	if len(ls) == 1 {
		return ls[0]
	}
	return ""
}

// and keeps the languages of ls that are also in other.
func (ls langs) and(other langs) langs {
	var out langs
	for _, l := range ls {
		for _, o := range other {
			if l == o {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// words gathers a quote.* list of every catalogue, folded, with the
// languages that write each item, and adds extra, the same markers in
// languages contactd does not write.
func words(id string, extra ...string) map[string]langs {
	out := map[string]langs{}
	for w, ls := range locale.Words(id) {
		out[w] = ls
	}
	for _, w := range extra {
		if w = locale.Fold(w); out[w] == nil {
			out[w] = langs{}
		}
	}
	return out
}

var (
	// separatorPhrases name the message below a dashed separator line:
	// "-----Original Message-----", "---------- Forwarded message
	// ---------" and their translations.
	separatorPhrases = words("quote.separators",
		"ursprungligt meddelande", "vidarebefordrat meddelande", // Swedish
		"opprinnelig melding", "videresendt melding", // Norwegian
		"oprindelig meddelelse", "videresendt meddelelse", // Danish
		"исходное сообщение", "пересылаемое сообщение", "пересланное сообщение") // Russian

	// forwardLines open a forwarded message in Apple Mail and its kind.
	forwardLines = words("quote.forward_lines",
		"vidarebefordrat mejl:", "videresendt melding:", "начало переадресованного сообщения:")
)

// separator reports whether a cleaned line separates the reply from an
// original or forwarded message, and in which languages.
func separator(l string) (langs, bool) {
	low := locale.Fold(l)
	if ls, ok := forwardLines[low]; ok {
		return ls, true
	}
	if !strings.HasPrefix(low, "--") && !strings.HasPrefix(low, "—") {
		return nil, false
	}
	ls, ok := separatorPhrases[strings.TrimSpace(strings.Trim(low, "-— "))]
	return ls, ok
}

// headerKey is one field name of the header block Outlook and webmails
// write above the message replied to ("From: … Sent: … To: … Subject:"),
// in each language; from says the field opens a block.
type headerKey struct {
	field string // from, sent, date, to, cc or subject
	langs langs
}

// headerKeys maps each folded field name to its field and languages.
var headerKeys = func() map[string]headerKey {
	out := map[string]headerKey{}
	fields := map[string][]string{
		"from":    {"från", "от", "fra", "remetente"},
		"sent":    {"skickat", "отправлено", "sendt"},
		"date":    {"дата"},
		"to":      {"till", "кому", "til"},
		"cc":      {"kopie", "kopia", "копия"},
		"subject": {"ämne", "тема", "emne"},
	}
	for field, extra := range fields {
		for w, ls := range words("quote.header_"+field, extra...) {
			out[w] = headerKey{field: field, langs: ls}
		}
	}
	return out
}()

// headerField returns the header key a cleaned line starts with
// ("Von: …", "*Sent:* …", "De : …", "Enviado el: …").
func headerField(l string) (headerKey, bool) {
	name, _, ok := strings.Cut(l, ":")
	if !ok || len(name) > 20 {
		return headerKey{}, false
	}
	k, ok := headerKeys[locale.Fold(strings.Trim(name, "*_ \t\u00a0"))]
	return k, ok
}

// headerBlock reports whether lines[i] opens a header block: a From (or,
// as Hotmail writes it, a Date) field followed within the next lines by
// another field of the block. The rule line some clients draw above it
// counts as its start too. It returns the languages its fields share.
func (p *page) headerBlock(i int) (bool, langs) {
	if hyphens(p.clean[i]) {
		for j := i + 1; j < len(p.raw) && j <= i+2; j++ {
			if next := p.clean[j]; next != "" && !hyphens(next) {
				return p.headerBlockAt(j)
			} else if next != "" {
				return false, nil
			}
		}
		return false, nil
	}
	return p.headerBlockAt(i)
}

// headerBlockAt reports whether a header block starts at lines[i], and
// the languages of its first two fields ("De:" then "Envoyé :" is French
// alone).
func (p *page) headerBlockAt(i int) (bool, langs) {
	first, ok := headerField(p.clean[i])
	if !ok || (first.field != "from" && first.field != "date") {
		return false, nil
	}
	for j := i + 1; j < len(p.raw) && j <= i+4; j++ {
		next, ok := headerField(p.clean[j])
		if ok && next.field != first.field {
			return true, first.langs.and(next.langs)
		}
	}
	return false, nil
}

// hyphens reports a rule line of hyphens or dashes.
func hyphens(l string) bool {
	return len(l) >= 5 && strings.Trim(l, "-—–") == ""
}

// attributionForm is one language's attribution line, as a pattern on
// the folded line: "on * wrote:", "am * schrieb *:". Its literal start
// and end are checked first, the pattern only when they match.
type attributionForm struct {
	prefix, suffix string
	re             *regexp.Regexp
	langs          langs
}

// match reports whether the folded line l has the form.
func (f attributionForm) match(l string) bool {
	return strings.HasPrefix(l, f.prefix) && strings.HasSuffix(l, f.suffix) && f.re.MatchString(l)
}

// attributionForms are the attribution lines of the catalogues. Beside
// them, attributionVerbs end the attribution lines of other languages,
// which must hold a date or an address to count.
var (
	attributionForms = func() []attributionForm {
		var out []attributionForm
		for pattern, ls := range locale.Words("quote.attributions") {
			parts := strings.Split(pattern, "*")
			f := attributionForm{prefix: parts[0], suffix: parts[len(parts)-1], langs: ls}
			for i, p := range parts {
				parts[i] = regexp.QuoteMeta(p)
			}
			f.re = regexp.MustCompile(`^` + strings.Join(parts, `.*`) + `$`)
			out = append(out, f)
		}
		return out
	}()
	attributionVerbs = []string{
		"skrev",                             // Swedish, Norwegian, Danish
		"написал(а)", "написал", "написала", // Russian
	}
	// gmailDate is Gmail's attribution in some locales:
	// "2016-10-24 15:36 GMT+02:00 Name <address>:".
	gmailDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2}(\s+GMT[+-]\d{1,2}(:\d{2})?)?\s+.*\S+@\S+>?\s*:$`)
)

// attribution reports how many lines, from lines[i], make an attribution
// line ("On …, Name <addr> wrote:" and its translations), one to three
// when a client wrapped it, and its languages. A wrapped attribution
// starts with a line holding a digit (its date).
func (p *page) attribution(i int) (int, langs) {
	joined := ""
	for n := 1; n <= 3 && i+n <= len(p.raw); n++ {
		l := p.clean[i+n-1]
		if l == "" || quoted(p.raw[i+n-1]) {
			return 0, nil
		}
		if n == 1 {
			joined = l
		} else if d, _ := decision(l); d != "" {
			return 0, nil // a reply's answer is never part of a wrapped attribution
		} else {
			joined += " " + l
		}
		if ls, ok := attributionLine(joined); ok {
			return n, ls
		}
		if !strings.ContainsAny(joined, "0123456789") {
			return 0, nil
		}
	}
	return 0, nil
}

// attributionLine reports whether l, maybe several lines joined, is an
// attribution: one of the catalogues' forms, or Gmail's dated form, or a
// line of another language ending with one of attributionVerbs and a
// colon and holding a date or an address, so a sentence does not pass.
// A form of a catalogue needs a date or an address too unless it starts
// with its own word ("On", "Le", "Am", …): "I wrote:" is no attribution.
func attributionLine(l string) (langs, bool) {
	low := locale.Fold(strings.TrimSpace(l))
	dated := strings.ContainsAny(low, "0123456789@")
	for _, f := range attributionForms {
		if f.match(low) && (dated || f.prefix != "") {
			return f.langs, true
		}
	}
	if !strings.HasSuffix(low, ":") {
		return nil, false
	}
	if gmailDate.MatchString(l) {
		return nil, true
	}
	if !dated {
		return nil, false
	}
	for _, v := range attributionVerbs {
		if containsWord(low, v) {
			return nil, true
		}
	}
	return nil, false
}

// containsWord reports whether w occurs in s between non-letters.
func containsWord(s, w string) bool {
	for off := 0; ; {
		i := strings.Index(s[off:], w)
		if i < 0 {
			return false
		}
		i += off
		if !letterAt(s, i-1, true) && !letterAt(s, i+len(w), false) {
			return true
		}
		off = i + len(w)
	}
}

// letterAt reports whether the rune ending (before) or starting at byte
// i of s is a letter.
func letterAt(s string, i int, before bool) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	var r rune
	if before {
		r, _ = utf8.DecodeLastRuneInString(s[:i+1])
	} else {
		r, _ = utf8.DecodeRuneInString(s[i:])
	}
	return unicode.IsLetter(r)
}

// signatures are the one-line signatures phones and mail apps add
// ("Sent from my iPhone", "Envoyé de mon iPhone", "Get Outlook for iOS",
// "Von meinem iPhone gesendet", …): never the reply's own words.
var signatures = []*regexp.Regexp{
	regexp.MustCompile(`(?i)^(sent|envoy[ée]|enviad[oa]|inviato|gesendet|verzonden|verstuurd|skickat|sendt|wys[łl]ane|отправлено)\s+(from|via|with|using|on|de|depuis|à partir de|a partir de|desde|do|da|dal|von|mit|met|vanaf|via|från|fra|z|ze|с|из)\s.{1,50}$`),
	regexp.MustCompile(`(?i)^von meine[mr]\s.{1,40}\sgesendet\.?$`),
	regexp.MustCompile(`(?i)^(get|obtenir|holen sie sich|obtener|obter|scarica|download|haal|skaffa|hent|pobierz)\s+outlook\s+(for|pour|für|para|per|voor|för|til|dla)\s+(ios|android)\.?$`),
}

// signatureLine reports a phone or mail app signature line.
func signatureLine(l string) bool {
	if len(l) > 80 {
		return false
	}
	for _, re := range signatures {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}
