// Package readmodel keeps the router's read model in Redis: every feedback
// item as the projection folds it (state and timeline), the indexes the
// team API serves (per-team items by due time and by status, per-customer
// history, status tokens) and the teams' KPI counters.
//
// It is derived state: Apply folds one event in, idempotently by event id,
// and Rebuild throws every read-model key away and replays the FEEDBACK
// stream. All keys start with a prefix (default "rm:") because intake and
// notifier keep their own keys in the same Redis, and a rebuild must not
// touch them.
//
// Apply updates an item, its indexes and the counters in one optimistic
// transaction (WATCH/MULTI), so the keys live on one Redis: a standalone
// server, or a primary behind Sentinel — not Redis Cluster.
//
// # Keys
//
//	<p>item:<id>              string  the Item, protobuf (deterministic)
//	<p>applied:<id>           set     ids of the events folded into the item
//	<p>token:<token>          string  status token → feedback id
//	<p>open:<team>            zset    the team's open items, score = due unix seconds (+inf when none)
//	<p>status:<team>:<n>      zset    the team's items whose status number is n, same score
//	<p>customer:id:<id>       zset    a customer's items, score = received unix time
//	<p>customer:email:<addr>  zset    the same for customers known only by (lower-cased) email
//	<p>kpi:<team>             hash    the team's counters (fields named by the KPI* constants)
//	<p>kpid:<team>:<day>      hash    the same counters for the events that occurred on one UTC day (YYYY-MM-DD)
//	<p>kpidays:<team>         zset    the days that have a kpid hash, score = days since 1970-01-01
//	<p>search:<id>            string  what List's query matches of a routed item, lower-cased (searchDoc)
//	<p>trace:<id>             string  the W3C traceparent of the item's own trace (team actions link to it)
package readmodel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/redisx"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/projection"
)

// DefaultPrefix starts every read-model key.
const DefaultPrefix = "rm:"

// ErrNotFound is returned (wrapped) for an unknown item or token.
var ErrNotFound = errors.New("readmodel: not found")

// maxAttempts bounds the retries of an Apply whose item changed under it;
// only events of the same item compete, so a few suffice.
const maxAttempts = 50

// Store is the read model on one Redis.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	log     *slog.Logger
	applied []appliedFunc
	// guard, when set, is checked by every write in its own transaction
	// and by every read: the read model is complete (rebuild.Gate.Live),
	// or the caller is the rebuild that holds the lock.
	guard *rebuild.Guard
	// queryScan is MaxQueryScan but for tests.
	queryScan int
}

// AppliedFunc is told of every event Apply folded in, once per event id
// whichever caller applied it first (the projector, the routing consumer or
// the team API): the event, the item after it (nil for the events a
// WithAppliedReading func said it does not read), and the KPI increments
// per team it caused. The closed-loop metrics count from it.
type AppliedFunc func(ctx context.Context, ev *feedloopv1.Event, item *feedloopv1.Item, kpi map[string]map[string]int64)

// appliedFunc is a func told of applied events, and the events it reads
// the item of (nil: all).
type appliedFunc struct {
	f         AppliedFunc
	readsItem func(*feedloopv1.Event) bool
}

// Option configures a Store.
type Option func(*Store)

// WithPrefix sets the key prefix (default DefaultPrefix). It must be
// non-empty: a rebuild deletes every key that starts with it.
func WithPrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithApplied adds f to the funcs told of each event applied.
func WithApplied(f AppliedFunc) Option {
	return func(s *Store) { s.applied = append(s.applied, appliedFunc{f: f}) }
}

// WithAppliedReading is WithApplied for a func that reads the item only
// for the events readsItem accepts: it is told a nil item of the others.
// An event with more of its item's events after it in a batch needs a copy
// of the item as it left it, and this spares the copy the func would not
// read (the classified event applied with its routed events, say).
func WithAppliedReading(f AppliedFunc, readsItem func(*feedloopv1.Event) bool) Option {
	return func(s *Store) { s.applied = append(s.applied, appliedFunc{f: f, readsItem: readsItem}) }
}

// readsItem reports whether some func told of ev reads its item.
func (s *Store) readsItem(ev *feedloopv1.Event) bool {
	for _, a := range s.applied {
		if a.readsItem == nil || a.readsItem(ev) {
			return true
		}
	}
	return false
}

// WithGuard makes every write check g atomically with itself and every read
// check it first: while g does not hold, they fail with an error wrapping
// rebuild.ErrNotReady (the team API's Unavailable). See package rebuild.
func WithGuard(g rebuild.Guard) Option { return func(s *Store) { s.guard = &g } }

// Fenced is a copy of s whose writes check g instead (a rebuild's fence).
func (s *Store) Fenced(g rebuild.Guard) *Store {
	c := *s
	c.guard = &g
	return &c
}

// ready checks the guard before a read.
func (s *Store) ready(ctx context.Context) error {
	if s.guard == nil {
		return nil
	}
	if err := s.guard.Check(s.guard.Get(ctx, s.rdb), "router read model"); err != nil {
		return fmt.Errorf("readmodel: %w", err)
	}
	return nil
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	s := &Store{rdb: rdb, prefix: DefaultPrefix, log: slog.Default(), queryScan: MaxQueryScan}
	for _, o := range opts {
		o(s)
	}
	if rdb == nil {
		return nil, errors.New("readmodel: redis client is required")
	}
	if s.prefix == "" {
		return nil, errors.New("readmodel: key prefix must not be empty (a rebuild deletes every key under it)")
	}
	return s, nil
}

// Prefix is the prefix of every key the Store owns.
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) itemKey(id string) string      { return s.prefix + "item:" + id }
func (s *Store) appliedKey(id string) string   { return s.prefix + "applied:" + id }
func (s *Store) tokenKey(tok string) string    { return s.prefix + "token:" + tok }
func (s *Store) openKey(team string) string    { return s.prefix + "open:" + team }
func (s *Store) kpiKey(team string) string     { return s.prefix + "kpi:" + team }
func (s *Store) searchKey(id string) string    { return s.prefix + "search:" + id }
func (s *Store) kpiDaysKey(team string) string { return s.prefix + "kpidays:" + team }

// kpiDayKey is team's counters of one day, date as YYYY-MM-DD.
func (s *Store) kpiDayKey(team, date string) string {
	return s.prefix + "kpid:" + team + ":" + date
}

func (s *Store) statusKey(team string, st feedloopv1.Status) string {
	return s.prefix + "status:" + team + ":" + strconv.Itoa(int(st))
}

// customerKey is the key of the customer's history: by customer id, else by
// lower-cased email; "" when the item names no customer.
func (s *Store) customerKey(fb *feedloopv1.Feedback) string {
	c := fb.GetCustomer()
	if c.GetId() != "" {
		return s.prefix + "customer:id:" + c.GetId()
	}
	if e := strings.ToLower(strings.TrimSpace(c.GetEmail())); e != "" {
		return s.prefix + "customer:email:" + e
	}
	return ""
}

// Apply folds ev into its item with the projection, updates the indexes and
// the KPI counters, all in one transaction, and reports whether it did. An
// event already applied to the item, or one the projection ignores, changes
// nothing and returns false. Events of one item may be applied
// concurrently: a transaction that lost the race is retried.
func (s *Store) Apply(ctx context.Context, ev *feedloopv1.Event) (bool, error) {
	applied, err := s.ApplyBatch(ctx, []*feedloopv1.Event{ev})
	if err != nil {
		return false, err
	}
	return applied[0], nil
}

// ApplyBatch applies evs, in order, as Apply would one at a time, but in one
// transaction: one WATCH of every item they touch, one round trip for the
// reads, one MULTI/EXEC. It reports for each event whether it was applied.
// A batch that lost a race is retried whole; one that keeps losing is split
// into single events, so a busy item does not hold the others back.
func (s *Store) ApplyBatch(ctx context.Context, evs []*feedloopv1.Event) ([]bool, error) {
	return s.applyBatch(ctx, evs, nil)
}

// applyBatch is ApplyBatch that also sets traces (feedback id →
// traceparent, see ApplyTraced) with SETNX.
func (s *Store) applyBatch(ctx context.Context, evs []*feedloopv1.Event, traces map[string]string) ([]bool, error) {
	out := make([]bool, len(evs))
	var ids []string // distinct items, in first-seen order
	seen := map[string]bool{}
	for _, ev := range evs {
		if id := ev.GetFeedbackId(); id != "" && ev.GetId() != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		if len(traces) > 0 {
			return out, s.keepTraces(ctx, traces)
		}
		return out, nil
	}
	// Only the item keys are watched: every write to an applied set is in
	// the same MULTI as a SET of its item (applyTx), so a transaction that
	// changed the set since our reads changed the item too and fails ours.
	// Half the keys, and WATCH's cost in Redis grows with them.
	watch := make([]string, 0, len(ids)+1)
	for _, id := range ids {
		watch = append(watch, s.itemKey(id))
	}
	if s.guard != nil {
		watch = append(watch, s.guard.Key)
	}
	for attempt := 1; ; attempt++ {
		var changes []*change
		// applyTx sends the WATCH with its reads.
		err := redisx.Watch(ctx, s.rdb, func(tx *redis.Tx) (exec bool, err error) {
			changes, exec, err = s.applyTx(ctx, tx, watch, evs, ids, traces)
			return exec, err
		})
		switch {
		case err == nil:
			for i, ch := range changes {
				if ch != nil {
					out[i] = true
					for _, a := range s.applied {
						item := ch.item
						if a.readsItem != nil && !a.readsItem(evs[i]) {
							item = nil
						}
						a.f(ctx, evs[i], item, ch.kpi)
					}
				}
			}
			return out, nil
		case !errors.Is(err, redis.TxFailedErr):
			return nil, fmt.Errorf("readmodel: apply %s: %w", describe(evs), err)
		case len(evs) > 1 && attempt == splitAfter:
			rest := maps.Clone(traces) // those of items no event here names
			for i, ev := range evs {
				var one map[string]string
				if tp, ok := traces[ev.GetFeedbackId()]; ok {
					one = map[string]string{ev.GetFeedbackId(): tp}
					delete(rest, ev.GetFeedbackId())
				}
				applied, err := s.applyBatch(ctx, evs[i:i+1], one)
				if err != nil {
					return nil, err
				}
				out[i] = applied[0]
			}
			if len(rest) > 0 {
				return out, s.keepTraces(ctx, rest)
			}
			return out, nil
		case attempt == maxAttempts:
			return nil, fmt.Errorf("readmodel: apply %s: gave up after %d conflicts: %w", describe(evs), attempt, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("readmodel: apply %s: %w", describe(evs), ctx.Err())
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

// splitAfter is how many conflicts a batch takes before it is split.
const splitAfter = 3

// describe names the events of a batch in errors.
func describe(evs []*feedloopv1.Event) string {
	if len(evs) == 1 {
		return fmt.Sprintf("event %s to %s", evs[0].GetId(), evs[0].GetFeedbackId())
	}
	return fmt.Sprintf("%d events", len(evs))
}

// change is what one applied event did.
type change struct {
	item *feedloopv1.Item
	kpi  map[string]map[string]int64
}

// applyTx folds evs in within tx (ids are their distinct items) and sets
// traces; a nil change means that event changed nothing. watch is the
// keys to WATCH with the reads; exec reports whether an EXEC was sent
// (which ends the WATCH).
func (s *Store) applyTx(ctx context.Context, tx *redis.Tx, watch []string, evs []*feedloopv1.Event, ids []string, traces map[string]string) (changes []*change, exec bool, err error) {
	// One round trip for the WATCH and the reads (before MULTI), the guard
	// among them (redisx.QueueWatch): a flush or a rebuild starting before
	// EXEC fails the transaction, so a write never lands on a missing or
	// partial model.
	// One SMISMEMBER per item asks about all of its events in the batch.
	asked := make(map[string][]any, len(ids)) // feedback id → event ids
	at := make([]int, len(evs))               // evs[i]'s place in its item's question
	for i, ev := range evs {
		if id := ev.GetFeedbackId(); id != "" && ev.GetId() != "" {
			at[i] = len(asked[id])
			asked[id] = append(asked[id], ev.GetId())
		}
	}
	memberCmds := make(map[string]*redis.BoolSliceCmd, len(ids))
	getCmds := make(map[string]*redis.StringCmd, len(ids))
	var guardCmd *redis.StringCmd
	var watchCmd *redis.Cmd
	_, err = tx.Pipelined(ctx, func(p redis.Pipeliner) error {
		watchCmd = redisx.QueueWatch(ctx, p, watch...)
		for _, id := range ids {
			memberCmds[id] = p.SMIsMember(ctx, s.appliedKey(id), asked[id]...)
			getCmds[id] = p.Get(ctx, s.itemKey(id))
		}
		if s.guard != nil {
			guardCmd = s.guard.Get(ctx, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, err
	}
	if err := watchCmd.Err(); err != nil {
		return nil, false, err
	}
	if guardCmd != nil {
		if err := s.guard.Check(guardCmd, "router read model"); err != nil {
			return nil, false, err
		}
	}
	// seen[i]: evs[i] was applied before this batch (or names no item).
	seen := make([]bool, len(evs))
	for i, ev := range evs {
		id := ev.GetFeedbackId()
		if id == "" || ev.GetId() == "" {
			seen[i] = true
			continue
		}
		member, err := memberCmds[id].Result()
		if err != nil {
			return nil, false, err
		}
		seen[i] = member[at[i]]
	}
	// Fold in memory: an item's state as the previous events of the batch
	// left it, and the ids applied meanwhile (a batch may hold an event
	// twice). An item is decoded once and every event of it folded into
	// that one copy (what the writes need of the old state, index entries
	// and search document, is taken first), then written once. The funcs
	// told of each event (WithApplied) need the item as that event left
	// it, so an event with more of its item's events after it in the batch
	// gets a snapshot (if a func reads it: WithAppliedReading); the last
	// gets the item itself. The projection leaves an item it ignores an
	// event for untouched.
	type state struct {
		old, cur *feedloopv1.Item
		todo     int // events of the item still to fold in this batch
		changed  bool
		applied  []any // ids of the events folded in
		oldIdx   []zentry
		oldDoc   string
		oldToken string
	}
	items := make(map[string]*state, len(ids))
	for i, ev := range evs {
		if seen[i] {
			continue
		}
		st := items[ev.GetFeedbackId()]
		if st == nil {
			st = &state{}
			items[ev.GetFeedbackId()] = st
		}
		st.todo++
	}
	done := map[string]bool{}
	changes = make([]*change, len(evs))
	for i, ev := range evs {
		if seen[i] || done[ev.GetId()] {
			continue
		}
		id := ev.GetFeedbackId()
		st := items[id]
		if st.old == nil {
			old, err := s.decodeItem(getCmds[id], id)
			if err != nil {
				return nil, false, err
			}
			st.old, st.cur = old, old
			st.oldIdx, st.oldDoc, st.oldToken = s.indexEntries(old), searchDoc(old), old.GetStatusToken()
		}
		kpi := kpiDeltas(st.cur, ev)
		st.todo--
		if !projection.Apply(st.cur, ev) {
			continue
		}
		told := st.cur
		if st.todo > 0 && s.readsItem(ev) {
			told = proto.Clone(st.cur).(*feedloopv1.Item)
		}
		changes[i] = &change{item: told, kpi: kpi}
		st.changed = true
		st.applied = append(st.applied, ev.GetId())
		done[ev.GetId()] = true
	}
	if len(done) == 0 {
		if len(traces) > 0 {
			return changes, false, s.keepTraces(ctx, traces)
		}
		return changes, false, nil
	}
	_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		s.queueTraces(ctx, p, traces)
		for _, id := range ids {
			st := items[id]
			if st == nil || !st.changed {
				continue
			}
			data, err := proto.MarshalOptions{Deterministic: true}.Marshal(st.cur)
			if err != nil {
				return fmt.Errorf("encode item %s: %w", id, err)
			}
			p.Set(ctx, s.itemKey(id), data, 0)
			p.SAdd(ctx, s.appliedKey(id), st.applied...)
			s.updateIndexes(ctx, p, st.oldIdx, st.oldToken, st.cur)
			if doc := searchDoc(st.cur); doc != st.oldDoc {
				// Rewritten only when a searchable field changed: most
				// events are status changes, which leave it alone.
				if doc == "" {
					p.Del(ctx, s.searchKey(id))
				} else {
					p.Set(ctx, s.searchKey(id), doc, 0)
				}
			}
		}
		// The batch's KPI increments are summed per hash and field first:
		// a batch of routed events for one team is one HINCRBY per field,
		// not one per event.
		incr := map[string]map[string]int64{} // hash key → field → sum
		add := func(key, f string, n int64) {
			if incr[key] == nil {
				incr[key] = map[string]int64{}
			}
			incr[key][f] += n
		}
		type teamDay struct{ team, date string }
		days := map[teamDay]time.Time{}
		for i, ch := range changes {
			if ch == nil {
				continue
			}
			// The day's bucket gets the same increments as the totals, on
			// the day the event occurred (not the day it was applied), so
			// a rebuild puts them in the same buckets.
			occurred := evs[i].GetOccurredAt()
			var day time.Time
			var date string
			if occurred.IsValid() {
				day = utcDay(occurred.AsTime())
				date = day.Format(time.DateOnly)
			}
			for team, fields := range ch.kpi {
				for f, n := range fields {
					add(s.kpiKey(team), f, n)
					if !day.IsZero() {
						add(s.kpiDayKey(team, date), f, n)
					}
				}
				if !day.IsZero() && len(fields) > 0 {
					days[teamDay{team, date}] = day
				}
			}
		}
		for key, fields := range incr {
			for f, n := range fields {
				p.HIncrBy(ctx, key, f, n)
			}
		}
		for td, day := range days {
			p.ZAdd(ctx, s.kpiDaysKey(td.team), redis.Z{Score: float64(dayNumber(day)), Member: td.date})
		}
		return nil
	})
	if err != nil {
		// Maybe not sent (the queueing failed): the caller ends the WATCH.
		return nil, false, err
	}
	return changes, true, nil
}

// decodeItem is the item a read returned; an empty one when there is none.
func (s *Store) decodeItem(cmd *redis.StringCmd, id string) (*feedloopv1.Item, error) {
	item := &feedloopv1.Item{}
	blob, err := cmd.Bytes()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return nil, err
	default:
		if err := proto.Unmarshal(blob, item); err != nil {
			return nil, fmt.Errorf("decode %s: %w", s.itemKey(id), err)
		}
	}
	return item, nil
}

// zentry is one member of one sorted set.
type zentry struct {
	key, member string
	score       float64
}

// indexEntries lists the sorted-set members item should have.
func (s *Store) indexEntries(item *feedloopv1.Item) []zentry {
	id := item.GetFeedbackId()
	var out []zentry
	for _, a := range item.GetAssignments() {
		score := dueScore(a)
		out = append(out, zentry{s.statusKey(a.GetTeam(), a.GetStatus()), id, score})
		if projection.IsOpen(a.GetStatus()) {
			out = append(out, zentry{s.openKey(a.GetTeam()), id, score})
		}
	}
	if k := s.customerKey(item.GetFeedback()); k != "" && item.GetReceivedAt() != nil {
		out = append(out, zentry{k, id, float64(item.GetReceivedAt().AsTime().UnixMilli()) / 1000})
	}
	return out
}

// dueScore orders a team's list: due unix seconds, +inf for nothing due so
// those sort last (ties fall back to the member, the feedback id).
func dueScore(a *feedloopv1.AssignmentState) float64 {
	if a.GetDueAt() == nil {
		return math.Inf(1)
	}
	return float64(a.GetDueAt().GetSeconds())
}

// updateIndexes queues the changes that take the indexes from an item
// whose entries were oldIdx and status token oldToken to cur.
func (s *Store) updateIndexes(ctx context.Context, p redis.Pipeliner, oldIdx []zentry, oldToken string, cur *feedloopv1.Item) {
	type km struct{ key, member string }
	was := map[km]float64{}
	for _, e := range oldIdx {
		was[km{e.key, e.member}] = e.score
	}
	for _, e := range s.indexEntries(cur) {
		k := km{e.key, e.member}
		if score, ok := was[k]; !ok || score != e.score {
			p.ZAdd(ctx, e.key, redis.Z{Score: e.score, Member: e.member})
		}
		delete(was, k)
	}
	for k := range was {
		p.ZRem(ctx, k.key, k.member)
	}
	if tok := cur.GetStatusToken(); tok != "" && tok != oldToken {
		p.Set(ctx, s.tokenKey(tok), cur.GetFeedbackId(), 0)
	}
}
