package readmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// DefaultHistoryLimit bounds CustomerHistory when no limit is given.
const DefaultHistoryLimit = 50

// excerptRunes is how long a summary's excerpt may be.
const excerptRunes = 120

// OpenStatuses are the statuses List shows when given none.
var OpenStatuses = []feedloopv1.Status{
	feedloopv1.Status_STATUS_ROUTED,
	feedloopv1.Status_STATUS_ACKNOWLEDGED,
	feedloopv1.Status_STATUS_PLANNED,
	feedloopv1.Status_STATUS_REOPENED,
}

// Item returns the item with id, or an error wrapping ErrNotFound.
func (s *Store) Item(ctx context.Context, id string) (*feedloopv1.Item, error) {
	var getCmd, guardCmd *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		getCmd = p.Get(ctx, s.itemKey(id))
		if s.guard != nil {
			guardCmd = s.guard.Get(ctx, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("readmodel: get item %s: %w", id, err)
	}
	if guardCmd != nil {
		// Checked in the same round trip: "not found" from a model being
		// rebuilt would be a lie.
		if err := s.guard.Check(guardCmd, "router read model"); err != nil {
			return nil, fmt.Errorf("readmodel: %w", err)
		}
	}
	blob, err := getCmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("item %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("readmodel: get item %s: %w", id, err)
	}
	return decodeItem(id, blob)
}

// ItemByToken returns the item whose status page token is token, or an
// error wrapping ErrNotFound.
func (s *Store) ItemByToken(ctx context.Context, token string) (*feedloopv1.Item, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if token == "" {
		return nil, fmt.Errorf("empty token: %w", ErrNotFound)
	}
	id, err := s.rdb.Get(ctx, s.tokenKey(token)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("status token: %w", ErrNotFound) // the token itself is a secret: not logged
	}
	if err != nil {
		return nil, fmt.Errorf("readmodel: get status token: %w", err)
	}
	return s.Item(ctx, id)
}

// List returns a page of team's items whose status is one of statuses (the
// open ones when empty) and that match query (see QueryWords and
// searchDoc; blank matches every item), ordered by due time, soonest
// first, items with nothing due last, then by feedback id; and how many
// match in all. offset < 0 counts as 0; limit <= 0 means to the end. A
// query over more than MaxQueryScan items fails with ErrQueryTooBroad.
func (s *Store) List(ctx context.Context, team string, statuses []feedloopv1.Status, query string, offset, limit int) ([]*feedloopv1.ItemSummary, int64, error) {
	if err := s.ready(ctx); err != nil {
		return nil, 0, err
	}
	offset = max(offset, 0)
	if words := QueryWords(query); len(words) > 0 {
		found, err := s.search(ctx, team, s.listKeys(team, statuses), words)
		if err != nil {
			return nil, 0, err
		}
		var page []string
		if offset < len(found) {
			page = found[offset:]
			if limit > 0 && limit < len(page) {
				page = page[:limit]
			}
		}
		out, err := s.summaries(ctx, page, team)
		return out, int64(len(found)), err
	}
	stop := int64(-1)
	if limit > 0 {
		stop = int64(offset + limit - 1)
	}
	var (
		ids   []string
		total int64
	)
	keys := s.listKeys(team, statuses)
	if len(keys) == 1 {
		// One sorted set already holds the order: read the page and the
		// count in one round trip, from the same state.
		var rng *redis.StringSliceCmd
		var card *redis.IntCmd
		if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			rng = p.ZRange(ctx, keys[0], int64(offset), stop)
			card = p.ZCard(ctx, keys[0])
			return nil
		}); err != nil {
			return nil, 0, fmt.Errorf("readmodel: list %s: %w", team, err)
		}
		ids, total = rng.Val(), card.Val()
	} else {
		// Several statuses: an item is in one status set per team, so the
		// union is a merge, sorted by score then member like one set.
		all, err := s.rdb.ZUnion(ctx, redis.ZStore{Keys: keys}).Result()
		if err != nil {
			return nil, 0, fmt.Errorf("readmodel: list %s: %w", team, err)
		}
		total = int64(len(all))
		if offset < len(all) {
			all = all[offset:]
			if limit > 0 && limit < len(all) {
				all = all[:limit]
			}
			ids = all
		}
	}
	out, err := s.summaries(ctx, ids, team)
	return out, total, err
}

// summaries are the list lines for team of the items with ids, in order.
func (s *Store) summaries(ctx context.Context, ids []string, team string) ([]*feedloopv1.ItemSummary, error) {
	items, err := s.items(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*feedloopv1.ItemSummary, 0, len(items))
	for _, it := range items {
		out = append(out, Summary(it, team))
	}
	return out, nil
}

// listKeys is the sorted set of the open items for no statuses (or exactly
// the open ones), else one set per distinct status.
func (s *Store) listKeys(team string, statuses []feedloopv1.Status) []string {
	sorted := slices.Clone(statuses)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	if len(sorted) == 0 || slices.Equal(sorted, OpenStatuses) {
		return []string{s.openKey(team)}
	}
	keys := make([]string, len(sorted))
	for i, st := range sorted {
		keys[i] = s.statusKey(team, st)
	}
	return keys
}

// CustomerHistory returns the other items of item's customer, newest first,
// at most limit (DefaultHistoryLimit when limit <= 0). Their summaries carry
// every team's status in OtherTeams and no assignment: the caller's team may
// have had no share in them.
func (s *Store) CustomerHistory(ctx context.Context, item *feedloopv1.Item, limit int) ([]*feedloopv1.ItemSummary, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	key := s.customerKey(item.GetFeedback())
	if key == "" {
		return nil, nil
	}
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	// One more than asked, in case item itself is among them.
	ids, err := s.rdb.ZRevRange(ctx, key, 0, int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("readmodel: customer history of %s: %w", item.GetFeedbackId(), err)
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == item.GetFeedbackId() })
	if len(ids) > limit {
		ids = ids[:limit]
	}
	items, err := s.items(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*feedloopv1.ItemSummary, 0, len(items))
	for _, it := range items {
		out = append(out, Summary(it, ""))
	}
	return out, nil
}

// items loads the items with ids, in order, skipping any that vanished
// since the index named them (a rebuild in progress).
func (s *Store) items(ctx context.Context, ids []string) ([]*feedloopv1.Item, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.itemKey(id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("readmodel: get items: %w", err)
	}
	out := make([]*feedloopv1.Item, 0, len(ids))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		it, err := decodeItem(ids[i], []byte(str))
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

func decodeItem(id string, blob []byte) (*feedloopv1.Item, error) {
	it := &feedloopv1.Item{}
	if err := proto.Unmarshal(blob, it); err != nil {
		return nil, fmt.Errorf("readmodel: decode item %s: %w", id, err)
	}
	return it, nil
}

// Summary is item's list line for team: the team's share, and the other
// teams' statuses. With team "" there is no share and OtherTeams holds every
// team's status.
func Summary(item *feedloopv1.Item, team string) *feedloopv1.ItemSummary {
	fb, c := item.GetFeedback(), item.GetClassification()
	sum := &feedloopv1.ItemSummary{
		FeedbackId: item.GetFeedbackId(),
		Sentiment:  sentimentLabel(item.GetClassification().GetSentiment()),
		Excerpt:    excerpt(item),
		ReceivedAt: item.GetReceivedAt(),
		Subject:    fb.GetSubject(),
		Customer:   listed(fb.GetCustomer()),
		Nps:        fb.Nps,
		NpsBand:    c.GetNpsBand(),
		Csat:       fb.Csat,
		CsatBand:   c.GetCsatBand(),
		Ces:        fb.Ces,
		CesBand:    c.GetCesBand(),
	}
	for _, t := range item.GetClassification().GetTopics() {
		sum.Topics = append(sum.Topics, t.GetTopic())
	}
	for _, a := range item.GetAssignments() {
		if a.GetTeam() == team {
			sum.Assignment = a
			continue
		}
		if sum.OtherTeams == nil {
			sum.OtherTeams = map[string]feedloopv1.Status{}
		}
		sum.OtherTeams[a.GetTeam()] = a.GetStatus()
	}
	return sum
}

// listed is the customer as a list line names them: who, not what they
// agreed to.
func listed(c *feedloopv1.Customer) *feedloopv1.Customer {
	if c == nil {
		return nil
	}
	return &feedloopv1.Customer{Id: c.GetId(), Name: c.GetName(), Email: c.GetEmail(), Locale: c.GetLocale()}
}

// sentimentLabel is "negative", "neutral", "positive" or "".
func sentimentLabel(s feedloopv1.Sentiment) string {
	if s == feedloopv1.Sentiment_SENTIMENT_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "SENTIMENT_"))
}

// excerpt is the first non-blank line of the redacted text, shortened.
func excerpt(item *feedloopv1.Item) string {
	text := item.GetClassification().GetRedactedText()
	if text == "" {
		text = item.GetFeedback().GetText()
	}
	line := ""
	for l := range strings.Lines(text) {
		if l = strings.TrimSpace(l); l != "" {
			line = l
			break
		}
	}
	if utf8.RuneCountInString(line) <= excerptRunes {
		return line
	}
	r := []rune(line)
	return strings.TrimSpace(string(r[:excerptRunes-1])) + "…"
}

// MaxStatsDays bounds a Stats period (about three years).
const MaxStatsDays = 3 * 366

// MaxSeriesDays is how many days Stats' daily series holds at most: the
// last ones of the period.
const MaxSeriesDays = 366

// Stats returns team's figures; a team nothing was routed to has zeros.
// Open is the count now, whatever the period.
//
// With a zero until they are the all-time figures, without a daily series.
// Otherwise the period runs from since's UTC day (zero: the team's first
// day with an event) to until's, included, and the figures are those of the
// events that occurred in it, summed from the daily counters; except that
// with a zero since and nothing after until they are the all-time counters,
// which also hold events from before daily counters existed. Days holds
// one entry per day of the period, at most the last MaxSeriesDays.
func (s *Store) Stats(ctx context.Context, team string, since, until time.Time) (*feedloopv1.StatsResponse, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var (
		kpi         *redis.MapStringStringCmd
		open        *redis.IntCmd
		first, past *redis.ZSliceCmd
	)
	until = utcDay(until)
	if !since.IsZero() {
		since = utcDay(since)
	}
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		kpi = p.HGetAll(ctx, s.kpiKey(team))
		open = p.ZCard(ctx, s.openKey(team))
		if !until.IsZero() {
			first = p.ZRangeWithScores(ctx, s.kpiDaysKey(team), 0, 0)
			past = p.ZRangeByScoreWithScores(ctx, s.kpiDaysKey(team), &redis.ZRangeBy{
				Min: "(" + strconv.FormatInt(dayNumber(until), 10), Max: "+inf", Count: 1,
			})
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("readmodel: stats of %s: %w", team, err)
	}
	r := &feedloopv1.StatsResponse{Team: team, Open: open.Val()}
	if until.IsZero() {
		fillStats(r, parseCounters(kpi.Val()))
		return r, nil
	}
	r.Until = timestamppb.New(until)
	from := since
	if since.IsZero() {
		if len(first.Val()) == 0 {
			// Nothing ever happened: no days to show.
			fillStats(r, parseCounters(kpi.Val()))
			return r, nil
		}
		from = time.Unix(int64(first.Val()[0].Score)*86400, 0).UTC()
	} else {
		r.Since = timestamppb.New(since)
	}
	seriesFrom := from
	if earliest := until.AddDate(0, 0, 1-MaxSeriesDays); seriesFrom.Before(earliest) {
		seriesFrom = earliest
	}
	allTime := since.IsZero() && len(past.Val()) == 0
	readFrom := from
	if allTime {
		readFrom = seriesFrom // the totals come from the all-time hash
	}
	days, err := s.days(ctx, team, readFrom, until)
	if err != nil {
		return nil, err
	}
	if allTime {
		fillStats(r, parseCounters(kpi.Val()))
	} else {
		sum := counters{}
		for _, c := range days {
			for f, n := range c {
				sum[f] += n
			}
		}
		fillStats(r, sum)
	}
	for d := seriesFrom; !d.After(until); d = d.AddDate(0, 0, 1) {
		r.Days = append(r.Days, statsDay(d, days[d.Format(time.DateOnly)]))
	}
	return r, nil
}

// counters are KPI fields and their values; absent is 0.
type counters map[string]int64

func parseCounters(h map[string]string) counters {
	c := make(counters, len(h))
	for f, v := range h {
		c[f], _ = strconv.ParseInt(v, 10, 64) // written by HINCRBY only
	}
	return c
}

// days reads the daily counters of team from one UTC day to another,
// included, keyed by date: only the days that have any (the kpidays index
// names them), so a long quiet period costs nothing.
func (s *Store) days(ctx context.Context, team string, from, until time.Time) (map[string]counters, error) {
	names, err := s.rdb.ZRangeByScore(ctx, s.kpiDaysKey(team), &redis.ZRangeBy{
		Min: strconv.FormatInt(dayNumber(from), 10), Max: strconv.FormatInt(dayNumber(until), 10),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("readmodel: stats of %s: days: %w", team, err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(names))
	if len(names) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, n := range names {
				cmds[i] = p.HGetAll(ctx, s.kpiDayKey(team, n))
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("readmodel: stats of %s: days: %w", team, err)
		}
	}
	out := make(map[string]counters, len(names))
	for i, n := range names {
		out[n] = parseCounters(cmds[i].Val())
	}
	return out, nil
}

// fillStats sets r's figures from c.
func fillStats(r *feedloopv1.StatsResponse, c counters) {
	r.Routed = c[KPIRouted]
	r.Acknowledged = c[KPIAcknowledged]
	r.Resolved = c[KPIResolved]
	r.Declined = c[KPIDeclined]
	r.ReroutedOut = c[KPIReroutedOut]
	r.ReroutedIn = c[KPIReroutedIn]
	r.Reopened = c[KPIReopened]
	r.SlaWarnings = c[KPISLAWarnings]
	r.SlaBreaches = c[KPISLABreaches]
	r.MeanTimeToAcknowledge = mean(c[KPIAckSeconds], c[KPIAckCount])
	r.MeanTimeToClose = mean(c[KPICloseSeconds], c[KPICloseCount])
	r.CsatCounts = make([]int64, 5)
	for i := range int32(5) {
		r.CsatCounts[i] = c[KPICSAT(i+1)]
	}
	r.CsatResponses, r.CsatMean = csat(c)
	if closed := c[KPIClosed]; closed > 0 {
		r.ClosedLoopRate = min(1, float64(c[KPIClosedTold])/float64(closed))
	}
	r.NpsPromoters, r.NpsPassives, r.NpsDetractors = c[KPINPSPromoters], c[KPINPSPassives], c[KPINPSDetractors]
	r.NpsResponses = r.NpsPromoters + r.NpsPassives + r.NpsDetractors
	if r.NpsResponses > 0 {
		r.Nps = 100 * float64(r.NpsPromoters-r.NpsDetractors) / float64(r.NpsResponses)
	}
	r.CesResponses = c[KPICESCount]
	if r.CesResponses > 0 {
		r.CesMean = float64(c[KPICESSum]) / float64(r.CesResponses)
	}
}

// csat is the number of survey answers in c and their mean (0 with none).
func csat(c counters) (int64, float64) {
	var n, sum int64
	for i := range int32(5) {
		k := c[KPICSAT(i+1)]
		n += k
		sum += k * int64(i+1)
	}
	if n == 0 {
		return 0, 0
	}
	return n, float64(sum) / float64(n)
}

// statsDay is one day of the series from its counters (nil: a quiet day).
func statsDay(day time.Time, c counters) *feedloopv1.StatsDay {
	d := &feedloopv1.StatsDay{
		Day:                   timestamppb.New(day),
		Routed:                c[KPIRouted],
		Closed:                c[KPIClosed],
		MeanTimeToAcknowledge: mean(c[KPIAckSeconds], c[KPIAckCount]),
		MeanTimeToClose:       mean(c[KPICloseSeconds], c[KPICloseCount]),
		SlaBreaches:           c[KPISLABreaches],
		ReroutedOut:           c[KPIReroutedOut],
	}
	d.CsatResponses, d.CsatMean = csat(c)
	return d
}

// mean is sum/count seconds as a Duration, nil with no terms.
func mean(sum, count int64) *durationpb.Duration {
	if count == 0 {
		return nil
	}
	return durationpb.New(time.Duration(sum) * time.Second / time.Duration(count))
}

// OpenCounts returns how many open items each of teams has.
func (s *Store) OpenCounts(ctx context.Context, teams []string) (map[string]int64, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	p := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(teams))
	for i, team := range teams {
		cmds[i] = p.ZCard(ctx, s.openKey(team))
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("readmodel: open counts: %w", err)
	}
	out := make(map[string]int64, len(teams))
	for i, team := range teams {
		out[team] = cmds[i].Val()
	}
	return out, nil
}
