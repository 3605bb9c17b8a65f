package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/app"
	"github.com/feedloop/feedloop/services/router/internal/itemlock"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
	"github.com/feedloop/feedloop/services/router/internal/sla"
	"github.com/feedloop/feedloop/services/router/routing"
)

// A billing or delivery topic goes to its team; billing continues, so an
// item about both goes to both. Anything else goes to triage.
const routesYAML = `
route:
  team: triage
  sla: {acknowledge: 8h, resolve: 120h}
  routes:
    - name: billing
      team: billing
      matchers: ['topic="billing"']
      continue: true
    - name: logistics
      team: logistics
      matchers: ['topic="delivery"']
`

var occurred = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

// world is the use cases wired as router.New wires them, on a real Redis
// and an embedded NATS with the feedloop streams, and no transport.
type world struct {
	t       *testing.T
	bus     *bus.Bus
	rdb     *redis.Client
	store   *readmodel.Store
	lock    *itemlock.Locker
	team    *app.Team
	routing *app.Routing
	answers *app.Answers
	survey  *app.Survey
}

func newWorld(t *testing.T) *world {
	t.Helper()
	b := testkit.Bus(t)
	rdb := testkit.RedisClient(t)
	store, err := readmodel.New(rdb)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := sla.NewIndex(rdb, sla.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := routing.Parse([]byte(routesYAML))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	notFound := func(err error) bool { return errors.Is(err, readmodel.ErrNotFound) }
	// A short wait: a held lock makes an action fail fast with ErrBusy.
	lock := itemlock.New(rdb, "router:lock:", 10*time.Second, 300*time.Millisecond)
	w := &world{t: t, bus: b, rdb: rdb, store: store, lock: lock}
	w.team = &app.Team{Store: store, NotFound: notFound, Lock: lock, Bus: b, Teams: tree.Teams, SLA: idx, Log: log}
	w.answers = &app.Answers{Store: store, NotFound: notFound, Lock: lock, Bus: b, Log: log}
	// Routed items reach the read model at once, as in the service, and
	// the SLA timers too, standing in for the projector.
	w.routing = &app.Routing{Bus: b, Tree: func() *routing.Tree { return tree }, Answers: w.answers, Log: log,
		Applied: func(ctx context.Context, ev *feedloopv1.Event) {
			if _, err := store.Apply(ctx, ev); err != nil {
				t.Errorf("apply %s: %v", ev.GetId(), err)
			}
			if err := idx.Apply(ctx, ev); err != nil {
				t.Errorf("sla apply %s: %v", ev.GetId(), err)
			}
		}}
	w.survey = &app.Survey{Bus: b}
	return w
}

// classified is a classified feedback item id about topics, from customer
// c-<id>.
func classified(id string, topics ...string) *feedloopv1.Event {
	c := &feedloopv1.Classification{Sentiment: feedloopv1.Sentiment_SENTIMENT_NEGATIVE, RedactedText: "text of " + id}
	for _, tp := range topics {
		c.Topics = append(c.Topics, &feedloopv1.TopicScore{Topic: tp, Confidence: 0.9})
	}
	return &feedloopv1.Event{
		Id:         "classified-" + id,
		FeedbackId: id,
		OccurredAt: timestamppb.New(occurred),
		Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{
			Feedback: &feedloopv1.Feedback{Id: id, Source: "helpdesk", Text: "text of " + id,
				Customer: &feedloopv1.Customer{Id: "c-" + id, Email: id + "@example.com"}},
			Classification: c,
		}},
	}
}

// routed routes a new item about topics and returns its id.
func (w *world) routed(id string, topics ...string) string {
	w.t.Helper()
	if err := w.routing.Route(context.Background(), classified(id, topics...)); err != nil {
		w.t.Fatalf("route %s: %v", id, err)
	}
	return id
}

func (w *world) item(id string) *feedloopv1.Item {
	w.t.Helper()
	it, err := w.store.Item(context.Background(), id)
	if err != nil {
		w.t.Fatalf("item %s: %v", id, err)
	}
	return it
}

func status(it *feedloopv1.Item, team string) feedloopv1.Status {
	for _, a := range it.GetAssignments() {
		if a.GetTeam() == team {
			return a.GetStatus()
		}
	}
	return feedloopv1.Status_STATUS_UNSPECIFIED
}

// msg is one message read back from a stream.
type msg struct {
	subject, msgID string
	ev             *feedloopv1.Event
}

// events reads every message of stream under filter, decoded as Events.
func (w *world) events(stream, filter string) []msg {
	w.t.Helper()
	var out []msg
	for _, m := range testkit.Messages(w.t, w.bus, stream, filter) {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			w.t.Fatalf("%s: %v", m.Subject, err)
		}
		out = append(out, msg{m.Subject, m.Header.Get(jetstream.MsgIDHeader), ev})
	}
	return out
}

// timers lists the SLA firings pending for team on item id, by deadline
// ("acknowledge", "resolve"). It reads the index's due set, whose members
// are "<kind>|<deadline>|<team>|<item>" (package sla).
func (w *world) timers(team, id string) map[string]bool {
	w.t.Helper()
	ms, err := w.rdb.ZRange(context.Background(), sla.DefaultKeyPrefix+"due", 0, -1).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range ms {
		if p := strings.Split(m, "|"); len(p) == 4 && p[2] == team && p[3] == id {
			out[p[1]] = true
		}
	}
	return out
}
