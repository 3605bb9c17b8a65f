// Package preview renders what the notifier would send a customer because of
// one lifecycle event, without sending it: the console shows a team exactly
// the message its action will cause. It is the notifier's public contract
// for that (a service may import another's public package, never its
// internals), and it goes through the very code the notifier runs —
// steps.Plan (steps, consent, data) and templates.Set.Render (locale
// fallback) — so a preview cannot drift from the message.
package preview

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/text/language"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/internal/templates"
)

// Message is one customer message as the notifier would render it.
type Message struct {
	// Step is the step's template name, e.g. "planned".
	Step string
	// Locale is the template locale used, "" for the default templates.
	Locale string
	// Language is the base language the message is written in ("de"), as
	// its HTML's <html lang> declares it: the template says what language
	// its words are, which its directory's name need not (the default
	// templates have none). "" when the HTML declares none.
	Language string
	Subject  string
	Text     string
	HTML     string
}

// Result is what an event makes the notifier tell the customer.
type Result struct {
	// Messages are the customer messages, empty when the customer gets none.
	Messages []Message
	// Skipped says why a customer step is not sent (e.g. "customer gave
	// no contact consent").
	Skipped []string
}

// Renderer renders previews with one template directory.
type Renderer struct{ set *templates.Set }

// Load reads and validates the notifier's templates in dir, as the notifier
// does at start.
func Load(dir string) (*Renderer, error) {
	samples := map[string]any{}
	for _, name := range steps.Names() {
		samples[name] = steps.Sample(name)
	}
	set, err := templates.Load(dir, samples)
	if err != nil {
		return nil, fmt.Errorf("preview: %w", err)
	}
	return &Renderer{set: set}, nil
}

// MaskedToken stands for the customer's status token in what teams read of
// a customer message: previews render with it, and the Notified record's
// copy of a sent message has the real token replaced by it.
const MaskedToken = steps.MaskedToken

// ErrUnsupported is returned for an event the preview does not render.
var ErrUnsupported = errors.New("preview: only StatusChanged events are previewed")

// Render renders the customer messages ev (a StatusChanged event, as the
// router publishes it on feedback.updated.<team>) causes; statusURL is the
// base of status links (the notifier's NOTIFIER_STATUS_URL), "" for none.
func (r *Renderer) Render(ev *feedloopv1.Event, statusURL string) (Result, error) {
	sc := ev.GetStatusChanged()
	if sc == nil {
		return Result{}, ErrUnsupported
	}
	dec, err := steps.Plan(bus.UpdatedSubject(sc.GetTeam()), ev, steps.Options{StatusURL: statusURL})
	if err != nil {
		return Result{}, fmt.Errorf("preview: %w", err)
	}
	var res Result
	for _, n := range dec.Notices {
		if n.Audience != steps.AudienceCustomer {
			continue
		}
		out, err := r.set.Render(n.Name, n.Locale, n.Data)
		if err != nil {
			return Result{}, fmt.Errorf("preview: %w", err)
		}
		res.Messages = append(res.Messages, Message{Step: n.Name, Locale: out.Locale, Language: htmlLanguage(out.HTML),
			Subject: out.Subject, Text: out.Text, HTML: out.HTML})
	}
	for _, s := range dec.Skipped {
		if s.Step.Audience == steps.AudienceCustomer {
			res.Skipped = append(res.Skipped, s.Reason)
		}
	}
	return res, nil
}

// htmlLanguage is the base language of doc's <html lang> ("de-CH" → "de"),
// "" when there is none or it is not a language tag.
func htmlLanguage(doc string) string {
	z := html.NewTokenizer(strings.NewReader(doc))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			if string(name) != "html" {
				return "" // <html> comes first when it is there at all
			}
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				if string(k) != "lang" {
					continue
				}
				tag, err := language.Parse(strings.TrimSpace(string(v)))
				if err != nil {
					return ""
				}
				base, _ := tag.Base()
				return base.String()
			}
			return ""
		}
	}
}
