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
	sum := &feedloopv1.ItemSummary{
		FeedbackId: item.GetFeedbackId(),
		Sentiment:  sentimentLabel(item.GetClassification().GetSentiment()),
		Excerpt:    excerpt(item),
		ReceivedAt: item.GetReceivedAt(),
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

// Stats returns team's figures; a team nothing was routed to has zeros.
func (s *Store) Stats(ctx context.Context, team string) (*feedloopv1.StatsResponse, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var kpi *redis.MapStringStringCmd
	var open *redis.IntCmd
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		kpi = p.HGetAll(ctx, s.kpiKey(team))
		open = p.ZCard(ctx, s.openKey(team))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("readmodel: stats of %s: %w", team, err)
	}
	c := func(f string) int64 {
		n, _ := strconv.ParseInt(kpi.Val()[f], 10, 64) // absent is 0
		return n
	}
	r := &feedloopv1.StatsResponse{
		Team:                  team,
		Routed:                c(KPIRouted),
		Open:                  open.Val(),
		Acknowledged:          c(KPIAcknowledged),
		Resolved:              c(KPIResolved),
		Declined:              c(KPIDeclined),
		ReroutedOut:           c(KPIReroutedOut),
		ReroutedIn:            c(KPIReroutedIn),
		Reopened:              c(KPIReopened),
		SlaWarnings:           c(KPISLAWarnings),
		SlaBreaches:           c(KPISLABreaches),
		MeanTimeToAcknowledge: mean(c(KPIAckSeconds), c(KPIAckCount)),
		MeanTimeToClose:       mean(c(KPICloseSeconds), c(KPICloseCount)),
		CsatCounts:            make([]int64, 5),
	}
	var sum int64
	for i := range int32(5) {
		n := c(KPICSAT(i + 1))
		r.CsatCounts[i] = n
		r.CsatResponses += n
		sum += n * int64(i+1)
	}
	if r.CsatResponses > 0 {
		r.CsatMean = float64(sum) / float64(r.CsatResponses)
	}
	if closed := c(KPIClosed); closed > 0 {
		r.ClosedLoopRate = min(1, float64(c(KPIClosedTold))/float64(closed))
	}
	return r, nil
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
