package sla

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// t0 is when the test items are routed; the fake clock counts from it.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// at is t0 plus secs seconds.
func at(secs int64) time.Time { return t0.Add(time.Duration(secs) * time.Second) }

// env is one NATS, one Redis and an index on it, as one router deployment
// sees them.
type env struct {
	t     *testing.T
	ctx   context.Context
	url   string
	bus   *bus.Bus
	rdb   *redis.Client
	cfg   Config
	idx   *Index
	clock *testkit.Clock
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	url := testkit.NATS(t)
	e := &env{t: t, ctx: context.Background(), url: url, bus: testkit.BusAt(t, url), rdb: testkit.RedisClient(t), cfg: cfg, clock: testkit.NewClock(t0)}
	e.idx = e.index()
	return e
}

func (e *env) index() *Index {
	e.t.Helper()
	idx, err := NewIndex(e.rdb, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return idx
}

// scheduler is one more router replica: its own NATS connection, the
// shared Redis and clock.
func (e *env) scheduler() *Scheduler {
	return NewScheduler(e.index(), testkit.BusAt(e.t, e.url), e.cfg, e.clock.Now)
}

// emit publishes ev and applies it to the index, as the router's consumer
// of the stream does.
func (e *env) emit(subject string, ev *feedloopv1.Event) {
	e.t.Helper()
	if _, err := e.bus.Publish(e.ctx, subject, ev); err != nil {
		e.t.Fatal(err)
	}
	if err := e.idx.Apply(e.ctx, ev); err != nil {
		e.t.Fatalf("apply %s: %v", bus.PayloadType(ev), err)
	}
}

// chain builds an escalation chain from team, after-seconds pairs.
func chain(pairs ...any) []*feedloopv1.EscalationStep {
	var out []*feedloopv1.EscalationStep
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, &feedloopv1.EscalationStep{Team: pairs[i].(string), After: durationpb.New(time.Duration(pairs[i+1].(int)) * time.Second)})
	}
	return out
}

// routed is the Routed event of item fb to team at t0, with deadlines
// ack and resolve seconds later (0: none).
func routed(fb, team string, ack, resolve int64, esc []*feedloopv1.EscalationStep) *feedloopv1.Event {
	a := &feedloopv1.Assignment{Team: team, Route: "root/" + team, Priority: feedloopv1.Priority_PRIORITY_HIGH, Escalation: esc}
	if ack > 0 {
		a.AcknowledgeBy = timestamppb.New(at(ack))
	}
	if resolve > 0 {
		a.ResolveBy = timestamppb.New(at(resolve))
	}
	return &feedloopv1.Event{
		Id:         bus.DeriveID(fb, "routed", team),
		FeedbackId: fb,
		OccurredAt: timestamppb.New(t0),
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{
			Feedback:       &feedloopv1.Feedback{Id: fb, Source: "helpdesk", Text: "Call me on +41 79 123 45 67, charged twice"},
			Classification: &feedloopv1.Classification{RedactedText: "Call me on [phone], charged twice"},
			Assignment:     a,
		}},
	}
}

// status is team's transition of item fb to `to`, secs after t0.
func status(fb, team string, to feedloopv1.Status, secs int64) *feedloopv1.Event {
	return &feedloopv1.Event{
		Id:         bus.DeriveID(fb, "status", team, to.String(), fmt.Sprint(secs)),
		FeedbackId: fb,
		OccurredAt: timestamppb.New(at(secs)),
		Payload:    &feedloopv1.Event_StatusChanged{StatusChanged: &feedloopv1.StatusChanged{Team: team, To: to, Actor: "ada"}},
	}
}

// escalations returns the Escalated events in the stream, in order.
func (e *env) escalations() []*feedloopv1.Event {
	e.t.Helper()
	var out []*feedloopv1.Event
	for _, m := range testkit.Messages(e.t, e.bus, bus.StreamFeedback, bus.AllEscalated) {
		var ev feedloopv1.Event
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			e.t.Fatal(err)
		}
		if want := bus.EscalatedSubject(ev.GetEscalated().GetTeam()); m.Subject != want {
			e.t.Errorf("escalation on %s, want %s", m.Subject, want)
		}
		out = append(out, &ev)
	}
	return out
}

// describe renders an Escalated event for comparison, times in seconds
// after t0: "fb-1 billing acknowledge BREACH 2 to customer-success at 160 due 100".
func describe(ev *feedloopv1.Event) string {
	x := ev.GetEscalated()
	to := x.GetEscalateTo()
	if to == "" {
		to = "-"
	}
	return fmt.Sprintf("%s %s %s %s %d to %s at %d due %d", ev.GetFeedbackId(), x.GetTeam(), x.GetDeadline(),
		strings.TrimPrefix(x.GetKind().String(), "ESCALATION_KIND_"), x.GetLevel(), to,
		ev.GetOccurredAt().AsTime().Sub(t0)/time.Second, x.GetDueAt().AsTime().Sub(t0)/time.Second)
}

// fired describes the stream's escalations, sorted, so that the order in
// which racing replicas published them does not matter.
func (e *env) fired() []string {
	var out []string
	for _, ev := range e.escalations() {
		out = append(out, describe(ev))
	}
	sort.Strings(out)
	return out
}

// fire runs one tick of s at secs after t0.
func (e *env) fire(s *Scheduler, secs int64) {
	e.t.Helper()
	e.clock.Set(at(secs))
	if _, err := s.Fire(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// settle moves the clock to secs after t0 and waits until every running
// scheduler has completed a tick that started after the move.
func (e *env) settle(secs int64, running ...*Scheduler) {
	e.t.Helper()
	e.clock.Set(at(secs))
	for _, s := range running {
		target := s.ticks.Load() + 2 // the tick under way may have read the old time
		testkit.Eventually(e.t, "a scheduler tick", func() bool { return s.ticks.Load() >= target })
	}
}

// dump is every key of the index and its value, to compare two indexes.
func (e *env) dump() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	keys, err := e.rdb.Keys(e.ctx, globEscape(e.cfg.withDefaults().KeyPrefix)+"*").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range keys {
		switch typ := e.rdb.Type(e.ctx, k).Val(); typ {
		case "string":
			out[k] = e.rdb.Get(e.ctx, k).Val()
		case "zset":
			var b strings.Builder
			for _, z := range e.rdb.ZRangeWithScores(e.ctx, k, 0, -1).Val() {
				fmt.Fprintf(&b, "%s=%.0f\n", z.Member, z.Score)
			}
			out[k] = b.String()
		default:
			e.t.Fatalf("key %s has unexpected type %s", k, typ)
		}
	}
	return out
}

// diff lists the keys on which two dumps differ.
func diff(a, b map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if a[k] != b[k] {
			out = append(out, fmt.Sprintf("%s:\n  %s\n  %s", k, a[k], b[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s: only in the second: %s", k, b[k]))
		}
	}
	return strings.Join(out, "\n")
}
