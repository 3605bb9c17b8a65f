package router_test

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/router"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
	"github.com/feedloop/feedloop/services/router/internal/sla"
)

// rebuiltLog is what a gate logs once per completed rebuild.
const rebuiltLog = "rebuild: router read model rebuilt"

// second starts another replica on the same NATS and Redis.
func (h *harness) second() *router.Service {
	h.t.Helper()
	cfg := testConfig(h.routes, h.tokens)
	cfg.Concurrency, cfg.ReloadInterval, cfg.SLATick, cfg.SLAWarnAt = 2, 100*time.Millisecond, 50*time.Millisecond, 0.5
	svc, err := router.New(cfg, h.infra)
	if err != nil {
		h.t.Fatal(err)
	}
	testkit.Run(h.t, svc.Run)
	return svc
}

// lastSeq is the FEEDBACK stream's last sequence.
func (h *harness) lastSeq() uint64 {
	h.t.Helper()
	s, err := h.js.Stream(h.t.Context(), bus.StreamFeedback)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.LastSeq
}

// settled waits until the routing consumer and the projector have acked
// everything the stream holds, and the stream stopped growing.
func (h *harness) settled() {
	h.t.Helper()
	testkit.Eventually(h.t, "router consumers caught up with the stream", func() bool {
		last := h.lastSeq()
		for _, durable := range []string{"router", router.ProjectorDurable} {
			cons, err := h.js.Consumer(h.t.Context(), bus.StreamFeedback, durable)
			if err != nil {
				return false
			}
			info, err := cons.Info(h.t.Context())
			if err != nil || info.NumAckPending > 0 || info.NumPending > 0 || info.AckFloor.Stream < info.Delivered.Stream {
				return false
			}
		}
		return h.lastSeq() == last
	})
}

// dumps are the read model's and the SLA index's keys in normal form.
func dumps(t *testing.T, rdb redis.UniversalClient) (map[string]string, map[string]string) {
	t.Helper()
	rm, err := readmodel.New(rdb)
	if err != nil {
		t.Fatal(err)
	}
	// The SLA index keeps strings and a sorted set: the read model's Dump
	// normalises those under any prefix.
	idx, err := readmodel.New(rdb, readmodel.WithPrefix(sla.DefaultKeyPrefix))
	if err != nil {
		t.Fatal(err)
	}
	a, err := rm.Dump(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := idx.Dump(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// freshRebuild replays the stream into an empty Redis of its own.
func (h *harness) freshRebuild() (map[string]string, map[string]string) {
	h.t.Helper()
	ref := testkit.RedisClient(h.t)
	quiet := slog.New(slog.DiscardHandler) // its rebuild is not the router's
	n, err := router.Rebuild(h.t.Context(), &lifecycle.Infra{Bus: h.bus, Redis: ref, Log: quiet}, 0.5)
	if err != nil || n == 0 {
		h.t.Fatalf("reference rebuild = %d, %v", n, err)
	}
	return dumps(h.t, ref)
}

func diffKeys(got, want map[string]string) string {
	var b strings.Builder
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	n := 0
	for _, k := range sorted {
		g, gok := got[k]
		w, wok := want[k]
		if gok == wok && g == w {
			continue
		}
		if n++; n > 10 {
			b.WriteString("…\n")
			break
		}
		switch {
		case !gok:
			fmt.Fprintf(&b, "missing %s\n", k)
		case !wok:
			fmt.Fprintf(&b, "extra %s = %.200q\n", k, g)
		default:
			gl, wl := strings.Split(g, "\n"), strings.Split(w, "\n")
			i := 0
			for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
				i++
			}
			fmt.Fprintf(&b, "%s, from line %d:\n got  %.300q\n want %.300q\n", k, i+1, strings.Join(gl[i:], "\n"), strings.Join(wl[i:], "\n"))
		}
	}
	return b.String()
}

var flushTopics = [][]string{{"billing"}, {"delivery"}, {"billing", "delivery"}, {"account"}}

// TestFlushMidStreamIsRebuiltOnce flushes Redis in the middle of a steady
// stream of items (their received events applied at once by the routing
// consumer, or by the projector alone) through two router replicas: exactly one of them
// rebuilds, the other waits, and afterwards the read model and the SLA
// timers equal a fresh rebuild from the stream, with every item in the
// lists of the teams it was routed to.
func TestFlushMidStreamIsRebuiltOnce(t *testing.T) {
	h := start(t)
	h.second()
	const items = 120
	ids := make([]string, items)
	for i := range items {
		ids[i] = fmt.Sprintf("fb-flush-%03d", i)
		// Every third from a classifier older than Classified.received, as
		// in a rolling upgrade: its received event is the projector's alone.
		h.submit(ids[i], fmt.Sprintf("%032x", i+1), item{topics: flushTopics[i%len(flushTopics)], olderClassifier: i%3 == 0})
		if i == items/2 {
			// Let the projectors fold what came so far, so the flush loses it.
			h.settled()
			if err := h.infra.Redis.FlushAll(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond) // a steady stream, not one burst
	}
	h.settled()
	testkit.Eventually(t, "read model ready", func() bool {
		_, err := h.team("billing").get(ids[0])
		return err == nil
	})

	gotRM, gotSLA := dumps(t, h.infra.Redis)
	wantRM, wantSLA := h.freshRebuild()
	if d := diffKeys(gotRM, wantRM); d != "" {
		t.Errorf("read model after the flush differs from a fresh rebuild:\n%s", d)
	}
	if d := diffKeys(gotSLA, wantSLA); d != "" {
		t.Errorf("SLA index after the flush differs from a fresh rebuild:\n%s", d)
	}

	// Every item is in the open list of every team it was routed to, and
	// its SLA timers are armed.
	store, err := readmodel.New(h.infra.Redis)
	if err != nil {
		t.Fatal(err)
	}
	open := map[string][]string{}
	for _, team := range []string{"billing", "logistics", "triage"} {
		list, _, err := store.List(t.Context(), team, nil, "", 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			open[team] = append(open[team], s.GetFeedbackId())
		}
	}
	due, err := h.infra.Redis.ZRange(t.Context(), sla.DefaultKeyPrefix+"due", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		rs := h.routedFor(id)
		if len(rs) == 0 {
			t.Errorf("%s was never routed", id)
		}
		for _, r := range rs {
			team := r.ev.GetRouted().GetAssignment().GetTeam()
			if !slices.Contains(open[team], id) {
				t.Errorf("%s is missing from %s's open list", id, team)
			}
			if !slices.ContainsFunc(due, func(m string) bool { return strings.HasSuffix(m, "|"+team+"|"+id) }) {
				t.Errorf("%s has no SLA timer for %s", id, team)
			}
		}
	}
	// One rebuild at the first start (empty Redis), one after the flush:
	// never both replicas.
	if n := strings.Count(h.logs.String(), rebuiltLog); n != 2 {
		t.Errorf("%d rebuilds logged across both replicas, want 2 (start, flush):\n%s", n, h.logs.String())
	}
}

// TestRebuildPausesAndServesUnavailable holds the rebuild lock as another
// replica would while it rebuilds: the team API answers Unavailable rather
// than an empty model, the projector holds new items, and once the lock is
// free the router rebuilds by itself (an empty Redis, a non-empty stream)
// and every item is there.
func TestRebuildPausesAndServesUnavailable(t *testing.T) {
	h := start(t)
	billing := h.team("billing")
	h.submit("fb-before", statusToken, item{topics: []string{"billing"}})
	h.settled()
	if _, err := billing.get("fb-before"); err != nil {
		t.Fatal(err)
	}
	h.stop()

	rdb := h.infra.Redis
	if err := rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(t.Context(), router.RebuildPrefix+"lock", "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	h.run()
	billing = h.team("billing")
	_, err := billing.get("fb-before")
	wantCode(t, "Get while another replica rebuilds", err, codes.Unavailable, "being rebuilt")

	h.submit("fb-during", "", item{topics: []string{"billing"}})
	// Routing never waits for the read model: once fb-during is routed,
	// the projector has had its events to fold (and must hold them).
	testkit.Eventually(t, "fb-during routed", func() bool { return len(h.events(bus.AllRouted, "fb-during")) == 1 })
	if n, _ := rdb.Exists(t.Context(), "rm:item:fb-during").Result(); n != 0 {
		t.Fatal("the projector wrote to the read model while it was being rebuilt")
	}

	if err := rdb.Del(t.Context(), router.RebuildPrefix+"lock").Err(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "rebuilt after the lock was freed", func() bool {
		_, err := billing.get("fb-during")
		return err == nil
	})
	h.settled()
	r, err := billing.get("fb-before")
	if err != nil || r.GetItem().GetFeedback().GetText() == "" || len(r.GetItem().GetAssignments()) != 1 {
		t.Fatalf("item from before the flush after the rebuild: %v, %v", r.GetItem(), err)
	}
	gotRM, gotSLA := dumps(t, rdb)
	wantRM, wantSLA := h.freshRebuild()
	if d := diffKeys(gotRM, wantRM) + diffKeys(gotSLA, wantSLA); d != "" {
		t.Errorf("state differs from a fresh rebuild:\n%s", d)
	}
}
