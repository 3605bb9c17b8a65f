package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// MaxQueryBytes bounds a List query.
const MaxQueryBytes = 256

// MaxQueryScan bounds the items one List query reads. A query reads the
// search document (searchDoc: about the size of the feedback's text) of
// every item of the team's index for the statuses asked, in index order,
// searchBatch at a time, to count every match; at this bound that is a few
// MB and tens of milliseconds of Redis time per call. The open items of a
// team stay far below it; a search of every closed item ever may not.
const MaxQueryScan = 20000

// searchBatch is how many search documents one MGET reads.
const searchBatch = 500

// ErrQueryTooBroad is returned (wrapped) when a query would have to read
// more than MaxQueryScan items.
var ErrQueryTooBroad = errors.New("readmodel: too many items to search")

// QueryWords splits a List query into the lower-cased words that must all
// occur; none for a blank query.
func QueryWords(q string) []string { return strings.Fields(strings.ToLower(q)) }

// searchDoc is what a List query matches of item, lower-cased, one field a
// line (a word has no blank, so it never matches across two fields): the
// text teams see (the projection keeps the redacted one), the subject, the
// topics and the customer's id, name and email. "" for an item routed to no
// team yet: no team lists it.
func searchDoc(item *feedloopv1.Item) string {
	if len(item.GetAssignments()) == 0 {
		return ""
	}
	fb := item.GetFeedback()
	c := fb.GetCustomer()
	fields := []string{fb.GetText(), fb.GetSubject(), c.GetId(), c.GetName(), c.GetEmail()}
	for _, t := range item.GetClassification().GetTopics() {
		fields = append(fields, t.GetTopic())
	}
	return strings.ToLower(strings.Join(fields, "\n"))
}

// matches reports whether doc holds every word.
func matches(doc string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(doc, w) {
			return false
		}
	}
	return true
}

// search returns, in list order, the ids among keys' members (the team's
// index sets for the statuses asked) whose search document holds every
// word. Items folded in before search documents existed have none: their
// document is made from the item itself, so no migration is needed.
func (s *Store) search(ctx context.Context, team string, keys []string, words []string) ([]string, error) {
	var ids []string
	if len(keys) == 1 {
		// One more than allowed, to tell "at the bound" from "beyond".
		var err error
		ids, err = s.rdb.ZRange(ctx, keys[0], 0, int64(s.queryScan)).Result()
		if err != nil {
			return nil, fmt.Errorf("readmodel: search %s: %w", team, err)
		}
	} else {
		cards := make([]*redis.IntCmd, len(keys))
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cards[i] = p.ZCard(ctx, k)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("readmodel: search %s: %w", team, err)
		}
		var n int64
		for _, c := range cards {
			n += c.Val()
		}
		if n > int64(s.queryScan) {
			return nil, fmt.Errorf("team %s has %d items with these statuses, a query reads at most %d: %w", team, n, s.queryScan, ErrQueryTooBroad)
		}
		var err error
		if ids, err = s.rdb.ZUnion(ctx, redis.ZStore{Keys: keys}).Result(); err != nil {
			return nil, fmt.Errorf("readmodel: search %s: %w", team, err)
		}
	}
	if len(ids) > s.queryScan {
		return nil, fmt.Errorf("team %s has more than %d items with these statuses, the most a query reads: %w", team, s.queryScan, ErrQueryTooBroad)
	}
	var out []string
	for start := 0; start < len(ids); start += searchBatch {
		batch := ids[start:min(start+searchBatch, len(ids))]
		keys := make([]string, len(batch))
		for i, id := range batch {
			keys[i] = s.searchKey(id)
		}
		docs, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("readmodel: search %s: %w", team, err)
		}
		hit := make([]bool, len(batch))
		var missing []string
		for i, d := range docs {
			if doc, ok := d.(string); ok {
				hit[i] = matches(doc, words)
			} else {
				missing = append(missing, batch[i])
			}
		}
		if len(missing) > 0 {
			items, err := s.items(ctx, missing)
			if err != nil {
				return nil, err
			}
			made := make(map[string]bool, len(items))
			for _, it := range items {
				made[it.GetFeedbackId()] = matches(searchDoc(it), words)
			}
			for i, id := range batch {
				if docs[i] == nil {
					hit[i] = made[id]
				}
			}
		}
		for i, id := range batch {
			if hit[i] {
				out = append(out, id)
			}
		}
	}
	return out, nil
}
