package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// TraceTTL is how long an item's trace context is kept: longer than any
// trace store keeps the trace it points to.
const TraceTTL = 30 * 24 * time.Hour

func (s *Store) traceKey(id string) string { return s.prefix + "trace:" + id }

// SetTrace remembers traceparent (W3C) as the trace of item id: the trace
// intake started for it. The first one set stays, as the stream keeps the
// first feedback.received of an item.
func (s *Store) SetTrace(ctx context.Context, id, traceparent string) error {
	return s.SetTraces(ctx, map[string]string{id: traceparent})
}

// SetTraces is SetTrace for several items (feedback id → traceparent), in
// one round trip.
func (s *Store) SetTraces(ctx context.Context, traces map[string]string) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, tp := range traces {
			if id != "" && tp != "" {
				p.SetNX(ctx, s.traceKey(id), tp, TraceTTL)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("readmodel: set traces of %d items: %w", len(traces), err)
	}
	return nil
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
