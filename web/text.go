package web

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"contactd/workflow"
)

// texts holds every fixed string of the pages, by language then key.
var texts = map[string]map[string]string{
	"en": {
		"validate_title":   "Change of contact",
		"service":          "Service",
		"asked_by":         "Asked by",
		"changes":          "Requested change",
		"role":             "Role",
		"from":             "From",
		"to":               "To",
		"your_part":        "Your part",
		"approvals":        "Approvals",
		"expires":          "This request expires on %s.",
		"question":         "Do you agree to this change?",
		"accept":           "Accept",
		"decline":          "Decline",
		"decline_confirm":  "Declining closes the request for everyone, and the contacts stay as they are. Do you want to decline it?",
		"decline_yes":      "Yes, decline",
		"part_requester":   "You asked for this change: please confirm it was you.",
		"part_new":         "You would become the %s.",
		"part_approver":    "Your agreement is needed.",
		"st_pending":       "waiting",
		"st_accepted":      "accepted",
		"st_declined":      "declined",
		"done_title":       "Thank you",
		"out_waiting":      "Your acceptance is recorded. The change will be made once the others have accepted too: %s.",
		"out_approved":     "Everyone has accepted. The change is being applied.",
		"out_applied":      "Everyone has accepted: the change is applied.",
		"out_failed":       "Everyone has accepted, but the change could not be applied: %s.",
		"out_declined":     "You declined. The request is closed and nothing changes.",
		"out_ended":        "Your answer is recorded. The request is now %s.",
		"report_title":     "A change was made",
		"report_intro":     "You were told that this change was made on %s.",
		"report_question":  "If you did not expect it, tell us: our security team will look into it. Reporting changes nothing by itself.",
		"report_button":    "This wasn't me",
		"reported":         "Thank you. Your report is recorded and our security team has been told.",
		"invalid_title":    "This link is not valid",
		"invalid_text":     "This link is not valid, or no longer valid: it may have been used already, replaced by a newer email, or have expired. If you still need to answer, use the link in the most recent email you received.",
		"error_title":      "Something went wrong",
		"e_unavailable":    "The service is temporarily unavailable. Please try again in a few minutes.",
		"e_internal":       "Something went wrong on our side. Please try again later.",
		"e_decision":       "Please choose Accept or Decline.",
		"e_forbidden":      "This form can only be sent from its own page. Please open the link from your email again.",
		"e_too_large":      "The form sent is too large.",
		"e_media":          "The form was not sent in the expected format.",
		"e_method":         "This address does not accept that kind of request.",
		"not_found_title":  "Page not found",
		"not_found_text":   "There is no page at this address.",
		"support":          "Help, and to check this page is genuine:",
		"code_link":        "Type the validation code of your most recent email",
		"code_title":       "Answer with your validation code",
		"code_intro":       "Each email we send about a change of contacts holds a personal validation code (it looks like abcd-efgh-ijkl-…). Type it here to see the request and answer it.",
		"code_label":       "Validation code",
		"code_button":      "Continue",
		"code_where":       "Capitals, spaces and dashes do not matter. The code is in the email, below the link; the link itself leads straight to the request.",
		"code_invalid":     "This code is not valid. Check that you typed it whole, as the email shows it.",
		"code_empty":       "Please type the validation code of your email.",
		"role_admin":       "administrative contact",
		"role_tech":        "technical contact",
		"role_billing":     "billing contact",
		"status_expired":   "expired",
		"status_declined":  "declined",
		"status_cancelled": "cancelled",
		"status_failed":    "failed",
		"status_applied":   "applied",
		"status_approved":  "approved",
		"status_pending":   "pending",
	},
	"fr": {
		"validate_title":   "Changement de contact",
		"service":          "Service",
		"asked_by":         "Demandé par",
		"changes":          "Changement demandé",
		"role":             "Rôle",
		"from":             "Avant",
		"to":               "Après",
		"your_part":        "Votre rôle",
		"approvals":        "Validations",
		"expires":          "Cette demande expire le %s.",
		"question":         "Acceptez-vous ce changement ?",
		"accept":           "Accepter",
		"decline":          "Refuser",
		"decline_confirm":  "Refuser clôt la demande pour tout le monde, et les contacts restent tels qu'ils sont. Voulez-vous la refuser\u00a0?",
		"decline_yes":      "Oui, refuser",
		"part_requester":   "Vous avez demandé ce changement : confirmez qu'il s'agit bien de vous.",
		"part_new":         "Vous deviendriez le %s.",
		"part_approver":    "Votre accord est nécessaire.",
		"st_pending":       "en attente",
		"st_accepted":      "accepté",
		"st_declined":      "refusé",
		"done_title":       "Merci",
		"out_waiting":      "Votre accord est enregistré. Le changement sera fait quand les autres auront accepté aussi : %s.",
		"out_approved":     "Tout le monde a accepté. Le changement est en cours.",
		"out_applied":      "Tout le monde a accepté : le changement est fait.",
		"out_failed":       "Tout le monde a accepté, mais le changement n'a pas pu être fait : %s.",
		"out_declined":     "Vous avez refusé. La demande est close et rien ne change.",
		"out_ended":        "Votre réponse est enregistrée. La demande est maintenant %s.",
		"report_title":     "Un changement a été fait",
		"report_intro":     "Vous avez été informé que ce changement a été fait le %s.",
		"report_question":  "Si vous ne vous y attendiez pas, signalez-le : notre équipe sécurité examinera la situation. Le signalement ne change rien par lui-même.",
		"report_button":    "Ce n'était pas moi",
		"reported":         "Merci. Votre signalement est enregistré et notre équipe sécurité est prévenue.",
		"invalid_title":    "Ce lien n'est pas valide",
		"invalid_text":     "Ce lien n'est pas valide, ou ne l'est plus : il a peut-être déjà servi, été remplacé par un message plus récent, ou expiré. Si vous devez encore répondre, utilisez le lien du dernier message reçu.",
		"error_title":      "Un problème est survenu",
		"e_unavailable":    "Le service est momentanément indisponible. Merci de réessayer dans quelques minutes.",
		"e_internal":       "Un problème est survenu de notre côté. Merci de réessayer plus tard.",
		"e_decision":       "Merci de choisir Accepter ou Refuser.",
		"e_forbidden":      "Ce formulaire ne peut être envoyé que depuis sa propre page. Merci d'ouvrir à nouveau le lien de votre message.",
		"e_too_large":      "Le formulaire envoyé est trop volumineux.",
		"e_media":          "Le formulaire n'a pas été envoyé au format attendu.",
		"e_method":         "Cette adresse n'accepte pas ce type de requête.",
		"not_found_title":  "Page introuvable",
		"not_found_text":   "Il n'y a pas de page à cette adresse.",
		"support":          "Aide, et pour vérifier que cette page est authentique\u00a0:",
		"code_link":        "Saisir le code de validation de votre dernier message",
		"code_title":       "Répondre avec votre code de validation",
		"code_intro":       "Chaque message que nous envoyons au sujet d'un changement de contacts contient un code de validation personnel (de la forme abcd-efgh-ijkl-…). Saisissez-le ici pour voir la demande et y répondre.",
		"code_label":       "Code de validation",
		"code_button":      "Continuer",
		"code_where":       "Majuscules, espaces et tirets sont sans importance. Le code figure dans le message, sous le lien\u00a0; le lien, lui, mène directement à la demande.",
		"code_invalid":     "Ce code n'est pas valide. Vérifiez que vous l'avez saisi en entier, tel qu'il figure dans le message.",
		"code_empty":       "Merci de saisir le code de validation de votre message.",
		"role_admin":       "contact administratif",
		"role_tech":        "contact technique",
		"role_billing":     "contact de facturation",
		"status_expired":   "expirée",
		"status_declined":  "refusée",
		"status_cancelled": "annulée",
		"status_failed":    "en échec",
		"status_applied":   "appliquée",
		"status_approved":  "approuvée",
		"status_pending":   "en attente",
	},
}

// tr returns the text of key in lang, formatted with args.
func tr(lang, key string, args ...any) string {
	s, ok := texts[lang][key]
	if !ok {
		s = texts["en"][key]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// roleName names a role in lang.
func roleName(lang string, r workflow.Role) string { return tr(lang, "role_"+string(r)) }

var months = map[string][12]string{
	"en": {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
	"fr": {"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"},
}

// formatTime writes an instant in its own time zone (callers give it in
// workflow.timezone) the way lang writes dates.
func formatTime(lang string, t time.Time) string {
	m := months[lang][t.Month()-1]
	if lang == "fr" {
		day := strconv.Itoa(t.Day())
		if t.Day() == 1 {
			day = "1er"
		}
		return fmt.Sprintf("%s %s %d à %s", day, m, t.Year(), t.Format("15:04 MST"))
	}
	return fmt.Sprintf("%d %s %d at %s", t.Day(), m, t.Year(), t.Format("15:04 MST"))
}

// acceptLanguage picks fr or en from an Accept-Language header, or "" when
// it names neither.
func acceptLanguage(header string) string {
	type choice struct {
		lang string
		q    float64
		pos  int
	}
	var choices []choice
	for i, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if base != "en" && base != "fr" {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if q > 0 {
			choices = append(choices, choice{base, q, i})
		}
	}
	sort.SliceStable(choices, func(i, j int) bool { return choices[i].q > choices[j].q })
	if len(choices) == 0 {
		return ""
	}
	return choices[0].lang
}

// French typography wants a no-break space before ":", ";", "?" and "!".
func init() {
	nbsp := strings.NewReplacer(" :", "\u00a0:", " ;", "\u00a0;", " ?", "\u00a0?", " !", "\u00a0!")
	for k, v := range texts["fr"] {
		texts["fr"][k] = nbsp.Replace(v)
	}
}
