package httpport

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/feedloop/feedloop/pkg/locale"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// texts is everything the status page says to the customer, in one
// language. All translations live here, so a language is added in one place
// and the template holds no words of its own.
type texts struct {
	Lang string // the <html lang> tag: "en", "de", "fr"

	Title, Received, InProgress, Closed, Teams, Timeline string
	// Next says what happens next: a plan's date (team, date), or that we
	// write when there is news, or that every team is done.
	NextPlanned                  func(team, date string) string
	NextNews, NextDone, RateLink string

	PlannedFor func(date string) string
	Status     map[feedloopv1.Status]string
	TeamName   func(team string) string

	// Timeline phrases (the JSON form keeps its English "what").
	GotIt, Forwarded, Looking, Plan, Moved, Resolved, Declined, Reopened func(team string) string
	ClosedEntry                                                          string

	SurveyTitle, Question, Low, High, Comment, Send, Thanks string
	ErrNotOpen, ErrScore, ErrTooLong, ErrInvalid            string
	ErrAnswered                                             func(score int32) string

	// NotFound is the page of an unknown link.
	NotFound, NotFoundHelp string

	// at joins a date (locale.Date, in Lang) and its time.
	at func(date, clock string) string
}

var english = &texts{
	Lang: "en", Title: "Your feedback", Received: "Received", InProgress: "In progress", Closed: "Closed",
	Teams: "Teams", Timeline: "What happened",
	NextPlanned: func(team, date string) string {
		return "Our " + team + " team plans to have a solution by " + date + "."
	},
	NextNews:   "We will let you know as soon as there is news.",
	NextDone:   "Every team has finished with your feedback. Thank you for taking the time to write to us.",
	RateLink:   "Tell us how we did",
	PlannedFor: func(date string) string { return "planned for " + date },
	Status: map[feedloopv1.Status]string{
		feedloopv1.Status_STATUS_ROUTED: "Received", feedloopv1.Status_STATUS_ACKNOWLEDGED: "Looking into it",
		feedloopv1.Status_STATUS_PLANNED: "Planned", feedloopv1.Status_STATUS_RESOLVED: "Resolved",
		feedloopv1.Status_STATUS_DECLINED: "Declined", feedloopv1.Status_STATUS_REOPENED: "Reopened",
	},
	// A label starts a line: "Billing team".
	TeamName:    func(team string) string { return capitalise(team) + " team" },
	GotIt:       func(string) string { return "We received your feedback" },
	Forwarded:   func(team string) string { return "Forwarded to the " + team + " team" },
	Looking:     func(team string) string { return "The " + team + " team is looking into it" },
	Plan:        func(team string) string { return "The " + team + " team has a plan" },
	Moved:       func(team string) string { return "The " + team + " team moved the date" },
	Resolved:    func(team string) string { return "Resolved by the " + team + " team" },
	Declined:    func(team string) string { return "The " + team + " team will not act on it" },
	Reopened:    func(team string) string { return "Reopened for the " + team + " team" },
	ClosedEntry: "Closed",
	SurveyTitle: "How did we do?",
	Question:    "How satisfied are you with how we handled your feedback?",
	Low:         "very dissatisfied", High: "very satisfied",
	Comment: "Anything you would like to add? (optional)", Send: "Send", Thanks: "Thank you for your answer.",
	ErrNotOpen:   "The survey opens once every team has finished with your feedback.",
	ErrScore:     "Please choose a score from 1 to 5.",
	ErrTooLong:   "Your comment is too long. Please shorten it and send it again.",
	ErrInvalid:   "Your comment had characters we cannot accept, often invisible ones that come with copy and paste. We took them out: please check your comment and send it again.",
	ErrAnswered:  func(s int32) string { return fmt.Sprintf("You have already answered (%d of 5). Thank you!", s) },
	NotFound:     "We cannot find this page",
	NotFoundHelp: "The link may be incomplete. Please open it again from the email we sent you.",
	at:           func(date, clock string) string { return date + ", " + clock },
}

var german = &texts{
	Lang: "de", Title: "Ihr Feedback", Received: "Eingegangen am", InProgress: "In Bearbeitung", Closed: "Abgeschlossen",
	Teams: "Teams", Timeline: "Verlauf",
	NextPlanned: func(team, date string) string {
		return "Unser Team " + team + " plant, bis zum " + date + " eine Lösung für Sie zu haben."
	},
	NextNews:   "Wir melden uns, sobald es Neuigkeiten gibt.",
	NextDone:   "Alle Teams haben Ihr Feedback bearbeitet. Vielen Dank, dass Sie sich die Zeit genommen haben.",
	RateLink:   "Sagen Sie uns, wie zufrieden Sie sind",
	PlannedFor: func(date string) string { return "geplant bis zum " + date },
	Status: map[feedloopv1.Status]string{
		feedloopv1.Status_STATUS_ROUTED: "Eingegangen", feedloopv1.Status_STATUS_ACKNOWLEDGED: "Wird geprüft",
		feedloopv1.Status_STATUS_PLANNED: "Geplant", feedloopv1.Status_STATUS_RESOLVED: "Erledigt",
		feedloopv1.Status_STATUS_DECLINED: "Vorerst nicht umgesetzt", feedloopv1.Status_STATUS_REOPENED: "Wieder geöffnet",
	},
	TeamName:    func(team string) string { return "Team " + team },
	GotIt:       func(string) string { return "Wir haben Ihr Feedback erhalten" },
	Forwarded:   func(team string) string { return "An unser Team " + team + " weitergeleitet" },
	Looking:     func(team string) string { return "Unser Team " + team + " sieht sich Ihr Feedback an" },
	Plan:        func(team string) string { return "Unser Team " + team + " hat einen Plan" },
	Moved:       func(team string) string { return "Unser Team " + team + " hat den Termin geändert" },
	Resolved:    func(team string) string { return "Von unserem Team " + team + " erledigt" },
	Declined:    func(team string) string { return "Unser Team " + team + " kann es leider vorerst nicht umsetzen" },
	Reopened:    func(team string) string { return "Für unser Team " + team + " wieder geöffnet" },
	ClosedEntry: "Abgeschlossen",
	SurveyTitle: "Wie zufrieden sind Sie?",
	Question:    "Wie zufrieden sind Sie damit, wie wir Ihr Feedback bearbeitet haben?",
	Low:         "sehr unzufrieden", High: "sehr zufrieden",
	Comment: "Möchten Sie noch etwas hinzufügen? (optional)", Send: "Absenden", Thanks: "Vielen Dank für Ihre Antwort.",
	ErrNotOpen:   "Die Umfrage öffnet, sobald alle Teams Ihr Feedback bearbeitet haben.",
	ErrScore:     "Bitte wählen Sie eine Bewertung von 1 bis 5.",
	ErrTooLong:   "Ihr Kommentar ist zu lang. Bitte kürzen Sie ihn und senden Sie ihn erneut.",
	ErrInvalid:   "Ihr Kommentar enthielt Zeichen, die wir nicht annehmen können, oft unsichtbare, die beim Kopieren und Einfügen mitkommen. Wir haben sie entfernt: Bitte prüfen Sie Ihren Kommentar und senden Sie ihn erneut.",
	ErrAnswered:  func(s int32) string { return fmt.Sprintf("Sie haben bereits geantwortet (%d von 5). Vielen Dank!", s) },
	NotFound:     "Wir können diese Seite nicht finden",
	NotFoundHelp: "Der Link ist vielleicht unvollständig. Bitte öffnen Sie ihn erneut aus der E-Mail, die wir Ihnen geschickt haben.",
	at:           func(date, clock string) string { return date + ", " + clock },
}

var french = &texts{
	Lang: "fr", Title: "Votre avis", Received: "Reçu le", InProgress: "En cours", Closed: "Clôturé",
	Teams: "Équipes", Timeline: "Historique",
	NextPlanned: func(team, date string) string {
		return "Notre équipe " + team + " prévoit une solution d'ici le " + date + "."
	},
	NextNews:   "Nous vous tiendrons au courant dès qu'il y aura du nouveau.",
	NextDone:   "Toutes nos équipes ont traité votre avis. Merci d'avoir pris le temps de nous écrire.",
	RateLink:   "Dites-nous si vous êtes satisfait",
	PlannedFor: func(date string) string { return "prévu d'ici le " + date },
	Status: map[feedloopv1.Status]string{
		feedloopv1.Status_STATUS_ROUTED: "Reçu", feedloopv1.Status_STATUS_ACKNOWLEDGED: "En cours d'examen",
		feedloopv1.Status_STATUS_PLANNED: "Planifié", feedloopv1.Status_STATUS_RESOLVED: "Résolu",
		feedloopv1.Status_STATUS_DECLINED: "Sans suite pour le moment", feedloopv1.Status_STATUS_REOPENED: "Rouvert",
	},
	TeamName:  func(team string) string { return "Équipe " + team },
	GotIt:     func(string) string { return "Nous avons bien reçu votre avis" },
	Forwarded: func(team string) string { return "Transmis à notre équipe " + team },
	Looking:   func(team string) string { return "Notre équipe " + team + " étudie votre avis" },
	Plan:      func(team string) string { return "Notre équipe " + team + " a un plan" },
	Moved:     func(team string) string { return "Notre équipe " + team + " a changé la date" },
	Resolved:  func(team string) string { return "Traité par notre équipe " + team },
	Declined: func(team string) string {
		return "Notre équipe " + team + " ne pourra malheureusement pas y donner suite pour le moment"
	},
	Reopened:    func(team string) string { return "Rouvert pour notre équipe " + team },
	ClosedEntry: "Clôturé",
	SurveyTitle: "Êtes-vous satisfait ?",
	Question:    "Êtes-vous satisfait de la façon dont nous avons traité votre avis ?",
	Low:         "très insatisfait", High: "très satisfait",
	Comment: "Souhaitez-vous ajouter quelque chose ? (facultatif)", Send: "Envoyer", Thanks: "Merci pour votre réponse.",
	ErrNotOpen:   "Le questionnaire s'ouvre dès que toutes nos équipes ont traité votre avis.",
	ErrScore:     "Veuillez choisir une note de 1 à 5.",
	ErrTooLong:   "Votre commentaire est trop long. Veuillez le raccourcir et l'envoyer à nouveau.",
	ErrInvalid:   "Votre commentaire contenait des caractères que nous ne pouvons pas accepter, souvent invisibles et venus d'un copier-coller. Nous les avons retirés : veuillez vérifier votre commentaire et l'envoyer à nouveau.",
	ErrAnswered:  func(s int32) string { return fmt.Sprintf("Vous avez déjà répondu (%d sur 5). Merci !", s) },
	NotFound:     "Nous ne trouvons pas cette page",
	NotFoundHelp: "Le lien est peut-être incomplet. Veuillez l'ouvrir à nouveau depuis l'e-mail que nous vous avons envoyé.",
	at:           func(date, clock string) string { return date + " à " + clock },
}

// americanEnglish is English with the date as the notifier's en-US
// emails write it ("December 6, 2026", locale.Date), so the page matches
// the email.
var americanEnglish = func() *texts {
	t := *english
	t.Lang = "en-US"
	return &t
}()

var languages = map[string]*texts{"en": english, "en-us": americanEnglish, "de": german, "fr": french}

// all is every language, English first: the not-found page says its
// sentence in each, since it cannot know whose link it was.
var all = []*texts{english, german, french}

// textsFor picks the page's language from the customer's locale as the
// notifier picks its templates: the locale, then its base language
// ("de-CH" → de), then English.
func textsFor(tag string) *texts {
	for _, l := range locale.Candidates(tag) {
		if t, ok := languages[l]; ok {
			return t
		}
	}
	return english
}

// Date is t's UTC day as the language writes it: "6. Dezember 2026".
func (t *texts) Date(at time.Time) string {
	return locale.Date(t.Lang, at)
}

// DateTime is Date with the UTC time: "6 décembre 2026 à 03:35 UTC".
func (t *texts) DateTime(at time.Time) string {
	return t.at(t.Date(at), at.UTC().Format("15:04")+" UTC")
}

// capitalise upper-cases s's first letter.
func capitalise(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
