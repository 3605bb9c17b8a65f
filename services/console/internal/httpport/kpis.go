package httpport

import (
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/console/internal/kpichart"
)

const dayLayout = "2006-01-02"

type kpiDay struct {
	Day            time.Time
	Routed, Closed int64
	CSAT           string
	Breaches       int64
}

type csatBar struct {
	Score   int
	Count   int64
	Percent float64 // of the answers, for the bar's width
}

type kpiData struct {
	Since, Until string
	Presets      []preset
	Error        string
	Stats        *feedloopv1.StatsResponse
	TTA, TTC     string
	CSAT         []csatBar
	Days         []kpiDay
	Volume       kpichart.Chart
	Trend        kpichart.Chart
}

type preset struct {
	Label, URL string
	Current    bool
}

func (s *Server) kpis(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.auth(w, r)
	if !ok {
		return
	}
	today := s.Now().UTC().Truncate(24 * time.Hour)
	q := r.URL.Query()
	d := kpiData{Since: q.Get("since"), Until: q.Get("until")}
	if d.Since == "" && d.Until == "" {
		d.Since, d.Until = today.AddDate(0, 0, -29).Format(dayLayout), today.Format(dayLayout)
	}
	for _, n := range []int{7, 30, 90} {
		since := today.AddDate(0, 0, 1-n).Format(dayLayout)
		d.Presets = append(d.Presets, preset{Label: fmt.Sprintf("Last %d days", n),
			URL: "/kpis?since=" + since + "&until=" + today.Format(dayLayout), Current: since == d.Since && d.Until == today.Format(dayLayout)})
	}
	req := &feedloopv1.StatsRequest{}
	since, err1 := time.Parse(dayLayout, d.Since)
	until, err2 := time.Parse(dayLayout, d.Until)
	switch {
	case err1 != nil || err2 != nil:
		d.Error = "Dates must be days like 2026-05-01."
	case until.Before(since):
		d.Error = "The period must end on or after its first day."
	default:
		req.Since, req.Until = timestamppb.New(since), timestamppb.New(until)
	}
	if d.Error != "" {
		s.render(w, http.StatusBadRequest, "kpis", page{Title: "Team KPIs", Session: sess, Nav: "kpis", Data: d})
		return
	}
	ctx, cancel := s.call(r, sess)
	defer cancel()
	st, err := s.Team.Stats(ctx, req)
	if err != nil {
		s.callFailed(w, r, err)
		return
	}
	d.Stats = st
	d.TTA, d.TTC = humanDuration(st.GetMeanTimeToAcknowledge()), humanDuration(st.GetMeanTimeToClose())
	for i, n := range st.GetCsatCounts() {
		b := csatBar{Score: i + 1, Count: n}
		if st.GetCsatResponses() > 0 {
			b.Percent = float64(n) / float64(st.GetCsatResponses()) * 100
		}
		d.CSAT = append(d.CSAT, b)
	}
	var days []time.Time
	routed, closed, csat := kpichart.Series{Name: "Routed", Class: "routed"}, kpichart.Series{Name: "Closed", Class: "closed"}, kpichart.Series{Name: "CSAT", Class: "csat"}
	for _, day := range st.GetDays() {
		t := day.GetDay().AsTime()
		days = append(days, t)
		routed.Values = append(routed.Values, float64(day.GetRouted()))
		closed.Values = append(closed.Values, float64(day.GetClosed()))
		csat.Values = append(csat.Values, day.GetCsatMean())
		kd := kpiDay{Day: t, Routed: day.GetRouted(), Closed: day.GetClosed(), Breaches: day.GetSlaBreaches()}
		if day.GetCsatResponses() > 0 {
			kd.CSAT = fmt.Sprintf("%.1f (%d)", day.GetCsatMean(), day.GetCsatResponses())
		}
		d.Days = append(d.Days, kd)
	}
	d.Volume = kpichart.Bars(days, routed, closed)
	d.Trend = kpichart.Trend(days, csat, 1, 5)
	s.render(w, http.StatusOK, "kpis", page{Title: "Team KPIs", Session: sess, Nav: "kpis", Data: d})
}

// humanDuration is a mean time as people read it; "—" without data.
func humanDuration(d *durationpb.Duration) string {
	if d == nil {
		return "—"
	}
	v := d.AsDuration()
	switch {
	case v < time.Minute:
		return "under 1 min"
	case v < time.Hour:
		return fmt.Sprintf("%.0f min", v.Minutes())
	case v < 48*time.Hour:
		return fmt.Sprintf("%.1f h", v.Hours())
	}
	return fmt.Sprintf("%.1f days", v.Hours()/24)
}
