package readmodel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// TraceTTL is how long an item's trace context is kept: longer than any
// trace store keeps the trace it points to.
const TraceTTL = 30 * 24 * time.Hour

func (s *Store) traceKey(id string) string { return s.prefix + "trace:" + id }

// DumpRebuilt is Dump without the keys a rebuild does not restore: the
// items' trace contexts, which only the live projector writes (see
// docs/architecture.md, Observability). Two of them compare a live read
// model with one rebuilt from the stream.
func (s *Store) DumpRebuilt(ctx context.Context) (map[string]string, error) {
	d, err := s.Dump(ctx)
	if err != nil {
		return nil, err
	}
	for k := range d {
		if strings.HasPrefix(k, s.traceKey("")) {
			delete(d, k)
		}
	}
	return d, nil
}

// keepTraces remembers each traceparent (W3C) as the trace of its item
// (feedback id → traceparent), the trace intake started for it, in one
// round trip, for a batch that has nothing else to write. The first one
// set stays, as the stream keeps the first feedback.received of an item.
func (s *Store) keepTraces(ctx context.Context, traces map[string]string) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.queueTraces(ctx, p, traces)
		return nil
	})
	if err != nil {
		return fmt.Errorf("readmodel: set traces of %d items: %w", len(traces), err)
	}
	return nil
}

// queueTraces queues keepTraces' commands on p.
func (s *Store) queueTraces(ctx context.Context, p redis.Pipeliner, traces map[string]string) {
	for id, tp := range traces {
		if id != "" && tp != "" {
			p.SetNX(ctx, s.traceKey(id), tp, TraceTTL)
		}
	}
}

// ApplyTraced is ApplyBatch for events as they come off the stream:
// traceparents[i] is the traceparent header of evs[i]'s message, and a
// Received event's is remembered as its item's trace, which team actions
// and answers link to: in the batch's transaction (no round trip of its
// own), or on its own when the batch changes nothing (a redelivery).
// more are further traces to remember so (feedback id → traceparent): of
// items whose received event was folded before without its message's
// header (applied at once, rebuilt from the classified event).
func (s *Store) ApplyTraced(ctx context.Context, evs []*feedloopv1.Event, traceparents []string, more map[string]string) ([]bool, error) {
	traces := maps.Clone(more)
	if traces == nil {
		traces = map[string]string{}
	}
	for i, ev := range evs {
		if ev.GetReceived() == nil || traceparents[i] == "" {
			continue
		}
		if _, ok := traces[ev.GetFeedbackId()]; !ok {
			traces[ev.GetFeedbackId()] = traceparents[i]
		}
	}
	return s.applyBatch(ctx, evs, traces)
}

// Trace returns the traceparent of item id's trace, "" when unknown (an
// item older than TraceTTL, or from before a rebuild).
func (s *Store) Trace(ctx context.Context, id string) (string, error) {
	tp, err := s.rdb.Get(ctx, s.traceKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("readmodel: trace of %s: %w", id, err)
	}
	return tp, nil
}
