package httpport

import (
	"fmt"
	"html/template"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/console/internal/kpichart"
)

var funcs = template.FuncMap{
	"linkify": linkify,
	"pct":     func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"dec":     func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"when":    when,
	"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"lower":   strings.ToLower,
	// described is the description of an evidence feature that is not
	// words of the text (in parentheses, Evidence.feature), "" for words:
	// quoting it would tell a clerk the customer wrote it.
	"described": func(feature string) string {
		if len(feature) > 2 && strings.HasPrefix(feature, "(") && strings.HasSuffix(feature, ")") {
			return feature[1 : len(feature)-1]
		}
		return ""
	},
	// refusal is the error shown beside the form of action.
	"refusal": func(f Form, action string) string {
		if f.Action != action {
			return ""
		}
		return f.Error
	},
	// field reports whether the router refused field of action's form.
	"field": func(f Form, action, name string) bool {
		_, bad := f.Fields[name]
		return f.Action == action && bad
	},
	// chart hands a laid-out chart and its text alternative to the
	// "chart" template; ids come from the title.
	"chart": func(c kpichart.Chart, title, desc string) any {
		return struct {
			C               kpichart.Chart
			ID, Title, Desc string
		}{c, "chart-" + strings.ToLower(strings.Join(strings.Fields(title), "-")), title, desc}
	},
	"previewFor": func(p *Preview, action string) *Preview {
		if p == nil || p.Action != action {
			return nil
		}
		return p
	},
}

// statusLabel is how people name a status.
func statusLabel(s feedloopv1.Status) string {
	switch s {
	case feedloopv1.Status_STATUS_ROUTED:
		return "New"
	case feedloopv1.Status_STATUS_ACKNOWLEDGED:
		return "Acknowledged"
	case feedloopv1.Status_STATUS_PLANNED:
		return "Planned"
	case feedloopv1.Status_STATUS_RESOLVED:
		return "Resolved"
	case feedloopv1.Status_STATUS_DECLINED:
		return "Declined"
	case feedloopv1.Status_STATUS_REROUTED:
		return "Rerouted"
	case feedloopv1.Status_STATUS_REOPENED:
		return "Reopened"
	}
	return "Unknown"
}

// enumWord turns PRIORITY_HIGH into "high".
func enumWord(s, prefix string) string {
	w := strings.ToLower(strings.TrimPrefix(s, prefix))
	if w == "unspecified" {
		return ""
	}
	return strings.ReplaceAll(w, "_", " ")
}

func open(s feedloopv1.Status) bool {
	switch s {
	case feedloopv1.Status_STATUS_ROUTED, feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_PLANNED, feedloopv1.Status_STATUS_REOPENED:
		return true
	}
	return false
}

// bands names the score bands of a classification, e.g. "NPS detractor".
func bands(c *feedloopv1.Classification, fb *feedloopv1.Feedback) []string {
	var out []string
	if b := enumWord(c.GetNpsBand().String(), "NPS_BAND_"); b != "" {
		out = append(out, fmt.Sprintf("NPS %d · %s", fb.GetNps(), b))
	}
	if b := enumWord(c.GetCsatBand().String(), "CSAT_BAND_"); b != "" {
		out = append(out, fmt.Sprintf("CSAT %d · %s", fb.GetCsat(), b))
	}
	if b := enumWord(c.GetCesBand().String(), "CES_BAND_"); b != "" {
		out = append(out, fmt.Sprintf("CES %d · %s", fb.GetCes(), b))
	}
	return out
}

// customerName is how the customer is shown to teams.
func customerName(c *feedloopv1.Customer) string {
	switch {
	case c.GetName() != "" && c.GetEmail() != "":
		return c.GetName() + " <" + c.GetEmail() + ">"
	case c.GetName() != "":
		return c.GetName()
	case c.GetEmail() != "":
		return c.GetEmail()
	case c.GetId() != "":
		return c.GetId()
	}
	return "Unknown customer"
}

// Due is an SLA countdown.
type Due struct {
	At      time.Time
	Text    string // "due in 3 h", "overdue by 2 d"
	Overdue bool
	Set     bool
}

func due(ts *timestamppb.Timestamp, now time.Time) Due {
	if ts == nil || ts.AsTime().IsZero() {
		return Due{}
	}
	at := ts.AsTime()
	d := at.Sub(now)
	if d < 0 {
		return Due{At: at, Text: "overdue by " + span(-d), Overdue: true, Set: true}
	}
	return Due{At: at, Text: "due in " + span(d), Set: true}
}

// span is a duration as people say it: 45 min, 3 h, 2 d.
func span(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d min", max(1, int(math.Round(d.Minutes()))))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(math.Round(d.Hours())))
	default:
		return fmt.Sprintf("%d d", int(math.Round(d.Hours()/24)))
	}
}

// when formats a time for people, in UTC (teams span time zones; the page
// says UTC).
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

var urlRE = regexp.MustCompile(`https?://[^\s<>"']+`)

// linkify escapes s and makes its http(s) URLs links.
func linkify(s string) template.HTML {
	var b strings.Builder
	last := 0
	for _, m := range urlRE.FindAllStringIndex(s, -1) {
		b.WriteString(template.HTMLEscapeString(s[last:m[0]]))
		u := strings.TrimRight(s[m[0]:m[1]], ".,;:!?)")
		esc := template.HTMLEscapeString(u)
		fmt.Fprintf(&b, `<a href="%s" target="_blank" rel="noopener noreferrer">%s</a>`, esc, esc)
		b.WriteString(template.HTMLEscapeString(s[m[0]+len(u) : m[1]]))
		last = m[1]
	}
	b.WriteString(template.HTMLEscapeString(s[last:]))
	return template.HTML(b.String()) //nolint:gosec // every part is escaped above
}

func sortStrings(s []string) { sort.Strings(s) }
