package inbox

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The words mail clients write around the text they quote, in the
// languages contactd's correspondents use. Each list is matched on
// lower-cased, cleaned lines.

// separatorPhrases name the message below a dashed separator line:
// "-----Original Message-----", "---------- Forwarded message ---------"
// and their translations, with the language of the en and fr ones.
var separatorPhrases = map[string]string{
	"original message": "en", "forwarded message": "en",
	"message d'origine": "fr", "message d’origine": "fr", "message transféré": "fr", "message transfere": "fr",
	"message réexpédié": "fr", "message reexpedie": "fr",
	"ursprüngliche nachricht": "", "weitergeleitete nachricht": "", // German
	"mensaje original": "", "mensaje reenviado": "", // Spanish
	"mensagem original": "", "mensagem encaminhada": "", // Portuguese
	"messaggio originale": "", "messaggio inoltrato": "", // Italian
	"oorspronkelijk bericht": "", "doorgestuurd bericht": "", // Dutch
	"ursprungligt meddelande": "", "vidarebefordrat meddelande": "", // Swedish
	"opprinnelig melding": "", "videresendt melding": "", // Norwegian
	"oprindelig meddelelse": "", "videresendt meddelelse": "", // Danish
	"wiadomość oryginalna": "", "oryginalna wiadomość": "", "przekazana wiadomość": "", // Polish
	"исходное сообщение": "", "пересылаемое сообщение": "", "пересланное сообщение": "", // Russian
}

// forwardLines open a forwarded message in Apple Mail and its kind.
var forwardLines = map[string]string{
	"begin forwarded message:": "en", "début du message réexpédié :": "fr", "début du message réexpédié:": "fr",
	"début du message transféré :": "fr", "anfang der weitergeleiteten nachricht:": "",
	"inicio del mensaje reenviado:": "", "início da mensagem reencaminhada:": "", "inizio messaggio inoltrato:": "",
	"begin doorgestuurd bericht:": "", "vidarebefordrat mejl:": "", "videresendt melding:": "",
	"początek przekazywanej wiadomości:": "", "начало переадресованного сообщения:": "",
}

// separator reports whether a cleaned line separates the reply from an
// original or forwarded message, and in which language.
func separator(l string) (string, bool) {
	low := strings.ToLower(l)
	if lang, ok := forwardLines[low]; ok {
		return lang, true
	}
	if !strings.HasPrefix(low, "--") && !strings.HasPrefix(low, "—") {
		return "", false
	}
	words := strings.TrimSpace(strings.Trim(low, "-— "))
	lang, ok := separatorPhrases[words]
	return lang, ok
}

// headerKey is one field name of the header block Outlook and webmails
// write above the message replied to ("From: … Sent: … To: … Subject:"),
// in each language; from says the field opens a block.
type headerKey struct {
	field string // from, sent, date, to, cc or subject
	lang  string // en, fr, "" for another, ? when the next field tells
}

var headerKeys = map[string]headerKey{
	"from": {"from", "en"}, "de": {"from", "?"}, "von": {"from", ""}, "da": {"from", ""}, "från": {"from", ""},
	"van": {"from", ""}, "od": {"from", ""}, "от": {"from", ""}, "fra": {"from", ""}, "remetente": {"from", ""},
	"sent": {"sent", "en"}, "envoyé": {"sent", "fr"}, "envoye": {"sent", "fr"}, "gesendet": {"sent", ""},
	"enviado": {"sent", ""}, "enviada": {"sent", ""}, "inviato": {"sent", ""}, "skickat": {"sent", ""},
	"verzonden": {"sent", ""}, "wysłano": {"sent", ""}, "отправлено": {"sent", ""}, "sendt": {"sent", ""},
	"date": {"date", "?"}, "datum": {"date", ""}, "fecha": {"date", ""}, "data": {"date", ""}, "дата": {"date", ""},
	"to": {"to", "en"}, "à": {"to", "fr"}, "a": {"to", ""}, "an": {"to", ""}, "para": {"to", ""}, "till": {"to", ""},
	"aan": {"to", ""}, "do": {"to", ""}, "кому": {"to", ""}, "til": {"to", ""},
	"cc": {"cc", ""}, "kopie": {"cc", ""}, "kopia": {"cc", ""}, "копия": {"cc", ""},
	"subject": {"subject", "en"}, "objet": {"subject", "fr"}, "betreff": {"subject", ""}, "asunto": {"subject", ""},
	"assunto": {"subject", ""}, "oggetto": {"subject", ""}, "ämne": {"subject", ""}, "onderwerp": {"subject", ""},
	"temat": {"subject", ""}, "тема": {"subject", ""}, "emne": {"subject", ""},
}

// headerField returns the header key a cleaned line starts with
// ("Von: …", "*Sent:* …", "De : …").
func headerField(l string) (headerKey, bool) {
	name, _, ok := strings.Cut(l, ":")
	if !ok || len(name) > 20 {
		return headerKey{}, false
	}
	k, ok := headerKeys[strings.ToLower(strings.Trim(name, "*_ \t\u00a0"))]
	return k, ok
}

// headerBlock reports whether lines[i] opens a header block: a From (or,
// as Hotmail writes it, a Date) field followed within the next lines by
// another field of the block. The rule line some clients draw above it
// counts as its start too. It returns the language of the first field.
func (p *page) headerBlock(i int) (bool, string) {
	if hyphens(p.clean[i]) {
		for j := i + 1; j < len(p.raw) && j <= i+2; j++ {
			if next := p.clean[j]; next != "" && !hyphens(next) {
				return p.headerBlockAt(j)
			} else if next != "" {
				return false, ""
			}
		}
		return false, ""
	}
	return p.headerBlockAt(i)
}

// headerBlockAt reports whether a header block starts at lines[i].
func (p *page) headerBlockAt(i int) (bool, string) {
	first, ok := headerField(p.clean[i])
	if !ok || (first.field != "from" && first.field != "date") {
		return false, ""
	}
	for j := i + 1; j < len(p.raw) && j <= i+4; j++ {
		next, ok := headerField(p.clean[j])
		if ok && next.field != first.field {
			if first.lang == "?" { // "De:" is French, Spanish and Portuguese
				return true, strings.Trim(next.lang, "?")
			}
			return true, first.lang
		}
	}
	return false, ""
}

// hyphens reports a rule line of hyphens or dashes.
func hyphens(l string) bool {
	return len(l) >= 5 && strings.Trim(l, "-—–") == ""
}

// attributionVerbs end the line that introduces a quote ("… wrote:"),
// with the language of the en and fr ones.
var attributionVerbs = []struct{ verb, lang string }{
	{"wrote", "en"}, {"a écrit", "fr"}, {"a ecrit", "fr"},
	{"schrieb", ""},                    // German: "Am … schrieb Name <addr>:"
	{"schreef", ""},                    // Dutch: "Op … schreef Name <addr>:"
	{"escribió", ""}, {"escribio", ""}, // Spanish
	{"escreveu", ""},                                      // Portuguese
	{"ha scritto", ""},                                    // Italian
	{"skrev", ""},                                         // Swedish, Norwegian, Danish
	{"napisał(a)", ""}, {"napisał", ""}, {"napisała", ""}, // Polish
	{"написал(а)", ""}, {"написал", ""}, {"написала", ""}, // Russian
}

var (
	// attributionEN and attributionFR are the one-line forms that need no
	// date: "On …, Name wrote:", "Le …, Name a écrit :".
	attributionEN = regexp.MustCompile(`(?i)^on\b.*\bwrote\s*:?$`)
	attributionFR = regexp.MustCompile(`(?i)^le\b.*\ba\s+[ée]crit\s*:?$`)
	// gmailDate is Gmail's attribution in some locales:
	// "2016-10-24 15:36 GMT+02:00 Name <address>:".
	gmailDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2}(\s+GMT[+-]\d{1,2}(:\d{2})?)?\s+.*\S+@\S+>?\s*:$`)
)

// attribution reports how many lines, from lines[i], make an attribution
// line ("On …, Name <addr> wrote:" and its translations), one to three
// when a client wrapped it, and its language. A wrapped attribution
// starts with a line holding a digit (its date).
func (p *page) attribution(i int) (int, string) {
	joined := ""
	for n := 1; n <= 3 && i+n <= len(p.raw); n++ {
		l := p.clean[i+n-1]
		if l == "" || quoted(p.raw[i+n-1]) {
			return 0, ""
		}
		if n == 1 {
			joined = l
		} else if d, _ := decision(l); d != "" {
			return 0, "" // a reply's answer is never part of a wrapped attribution
		} else {
			joined += " " + l
		}
		if lang, ok := attributionLine(joined); ok {
			return n, lang
		}
		if !strings.ContainsAny(joined, "0123456789") {
			return 0, ""
		}
	}
	return 0, ""
}

// attributionLine reports whether l, maybe several lines joined, is an
// attribution. Beyond the English and French forms it must end with a
// colon and hold a date or an address, so a sentence does not pass.
func attributionLine(l string) (string, bool) {
	low := strings.ToLower(strings.TrimSpace(l))
	if !strings.HasSuffix(low, ":") && !strings.HasSuffix(low, "wrote") && !strings.HasSuffix(low, "crit") {
		return "", false
	}
	switch {
	case attributionEN.MatchString(l):
		return "en", true
	case attributionFR.MatchString(l):
		return "fr", true
	case gmailDate.MatchString(l):
		return "", true
	}
	if !strings.HasSuffix(low, ":") || !strings.ContainsAny(low, "0123456789@") {
		return "", false
	}
	for _, v := range attributionVerbs {
		if containsWord(low, v.verb) {
			return v.lang, true
		}
	}
	return "", false
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
