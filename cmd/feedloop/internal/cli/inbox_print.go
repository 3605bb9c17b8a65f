package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// The human output of the inbox commands. Deadlines are shown in local
// time; a plan's due date is a calendar day and shown as one (its UTC day,
// as the customer reads it).

const (
	timeLayout     = "2006-01-02 15:04"
	timelineLayout = "2006-01-02 15:04:05"
	excerptRunes   = 60
)

// enumName turns STATUS_PLANNED into "planned".
func enumName(s fmt.Stringer, prefix string) string {
	n := strings.TrimPrefix(s.String(), prefix)
	if strings.HasSuffix(n, "UNSPECIFIED") {
		return "-"
	}
	return strings.ToLower(strings.ReplaceAll(n, "_", " "))
}

func statusName(s feedloopv1.Status) string     { return enumName(s, "STATUS_") }
func priorityName(p feedloopv1.Priority) string { return enumName(p, "PRIORITY_") }

func stamp(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(timeLayout)
}

func day(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.DateOnly)
}

// due is the next deadline of a share: the plan's day when it is the plan,
// else the time, marked when already passed.
func due(a *feedloopv1.AssignmentState, now time.Time) string {
	d := a.GetDueAt()
	if d == nil {
		return "-"
	}
	if a.GetStatus() == feedloopv1.Status_STATUS_PLANNED && a.GetPlannedDueAt() != nil && d.AsTime().Equal(a.GetPlannedDueAt().AsTime()) {
		return day(d)
	}
	s := stamp(d)
	if d.AsTime().Before(now) {
		s += " overdue"
	}
	return s
}

// oneLine shortens text to its first line, at most n runes.
func oneLine(text string, n int) string {
	text = strings.TrimSpace(text)
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = strings.TrimSpace(text[:i]) + " …"
	}
	if utf8.RuneCountInString(text) > n {
		r := []rune(text)
		text = strings.TrimSpace(string(r[:n-1])) + "…"
	}
	return text
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printList(w io.Writer, resp *feedloopv1.ListResponse, now time.Time) {
	if len(resp.GetItems()) == 0 {
		fmt.Fprintln(w, "no items")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tDUE\tPRIORITY\tTOPICS\tEXCERPT")
	for _, it := range resp.GetItems() {
		a := it.GetAssignment()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.GetFeedbackId(), statusName(a.GetStatus()), due(a, now),
			priorityName(a.GetPriority()), dash(strings.Join(it.GetTopics(), ",")), oneLine(it.GetExcerpt(), excerptRunes))
	}
	tw.Flush()
	if n := int64(len(resp.GetItems())); n < resp.GetTotal() {
		fmt.Fprintf(w, "%d of %d items", n, resp.GetTotal())
		if tok := resp.GetNextPageToken(); tok != "" {
			fmt.Fprintf(w, "; next page: --page-token %s (or --all)", tok)
		}
		fmt.Fprintln(w)
	}
}

// printChanged reports a team's share after an action.
func printChanged(w io.Writer, id string, a *feedloopv1.AssignmentState) {
	fmt.Fprintf(w, "%s: %s is now %s", id, a.GetTeam(), statusName(a.GetStatus()))
	switch a.GetStatus() {
	case feedloopv1.Status_STATUS_PLANNED:
		fmt.Fprintf(w, " (due %s)", day(a.GetPlannedDueAt()))
	case feedloopv1.Status_STATUS_REROUTED:
		fmt.Fprintf(w, " (to %s)", a.GetReroutedTo())
	case feedloopv1.Status_STATUS_ACKNOWLEDGED:
		if a.GetResolveBy() != nil {
			fmt.Fprintf(w, " (resolve by %s)", stamp(a.GetResolveBy()))
		}
	}
	fmt.Fprintln(w)
}

func printItem(w io.Writer, resp *feedloopv1.GetResponse) {
	it := resp.GetItem()
	fb, cl := it.GetFeedback(), it.GetClassification()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Feedback\t%s\n", it.GetFeedbackId())
	fmt.Fprintf(tw, "Received\t%s from %s%s via %s\n", stamp(it.GetReceivedAt()), dash(fb.GetSource()),
		prefixed(" #", fb.GetExternalId()), enumName(fb.GetChannel(), "CHANNEL_"))
	if c := fb.GetCustomer(); c != nil {
		fmt.Fprintf(tw, "Customer\t%s\n", customerLine(c))
	}
	if it.GetClosedAt() != nil {
		fmt.Fprintf(tw, "Closed\t%s\n", stamp(it.GetClosedAt()))
	}
	if fb.GetInReplyTo() != "" {
		fmt.Fprintf(tw, "In reply to\t%s\n", fb.GetInReplyTo())
	}
	if s := scoresLine(fb, cl, it.GetCsat()); s != "" {
		fmt.Fprintf(tw, "Scores\t%s\n", s)
	}
	fmt.Fprintf(tw, "Classified\t%s\n", classificationLine(cl))
	if p := strings.Join(nonEmpty(fb.GetProduct(), fb.GetArea()), " / "); p != "" {
		fmt.Fprintf(tw, "Product\t%s\n", p)
	}
	if fb.GetSubject() != "" {
		fmt.Fprintf(tw, "Subject\t%s\n", fb.GetSubject())
	}
	tw.Flush()
	text := cl.GetRedactedText()
	if text == "" {
		text = fb.GetText()
	}
	fmt.Fprintln(w)
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		fmt.Fprintln(w, "  "+l)
	}

	fmt.Fprintln(w, "\nTeams")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TEAM\tSTATUS\tPRIORITY\tACK BY\tRESOLVE BY\tPLANNED\tESCALATION\tROUTE")
	for _, a := range it.GetAssignments() {
		esc := "-"
		if a.GetEscalationLevel() > 0 {
			esc = fmt.Sprintf("level %d", a.GetEscalationLevel())
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.GetTeam(), statusName(a.GetStatus()), priorityName(a.GetPriority()),
			stamp(a.GetAcknowledgeBy()), stamp(a.GetResolveBy()), day(a.GetPlannedDueAt()), esc, dash(a.GetRoute()))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nTimeline")
	for _, e := range it.GetTimeline() {
		at := "-"
		if e.GetAt() != nil {
			at = e.GetAt().AsTime().Local().Format(timelineLayout)
		}
		fmt.Fprintf(w, "  %s  %s\n", at, timelineLine(e))
	}

	if len(resp.GetCustomerHistory()) > 0 {
		fmt.Fprintln(w, "\nThe customer's other feedback")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tRECEIVED\tTEAMS\tTOPICS\tEXCERPT")
		for _, h := range resp.GetCustomerHistory() {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", h.GetFeedbackId(), stamp(h.GetReceivedAt()), teamsLine(h),
				dash(strings.Join(h.GetTopics(), ",")), oneLine(h.GetExcerpt(), excerptRunes))
		}
		tw.Flush()
	}
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func customerLine(c *feedloopv1.Customer) string {
	var parts []string
	switch {
	case c.GetName() != "" && c.GetEmail() != "":
		parts = append(parts, fmt.Sprintf("%s <%s>", c.GetName(), c.GetEmail()))
	default:
		parts = append(parts, nonEmpty(c.GetName(), c.GetEmail())...)
	}
	if c.GetId() != "" {
		parts = append(parts, "id "+c.GetId())
	}
	if c.GetLocale() != "" {
		parts = append(parts, "locale "+c.GetLocale())
	}
	consent := "no consent to contact"
	if c.GetConsent().GetContact() {
		consent = "may be contacted"
		if c.GetConsent().GetSurvey() {
			consent += " and surveyed"
		}
	}
	return strings.Join(append(parts, consent), ", ")
}

func scoresLine(fb *feedloopv1.Feedback, cl *feedloopv1.Classification, csat int32) string {
	var parts []string
	if fb.Nps != nil {
		parts = append(parts, fmt.Sprintf("NPS %d (%s)", fb.GetNps(), enumName(cl.GetNpsBand(), "NPS_BAND_")))
	}
	if fb.Csat != nil {
		parts = append(parts, fmt.Sprintf("CSAT %d (%s)", fb.GetCsat(), enumName(cl.GetCsatBand(), "CSAT_BAND_")))
	}
	if fb.Ces != nil {
		parts = append(parts, fmt.Sprintf("CES %d (%s)", fb.GetCes(), enumName(cl.GetCesBand(), "CES_BAND_")))
	}
	if csat > 0 {
		parts = append(parts, fmt.Sprintf("survey answer CSAT %d", csat))
	}
	return strings.Join(parts, ", ")
}

func classificationLine(cl *feedloopv1.Classification) string {
	var topics []string
	for _, t := range cl.GetTopics() {
		topics = append(topics, fmt.Sprintf("%s %.0f%%", t.GetTopic(), 100*t.GetConfidence()))
	}
	parts := []string{"topics " + dash(strings.Join(topics, ", "))}
	parts = append(parts, "sentiment "+enumName(cl.GetSentiment(), "SENTIMENT_"), "urgency "+enumName(cl.GetUrgency(), "URGENCY_"))
	if cl.GetLanguage() != "" {
		parts = append(parts, "language "+cl.GetLanguage())
	}
	return strings.Join(parts, "; ")
}

func teamsLine(s *feedloopv1.ItemSummary) string {
	var parts []string
	if a := s.GetAssignment(); a != nil {
		parts = append(parts, a.GetTeam()+" "+statusName(a.GetStatus()))
	}
	for team, st := range s.GetOtherTeams() {
		parts = append(parts, team+" "+statusName(st))
	}
	return dash(strings.Join(parts, ", "))
}

// timelineLine says what one timeline entry records, in words.
func timelineLine(e *feedloopv1.TimelineEntry) string {
	var b strings.Builder
	team := ""
	if e.GetTeam() != "" {
		team = e.GetTeam() + ": "
	}
	switch e.GetKind() {
	case feedloopv1.TimelineKind_TIMELINE_KIND_RECEIVED:
		b.WriteString("received")
	case feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED:
		fmt.Fprintf(&b, "routed to %s", e.GetTarget())
	case feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED:
		if e.GetFrom() == e.GetTo() && e.GetTo() == feedloopv1.Status_STATUS_PLANNED {
			fmt.Fprintf(&b, "%splan date moved", team)
		} else {
			fmt.Fprintf(&b, "%s%s → %s", team, statusName(e.GetFrom()), statusName(e.GetTo()))
		}
		if e.GetTo() == feedloopv1.Status_STATUS_PLANNED && e.GetDueAt() != nil {
			fmt.Fprintf(&b, ", due %s", day(e.GetDueAt()))
		}
		if e.GetTarget() != "" {
			fmt.Fprintf(&b, " to %s", e.GetTarget())
		}
	case feedloopv1.TimelineKind_TIMELINE_KIND_ESCALATED:
		if e.GetLevel() == 0 {
			fmt.Fprintf(&b, "%sSLA warning: %s deadline %s", team, dash(e.GetReason()), stamp(e.GetDueAt()))
		} else {
			fmt.Fprintf(&b, "%sSLA breach (%s deadline %s): escalated to %s, level %d", team, dash(e.GetReason()), stamp(e.GetDueAt()), dash(e.GetTarget()), e.GetLevel())
		}
	case feedloopv1.TimelineKind_TIMELINE_KIND_COMMENT:
		fmt.Fprintf(&b, "%scomment", team)
	case feedloopv1.TimelineKind_TIMELINE_KIND_REPLIED:
		b.WriteString("customer answered")
		if e.GetLevel() > 0 {
			fmt.Fprintf(&b, " (CSAT %d)", e.GetLevel())
		}
	case feedloopv1.TimelineKind_TIMELINE_KIND_CLOSED:
		b.WriteString("closed: every team's share is resolved or declined")
	case feedloopv1.TimelineKind_TIMELINE_KIND_NOTIFIED:
		to := "customer"
		if e.GetActor() != "customer" {
			to = "team " + dash(e.GetTeam())
		}
		fmt.Fprintf(&b, "told the %s: %s", to, enumName(e.GetStep(), "STEP_"))
		if s := e.GetSubject(); s != "" {
			fmt.Fprintf(&b, " (email %q)", s) // its text: the console's item page
		}
		return b.String()
	default:
		b.WriteString(enumName(e.GetKind(), "TIMELINE_KIND_"))
	}
	if e.GetKind() != feedloopv1.TimelineKind_TIMELINE_KIND_ESCALATED && e.GetActor() != "" {
		fmt.Fprintf(&b, " by %s", e.GetActor())
	}
	if e.GetInternal() && e.GetKind() != feedloopv1.TimelineKind_TIMELINE_KIND_ESCALATED {
		b.WriteString(" [internal]")
	}
	if m := e.GetCustomerMessage(); m != "" {
		fmt.Fprintf(&b, "\n%21s  to the customer: %q", "", m)
	}
	if r := e.GetReason(); r != "" && e.GetKind() != feedloopv1.TimelineKind_TIMELINE_KIND_ESCALATED {
		fmt.Fprintf(&b, "\n%21s  reason: %q", "", r)
	}
	if t := e.GetText(); t != "" {
		fmt.Fprintf(&b, "\n%21s  %q", "", t)
	}
	return b.String()
}

func printStats(w io.Writer, s *feedloopv1.StatsResponse) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Team\t%s\n", s.GetTeam())
	fmt.Fprintf(tw, "Items\t%d routed, %d open, %d acknowledged, %d resolved, %d declined\n",
		s.GetRouted(), s.GetOpen(), s.GetAcknowledged(), s.GetResolved(), s.GetDeclined())
	fmt.Fprintf(tw, "Moved\t%d rerouted out, %d rerouted in, %d reopened\n", s.GetReroutedOut(), s.GetReroutedIn(), s.GetReopened())
	fmt.Fprintf(tw, "SLA\t%d warnings, %d breaches\n", s.GetSlaWarnings(), s.GetSlaBreaches())
	fmt.Fprintf(tw, "Mean time\tto acknowledge %s, to close %s\n", meanDuration(s.GetMeanTimeToAcknowledge().AsDuration(), s.GetAcknowledged()),
		meanDuration(s.GetMeanTimeToClose().AsDuration(), s.GetResolved()+s.GetDeclined()))
	if s.GetCsatResponses() > 0 {
		var counts []string
		for i, n := range s.GetCsatCounts() {
			counts = append(counts, fmt.Sprintf("%d:%d", i+1, n))
		}
		fmt.Fprintf(tw, "CSAT\t%.2f from %d answers (%s)\n", s.GetCsatMean(), s.GetCsatResponses(), strings.Join(counts, " "))
	} else {
		fmt.Fprintln(tw, "CSAT\tno answers yet")
	}
	fmt.Fprintf(tw, "Closed loop\t%.0f%% of closed items told the outcome\n", 100*s.GetClosedLoopRate())
	tw.Flush()
}

func meanDuration(d time.Duration, n int64) string {
	if n == 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}

// printRouted prints one newly routed item of watch on one line.
func printRouted(w io.Writer, r *feedloopv1.WatchResponse) {
	rt := r.GetRouted()
	a, fb := rt.GetAssignment(), rt.GetFeedback()
	var topics []string
	for _, t := range rt.GetClassification().GetTopics() {
		topics = append(topics, t.GetTopic())
	}
	fmt.Fprintf(w, "%s  %s  %s  %s  ack by %s  %s  %s\n", stamp(fb.GetReceivedAt()), fb.GetId(), a.GetTeam(), priorityName(a.GetPriority()),
		stamp(a.GetAcknowledgeBy()), dash(strings.Join(topics, ",")), oneLine(fb.GetText(), excerptRunes))
}

// printable writes what customers wrote to a team member's terminal with
// every control character but newline and tab replaced by U+FFFD, so
// feedback text cannot move the cursor, fake lines or reach the clipboard
// through escape sequences. (--json output is escaped by JSON itself.)
type printable struct{ w io.Writer }

func (p printable) Write(b []byte) (int, error) {
	clean := strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, string(b))
	if _, err := io.WriteString(p.w, clean); err != nil {
		return 0, err
	}
	return len(b), nil
}
