package sla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/redisx"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// Index is the timer index in Redis. Its keys, under Config.KeyPrefix:
//
//	due                  sorted set: one member per pending firing, scored
//	                     by when it fires (unix seconds)
//	a:<team>:<feedback>  the assignment's record (JSON): what the scheduler
//	                     needs to build the Escalated event, and the timers
//
// A record and its members of due change together, in one transaction
// guarded by WATCH on the record, so replicas and a concurrent consumer may
// apply events to one index.
type Index struct {
	rdb redis.UniversalClient
	cfg Config
	// guard, when set, is checked by every update in its transaction: the
	// index is complete (rebuild.Gate.Live), or the caller is the rebuild.
	guard *rebuild.Guard
}

// WithGuard is a copy of x whose updates check g atomically with
// themselves and fail with an error wrapping rebuild.ErrNotReady (or
// rebuild.ErrLockLost) while it does not hold; its scheduler fires nothing
// meanwhile (see Ready).
func (x *Index) WithGuard(g rebuild.Guard) *Index {
	c := *x
	c.guard = &g
	return &c
}

// Ready reports whether the index is complete (always, without a guard).
func (x *Index) Ready(ctx context.Context) (bool, error) {
	if x.guard == nil {
		return true, nil
	}
	v, err := x.rdb.Get(ctx, x.guard.Key).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sla: check %s: %w", x.guard.Key, err)
	}
	return x.guard.Holds(v, true), nil
}

// NewIndex returns the index kept in rdb.
func NewIndex(rdb redis.UniversalClient, cfg Config) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Index{rdb: rdb, cfg: cfg.withDefaults()}, nil
}

// record is one (feedback item, team) assignment. Times are unix seconds.
type record struct {
	FeedbackID string `json:"feedback_id"`
	Team       string `json:"team"`
	Priority   int32  `json:"priority"`
	// Feedback is the item as the Escalated event carries it (text
	// redacted), marshalled deterministically so replays store equal bytes.
	Feedback    []byte   `json:"feedback"`
	Chain       []step   `json:"chain,omitempty"`
	Acknowledge timer    `json:"acknowledge"`
	Resolve     timer    `json:"resolve"`
	Seen        []string `json:"seen"` // ids of the events applied, sorted
}

type step struct {
	Team  string `json:"team"`
	After int64  `json:"after"`
}

// timer is one deadline of an assignment and its pending firings.
type timer struct {
	Window int64 `json:"window,omitempty"` // length of the SLA; 0: no such deadline
	Due    int64 `json:"due,omitempty"`    // the deadline; 0: not armed
	Warn   int64 `json:"warn,omitempty"`   // when the warning fires; 0: none pending
	Level  int32 `json:"level,omitempty"`  // next breach level; 0: none pending
	Fire   int64 `json:"fire,omitempty"`   // when that level fires
}

func (r *record) timer(deadline string) *timer {
	switch deadline {
	case Acknowledge:
		return &r.Acknowledge
	case Resolve:
		return &r.Resolve
	}
	return nil
}

// Firing kinds as they appear in members of the due set; a warning sorts
// before a breach due the same second.
const (
	memberWarning = "0"
	memberBreach  = "1"
)

// member names one pending firing in the due set.
func member(kind, deadline, team, feedbackID string) string {
	return kind + "|" + deadline + "|" + team + "|" + feedbackID
}

func parseMember(m string) (kind, deadline, team, feedbackID string, ok bool) {
	parts := strings.SplitN(m, "|", 4)
	if len(parts) != 4 {
		return "", "", "", "", false
	}
	return parts[0], parts[1], parts[2], parts[3], true
}

// members are r's pending firings and when each fires.
func (r *record) members() map[string]int64 {
	out := map[string]int64{}
	for _, d := range []string{Acknowledge, Resolve} {
		t := r.timer(d)
		if t.Warn > 0 {
			out[member(memberWarning, d, r.Team, r.FeedbackID)] = t.Warn
		}
		if t.Level > 0 {
			out[member(memberBreach, d, r.Team, r.FeedbackID)] = t.Fire
		}
	}
	return out
}

// arm starts t's window at start: the warning, then level 1 of the chain
// (chain[0].after past the deadline, or at it when there is no chain).
func (r *record) arm(t *timer, start int64, warnAt float64) {
	*t = timer{Window: t.Window}
	if t.Window <= 0 {
		return
	}
	t.Due = start + t.Window
	t.Level, t.Fire = 1, t.Due
	if len(r.Chain) > 0 {
		t.Fire += r.Chain[0].After
	}
	if warnAt > 0 {
		if w := start + int64(math.Round(warnAt*float64(t.Window))); w < t.Due {
			t.Warn = w
		}
	}
}

func (r *record) seen(id string) bool {
	_, ok := slices.BinarySearch(r.Seen, id)
	return ok
}

func (r *record) markSeen(id string) {
	if i, ok := slices.BinarySearch(r.Seen, id); !ok {
		r.Seen = slices.Insert(r.Seen, i, id)
	}
}

func (x *Index) dueKey() string { return x.cfg.KeyPrefix + "due" }

func (x *Index) recordKey(team, feedbackID string) string {
	return x.cfg.KeyPrefix + "a:" + team + ":" + feedbackID
}

// Reset deletes every key of the index (and nothing else), before a
// rebuild replays the stream into it.
func (x *Index) Reset(ctx context.Context) error {
	del := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, globEscape(x.cfg.KeyPrefix)+"*", 512).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			err := c.Del(ctx, batch...).Err()
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) >= 512 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	var err error
	if cc, ok := x.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return del(ctx, c) })
	} else {
		err = del(ctx, x.rdb)
	}
	if err != nil {
		return fmt.Errorf("sla: reset: %w", err)
	}
	return nil
}

// Apply updates the index for ev; events that do not concern SLA timers
// are ignored, so every feedback.> event may be passed. Applying an event
// again, at any later point, changes nothing.
//
//   - Routed arms the assignment's acknowledge and resolve deadlines.
//   - StatusChanged to ACKNOWLEDGED or PLANNED cancels the acknowledge
//     timers; RESOLVED, DECLINED or REROUTED cancels both; REOPENED arms
//     both again with their original windows, from the reopen.
//   - Escalated moves the firing it reports on: a warning is cleared, breach
//     level n arms level n+1 (chain[n].after later) while the chain lasts.
//     It does so only if the timer is still at that firing, so an
//     escalation applied after the deadline was met changes nothing.
//
// Apply expects one assignment's Routed before its other events, as the
// stream holds them; events for an assignment it does not know are
// ignored. Errors for malformed events are bus.Permanent and wrap
// ErrMalformed.
func (x *Index) Apply(ctx context.Context, ev *feedloopv1.Event) error {
	return x.ApplyBatch(ctx, []*feedloopv1.Event{ev})[0]
}

// ApplyBatch applies evs, in order, as Apply would one at a time, in one
// transaction (one WATCH, one round trip of reads, one MULTI/EXEC). errs[i]
// is evs[i]'s error: its own (malformed) or the transaction's.
func (x *Index) ApplyBatch(ctx context.Context, evs []*feedloopv1.Event) (errs []error) {
	errs = make([]error, len(evs))
	var ops []op
	for i, ev := range evs {
		o, err := x.op(ev)
		switch {
		case err != nil:
			errs[i] = err
		case o != nil:
			o.i = i
			ops = append(ops, *o)
		}
	}
	if len(ops) == 0 {
		return errs
	}
	if err := x.update(ctx, ops); err != nil {
		for _, o := range ops {
			errs[o.i] = err
		}
	}
	return errs
}

// op is what one event does to one assignment's record.
type op struct {
	i      int // index of the event in its batch
	ev     *feedloopv1.Event
	key    string
	create bool // make the record if there is none (else do nothing)
	change func(*record)
}

// op is what ev does to the index; nil for an event that does not concern
// SLA timers.
func (x *Index) op(ev *feedloopv1.Event) (*op, error) {
	switch p := ev.GetPayload().(type) {
	case *feedloopv1.Event_Routed:
		return x.routedOp(ev, p.Routed)
	case *feedloopv1.Event_StatusChanged:
		return x.statusOp(ev, p.StatusChanged)
	case *feedloopv1.Event_Escalated:
		return x.escalatedOp(ev, p.Escalated)
	}
	return nil, nil
}

func malformed(ev *feedloopv1.Event, format string, args ...any) error {
	return bus.Permanent(fmt.Errorf("%w: event %s: %s", ErrMalformed, ev.GetId(), fmt.Sprintf(format, args...)))
}

// check validates what every applied event needs.
func check(ev *feedloopv1.Event, team string) error {
	switch {
	case ev.GetId() == "":
		return malformed(ev, "no id")
	case ev.GetFeedbackId() == "":
		return malformed(ev, "no feedback id")
	case !bus.ValidToken(team):
		return malformed(ev, "team %q is not a valid team", team)
	case !ev.GetOccurredAt().IsValid():
		return malformed(ev, "no valid occurred_at")
	}
	return nil
}

func (x *Index) routedOp(ev *feedloopv1.Event, r *feedloopv1.Routed) (*op, error) {
	a := r.GetAssignment()
	if err := check(ev, a.GetTeam()); err != nil {
		return nil, err
	}
	// The alert shows the text teams may see, never the original.
	fb := proto.Clone(r.GetFeedback()).(*feedloopv1.Feedback)
	if fb == nil {
		fb = &feedloopv1.Feedback{}
	}
	fb.Text = r.GetClassification().GetRedactedText()
	fbBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(fb)
	if err != nil {
		return nil, fmt.Errorf("sla: marshal feedback of event %s: %w", ev.GetId(), err)
	}
	var chain []step
	for _, s := range a.GetEscalation() {
		chain = append(chain, step{Team: s.GetTeam(), After: max(0, int64(s.GetAfter().AsDuration()/time.Second))})
	}
	start := ceilUnix(ev.GetOccurredAt())
	window := func(by *timestamppb.Timestamp) int64 {
		if !by.IsValid() {
			return 0
		}
		// At least a second: a deadline at or before the routing is missed at once.
		return max(1, ceilUnix(by)-start)
	}
	return x.newOp(ev, a.GetTeam(), true, func(rec *record) {
		// A new Routed for a known assignment (routed back to the team)
		// starts it afresh; the events seen so far stay seen.
		*rec = record{
			FeedbackID:  ev.GetFeedbackId(),
			Team:        a.GetTeam(),
			Priority:    int32(a.GetPriority()),
			Feedback:    fbBytes,
			Chain:       chain,
			Acknowledge: timer{Window: window(a.GetAcknowledgeBy())},
			Resolve:     timer{Window: window(a.GetResolveBy())},
			Seen:        rec.Seen,
		}
		rec.arm(&rec.Acknowledge, start, x.cfg.WarnAt)
		rec.arm(&rec.Resolve, start, x.cfg.WarnAt)
	}), nil
}

func (x *Index) statusOp(ev *feedloopv1.Event, sc *feedloopv1.StatusChanged) (*op, error) {
	var change func(*record)
	switch sc.GetTo() {
	case feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_PLANNED:
		change = func(r *record) { r.Acknowledge = timer{Window: r.Acknowledge.Window} }
	case feedloopv1.Status_STATUS_RESOLVED, feedloopv1.Status_STATUS_DECLINED, feedloopv1.Status_STATUS_REROUTED:
		change = func(r *record) {
			r.Acknowledge = timer{Window: r.Acknowledge.Window}
			r.Resolve = timer{Window: r.Resolve.Window}
		}
	case feedloopv1.Status_STATUS_REOPENED:
		start := ceilUnix(ev.GetOccurredAt())
		change = func(r *record) {
			r.arm(&r.Acknowledge, start, x.cfg.WarnAt)
			r.arm(&r.Resolve, start, x.cfg.WarnAt)
		}
	default:
		return nil, nil
	}
	if err := check(ev, sc.GetTeam()); err != nil {
		return nil, err
	}
	return x.newOp(ev, sc.GetTeam(), false, change), nil
}

func (x *Index) escalatedOp(ev *feedloopv1.Event, e *feedloopv1.Escalated) (*op, error) {
	if err := check(ev, e.GetTeam()); err != nil {
		return nil, err
	}
	if e.GetDeadline() != Acknowledge && e.GetDeadline() != Resolve {
		return nil, malformed(ev, "deadline %q is neither %s nor %s", e.GetDeadline(), Acknowledge, Resolve)
	}
	if !e.GetDueAt().IsValid() {
		return nil, malformed(ev, "no valid due_at")
	}
	due, level, kind := ceilUnix(e.GetDueAt()), e.GetLevel(), e.GetKind()
	return x.newOp(ev, e.GetTeam(), false, func(r *record) {
		t := r.timer(e.GetDeadline())
		if t.Due != due {
			return // another round of this deadline, or it was met
		}
		switch kind {
		case feedloopv1.EscalationKind_ESCALATION_KIND_WARNING:
			t.Warn = 0
		case feedloopv1.EscalationKind_ESCALATION_KIND_BREACH:
			if t.Level != level || level < 1 {
				return
			}
			// A warning still pending (its publish failed) is moot now.
			t.Warn = 0
			if int(level) < len(r.Chain) {
				t.Level, t.Fire = level+1, t.Fire+r.Chain[level].After
			} else {
				t.Level, t.Fire = 0, 0
			}
		}
	}), nil
}

// maxTxRetries bounds the optimistic retries of one update; each retry
// means another writer changed the same assignment meanwhile.
const maxTxRetries = 100

func (x *Index) newOp(ev *feedloopv1.Event, team string, create bool, change func(*record)) *op {
	return &op{ev: ev, key: x.recordKey(team, ev.GetFeedbackId()), create: create, change: change}
}

// update applies the ops, in order, to their records and brings the
// records' members of the due set in line, atomically; an op whose event
// was applied already does nothing. A batch that keeps losing races to
// other writers is split into single ops.
func (x *Index) update(ctx context.Context, ops []op) error {
	var keys []string
	for _, o := range ops {
		if !slices.Contains(keys, o.key) {
			keys = append(keys, o.key)
		}
	}
	// The WATCH goes in the reads' round trip (redisx.QueueWatch): one
	// round trip less per batch than a WATCH of its own.
	watch := keys
	if x.guard != nil {
		watch = append(slices.Clip(watch), x.guard.Key)
	}
	// txf reports whether it sent EXEC (redisx.Watch ends the WATCH when
	// not).
	txf := func(tx *redis.Tx) (exec bool, err error) {
		var guardCmd *redis.StringCmd
		var watchCmd *redis.Cmd
		gets := make([]*redis.StringCmd, len(keys))
		_, err = tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			watchCmd = redisx.QueueWatch(ctx, p, watch...)
			if x.guard != nil {
				guardCmd = x.guard.Get(ctx, p)
			}
			for i, k := range keys {
				gets[i] = p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, fmt.Errorf("sla: read records: %w", err)
		}
		if err := watchCmd.Err(); err != nil {
			return false, fmt.Errorf("sla: watch records: %w", err)
		}
		if guardCmd != nil {
			if err := x.guard.Check(guardCmd, "sla index"); err != nil {
				return false, err
			}
		}
		type state struct {
			rec     *record
			before  map[string]int64
			changed bool
		}
		recs := make(map[string]*state, len(keys))
		changed := false
		for i, k := range keys {
			rec, err := decode(gets[i], k)
			if err != nil {
				return false, err
			}
			st := &state{rec: rec}
			if rec != nil {
				st.before = rec.members()
			}
			recs[k] = st
		}
		for _, o := range ops {
			st := recs[o.key]
			if st.rec == nil {
				if !o.create {
					continue
				}
				st.rec = &record{}
			}
			if st.rec.seen(o.ev.GetId()) {
				continue
			}
			o.change(st.rec)
			st.rec.markSeen(o.ev.GetId())
			st.changed = true
			changed = true
		}
		if !changed {
			return false, nil // a redelivery: nothing to write
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				st := recs[k]
				if !st.changed {
					continue
				}
				data, err := json.Marshal(st.rec)
				if err != nil {
					return fmt.Errorf("sla: encode %s: %w", k, err)
				}
				p.Set(ctx, k, data, 0)
				x.syncMembers(ctx, p, st.before, st.rec.members())
			}
			return nil
		})
		// A failed EXEC (TxFailedErr) was sent; a queueing error sent none.
		return err == nil || errors.Is(err, redis.TxFailedErr), err
	}
	for attempt := 1; attempt <= maxTxRetries; attempt++ {
		err := redisx.Watch(ctx, x.rdb, txf)
		if errors.Is(err, redis.TxFailedErr) {
			if len(ops) > 1 && attempt == splitAfter {
				for _, o := range ops {
					if err := x.update(ctx, []op{o}); err != nil {
						return err
					}
				}
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("sla: apply event %s: %w", ops[0].ev.GetId(), err)
		}
		return nil
	}
	return fmt.Errorf("sla: apply event %s: %s kept changing under %d retries", ops[0].ev.GetId(), ops[0].key, maxTxRetries)
}

// splitAfter is how many conflicts a batch takes before it is split.
const splitAfter = 3

func (x *Index) syncMembers(ctx context.Context, p redis.Pipeliner, before, after map[string]int64) {
	for m := range before {
		if _, ok := after[m]; !ok {
			p.ZRem(ctx, x.dueKey(), m)
		}
	}
	for m, at := range after {
		p.ZAdd(ctx, x.dueKey(), redis.Z{Score: float64(at), Member: m})
	}
}

// load reads the record at key; nil when there is none.
func load(ctx context.Context, c redis.Cmdable, key string) (*record, error) {
	return decode(c.Get(ctx, key), key)
}

// decode is the record a read of key returned; nil when there is none.
func decode(cmd *redis.StringCmd, key string) (*record, error) {
	raw, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sla: read %s: %w", key, err)
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("sla: decode %s: %w", key, err)
	}
	return &rec, nil
}

// due returns up to limit members of the due set that fire at or before now.
func (x *Index) due(ctx context.Context, now int64, limit int64) ([]string, error) {
	ms, err := x.rdb.ZRangeByScore(ctx, x.dueKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now, 10), Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("sla: read due timers: %w", err)
	}
	return ms, nil
}

// firing returns the Escalated event of the firing m names, if it is
// pending in the record and due by now; nil otherwise.
func (x *Index) firing(ctx context.Context, m string, now int64) (*feedloopv1.Event, error) {
	kind, deadline, team, feedbackID, ok := parseMember(m)
	if !ok {
		return nil, nil
	}
	rec, err := load(ctx, x.rdb, x.recordKey(team, feedbackID))
	if err != nil || rec == nil {
		return nil, err
	}
	t := rec.timer(deadline)
	if t == nil {
		return nil, nil
	}
	e := &feedloopv1.Escalated{
		Team:     team,
		Deadline: deadline,
		DueAt:    timestamppb.New(time.Unix(t.Due, 0)),
		Priority: feedloopv1.Priority(rec.Priority),
		Feedback: &feedloopv1.Feedback{},
	}
	var at int64
	switch {
	case kind == memberWarning && t.Warn > 0 && t.Warn <= now:
		e.Kind, at = feedloopv1.EscalationKind_ESCALATION_KIND_WARNING, t.Warn
	case kind == memberBreach && t.Level > 0 && t.Fire <= now:
		e.Kind, e.Level, at = feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, t.Level, t.Fire
		if int(t.Level) <= len(rec.Chain) {
			e.EscalateTo = rec.Chain[t.Level-1].Team
		}
	default:
		return nil, nil
	}
	if err := proto.Unmarshal(rec.Feedback, e.Feedback); err != nil {
		return nil, fmt.Errorf("sla: decode feedback of %s: %w", m, err)
	}
	return &feedloopv1.Event{
		// Everything that tells one firing from another, and nothing that
		// depends on who fires it or when: replicas and restarts derive the
		// same id, and the stream keeps one event.
		Id:         bus.DeriveID(feedbackID, "escalated", team, deadline, strconv.FormatInt(t.Due, 10), e.GetKind().String(), strconv.Itoa(int(e.GetLevel()))),
		FeedbackId: feedbackID,
		OccurredAt: timestamppb.New(time.Unix(at, 0)),
		Payload:    &feedloopv1.Event_Escalated{Escalated: e},
	}, nil
}

// reconcile makes m's entry in the due set agree with its record, for a
// member found due that names no due firing. Normally another replica just
// moved the timer on and the entry is right already; an entry whose record
// is gone (keys deleted by hand) is dropped so it cannot block a tick.
func (x *Index) reconcile(ctx context.Context, m string) error {
	_, _, team, feedbackID, ok := parseMember(m)
	if !ok {
		return x.rdb.ZRem(ctx, x.dueKey(), m).Err()
	}
	key := x.recordKey(team, feedbackID)
	err := x.rdb.Watch(ctx, func(tx *redis.Tx) error {
		rec, err := load(ctx, tx, key)
		if err != nil {
			return err
		}
		var want map[string]int64
		if rec != nil {
			want = rec.members()
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if at, ok := want[m]; ok {
				p.ZAdd(ctx, x.dueKey(), redis.Z{Score: float64(at), Member: m})
			} else {
				p.ZRem(ctx, x.dueKey(), m)
			}
			return nil
		})
		return err
	}, key)
	if err != nil && !errors.Is(err, redis.TxFailedErr) {
		return fmt.Errorf("sla: reconcile %s: %w", m, err)
	}
	return nil
}

// globEscape quotes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ceilUnix is ts in whole seconds, rounded up so that a timer never fires
// before its instant.
func ceilUnix(ts *timestamppb.Timestamp) int64 {
	s := ts.GetSeconds()
	if ts.GetNanos() > 0 {
		s++
	}
	return s
}
