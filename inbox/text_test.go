package inbox

import (
	"strings"
	"testing"
	"time"
)

// Small shapes of replies, beside the whole messages of testdata/replies:
// the own text each must give (lines joined by |), and its language.
func TestOwnText(t *testing.T) {
	cases := []struct {
		name, text, own, lang string
	}{
		{"top-posted", "Yes\n\nOn Mon, 2 Mar 2026, Contacts wrote:\n> ACCEPT?", "Yes", "en"},
		{"bottom-posted", "On Mon, 2 Mar 2026, Contacts wrote:\n> ACCEPT?\n\nNo", "No", "en"},
		{"inline", "> first?\nyes\n> second?\nsure", "yes|sure", ""},
		{"indented quote", "  > ACCEPT\nno", "no", ""},
		{"nothing typed", "On Mon, 2 Mar 2026, Contacts wrote:\n> ACCEPT", "", "en"},
		{"signature delimiter ends", "oui\n-- \nJean\n> non", "oui", ""},
		{"bare signature delimiter ends", "oui\n--\nJean", "oui", ""},
		{"gmail wrapped over two lines", "On Mon, Mar 2, 2026 at 10:00 AM Contacts <\ncontacts@example.com> wrote:\n> q\nYes", "Yes", "en"},
		{"french wrapped over three lines", "Le lun. 2 mars 2026 à 10:00, Contacts\n<contacts@example.com> a\nécrit :\n> q\nNon", "Non", "fr"},
		{"german", "Am 02.03.26 um 10:00 schrieb Contacts:\n> q\nACCEPT", "ACCEPT", "de"},
		{"german, name first", "Contacts <contacts@example.com> schrieb am Mo., 2. März 2026, 10:00:\n> q\nACCEPT", "ACCEPT", "de"},
		{"dutch", "Op 2 mrt. 2026 om 10:00 schreef Contacts <contacts@example.com>:\n> q\nno", "no", "nl"},
		{"spanish", "El lun, 2 mar 2026 a las 10:00, Contacts (<contacts@example.com>) escribió:\n> q\nno", "no", "es"},
		{"portuguese", "Em seg., 2 de mar. de 2026 às 10:00, Contacts <contacts@example.com> escreveu:\n> q\nno", "no", "pt"},
		{"italian", "Il giorno lun 2 mar 2026 alle ore 10:00 Contacts <contacts@example.com> ha scritto:\n> q\nno", "no", "it"},
		{"swedish", "Den mån 2 mars 2026 kl 10:00 skrev Contacts <contacts@example.com>:\n> q\nno", "no", ""},
		{"polish", "pon., 2 mar 2026 o 10:00 Contacts <contacts@example.com> napisał(a):\n> q\nno", "no", "pl"},
		{"russian", "пн, 2 мар. 2026 г. в 10:00, Contacts <contacts@example.com> написал:\n> q\nno", "no", ""},
		{"gmail locale date", "2016-10-24 15:36 GMT+02:00 Contacts <contacts@example.com>:\n> q\nno", "no", ""},
		{"a sentence with wrote is text", "I wrote:\nyes", "I wrote:|yes", ""},
		{"an answer is never part of a wrapped attribution", "Ticket 1234\nYes\nOn Mon, 2 Mar 2026, Contacts wrote:\n> q", "Ticket 1234|Yes", "en"},
		{"attribution then unquoted original", "On Mon, 2 Mar 2026, Contacts wrote:\n\nACCEPT", "", "en"},
		{"outlook block", "No.\n\nFrom: Contacts\nSent: Monday\nTo: Tom\nSubject: x\n\nACCEPT", "No.", "en"},
		{"outlook block, bold from html", "No.\n\n*From:* Contacts\n*Sent:* Monday\n\nACCEPT", "No.", "en"},
		{"outlook block french", "\nDe : Contacts\nEnvoyé : lundi\nÀ : Tom\nObjet : x\n\nOUI", "", "fr"},
		{"outlook block spanish", "\nDe: Contacts\nEnviado: lunes\nPara: Tom\nAsunto: x\n\nYES", "", ""},
		{"outlook block german", "\nVon: Contacts\nGesendet: Montag\nAn: Tom\nBetreff: x\n\nYES", "", "de"},
		{"outlook block italian", "\nDa: Contacts\nInviato: lunedì\nA: Tom\nOggetto: x\n\nYES", "", "it"},
		{"outlook block swedish", "\nFrån: Contacts\nSkickat: måndag\nTill: Tom\nÄmne: x\n\nYES", "", ""},
		{"outlook block dutch", "\nVan: Contacts\nVerzonden: maandag\nAan: Tom\nOnderwerp: x\n\nYES", "", "nl"},
		{"outlook block polish", "\nOd: Contacts\nWysłano: poniedziałek\nDo: Tom\nTemat: x\n\nYES", "", "pl"},
		{"hotmail block", "\nDate: Mon, 2 Mar 2026\nFrom: contacts@example.com\nTo: tom\nSubject: x\n\nYES", "", "en"},
		{"underscore rule", "\n________________________________\nYES", "", ""},
		{"hyphen rule above a block", "ok\n-----\nFrom: Contacts\nSent: Monday\n\nYES", "ok", "en"},
		{"hyphen line alone is text", "-----\nyes", "-----|yes", ""},
		{"a From line alone is text", "From: me\n\nyes", "From: me||yes", ""},
		{"original message", "\n-----Original Message-----\nYES", "", "en"},
		{"original message german", "\n-----Ursprüngliche Nachricht-----\nYES", "", "de"},
		{"original message spanish", "\n-----Mensaje original-----\nYES", "", "es"},
		{"forwarded", "\n---------- Forwarded message ---------\nYES", "", "en"},
		{"forwarded french", "\n---------- Message transféré ---------\nOUI", "", "fr"},
		{"apple forward", "\nBegin forwarded message:\n\nYES", "", "en"},
		{"sent from my iphone", "Yes\nSent from my iPhone", "Yes", ""},
		{"envoyé de mon iphone", "Envoyé de mon iPhone\n\nOui", "Oui", ""},
		{"envoyé depuis mon appareil mobile", "Envoyé depuis mon appareil mobile Samsung\nOui", "Oui", ""},
		{"get outlook for ios", "Get Outlook for iOS\nyes", "yes", ""},
		{"get outlook for android", "Get Outlook for Android\nyes", "yes", ""},
		{"sent from my galaxy", "Sent from my Galaxy\nyes", "yes", ""},
		{"von meinem iphone gesendet", "Von meinem iPhone gesendet\nyes", "yes", ""},
		{"gesendet von meinem", "Gesendet von meinem iPad\nyes", "yes", ""},
		{"enviado desde mi iphone", "Enviado desde mi iPhone\nyes", "yes", ""},
		{"enviado do meu iphone", "Enviado do meu iPhone\nyes", "yes", ""},
		{"inviato da iphone", "Inviato da iPhone\nyes", "yes", ""},
		{"verzonden met mijn iphone", "Verzonden met mijn iPhone\nyes", "yes", ""},
		{"skickat från min iphone", "Skickat från min iPhone\nyes", "yes", ""},
		{"sent from my phone in a sentence", "Sent from my phone because I am away, sorry for the delay in answering this\nyes", "Sent from my phone because I am away, sorry for the delay in answering this|yes", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			own, lang := ownText(c.text)
			if got := strings.ReplaceAll(own, "\n", "|"); got != c.own {
				t.Errorf("own text = %q, want %q", got, c.own)
			}
			if string(lang) != c.lang {
				t.Errorf("language = %q, want %q", lang, c.lang)
			}
		})
	}
}

// Long runs of lines that look like the start of a marker are read in
// linear time.
func TestOwnTextPathological(t *testing.T) {
	for _, line := range []string{"-----", "On 1 2 3", "From: x", "Date: 1", "Le 2 mars", "> x", "2026-03-02 10:00 a", "ü"} {
		const n = 20000 // 256 KiB of text at most is read
		text := strings.Repeat(line+"\n", n)
		start := time.Now()
		ownText(text)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%d lines of %q read in %s", n, line, took)
		}
	}
}
