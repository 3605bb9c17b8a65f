package readmodel

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/rebuild"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// Applier folds one event into some derived state (the read model, the SLA
// timer index…). Replay feeds every Applier each event in stream order.
type Applier interface {
	Apply(ctx context.Context, ev *feedloopv1.Event) error
}

// BatchApplier is an Applier that folds several events at once, in the
// order given, as one Apply after the other would (ReplayByItem hands each
// worker's waiting events over together); hs are the messages' headers.
type BatchApplier interface {
	Applier
	ApplyEvents(ctx context.Context, evs []*feedloopv1.Event, hs []nats.Header) error
}

// ApplierFunc adapts a function to Applier.
type ApplierFunc func(ctx context.Context, ev *feedloopv1.Event) error

// Apply calls f.
func (f ApplierFunc) Apply(ctx context.Context, ev *feedloopv1.Event) error { return f(ctx, ev) }

// HeaderApplier is an Applier that also wants the message's headers.
// Replay calls ApplyHeader instead of Apply on such an applier.
type HeaderApplier interface {
	Applier
	ApplyHeader(ctx context.Context, ev *feedloopv1.Event, h nats.Header) error
}

// Applier is the Store as an Applier (its Apply also says whether the event
// changed anything, which replay does not need). Given the headers, it
// also restores the item's trace from a Received event, as the projector
// sets it.
func (s *Store) Applier() Applier { return storeApplier{s} }

type storeApplier struct{ s *Store }

func (a storeApplier) Apply(ctx context.Context, ev *feedloopv1.Event) error {
	_, err := a.s.Apply(ctx, ev)
	return err
}

func (a storeApplier) ApplyEvents(ctx context.Context, evs []*feedloopv1.Event, hs []nats.Header) error {
	tps := make([]string, len(hs))
	for i, h := range hs {
		tps[i] = h.Get("traceparent")
	}
	_, err := a.s.ApplyTraced(ctx, evs, tps, nil)
	return err
}

func (a storeApplier) ApplyHeader(ctx context.Context, ev *feedloopv1.Event, h nats.Header) error {
	return a.ApplyEvents(ctx, []*feedloopv1.Event{ev}, []nats.Header{h})
}

// RebuildWorkers is how many items a rebuild folds at once.
const RebuildWorkers = 8

// Rebuild deletes every read-model key and replays stream from its first
// message to the last one stored when it starts, through the Store and then
// through also (e.g. the SLA index, which must reset its own state first),
// RebuildWorkers items at a time, each item's events in stream order
// (ReplayByItem). It returns how many events it replayed.
//
// The Store is empty and then partial while it runs, so nothing else may
// write meanwhile (a live projector applying newer events could fold an
// item's events out of order): the router runs it under a rebuild.Gate,
// on a Fenced store, while live writers wait for the ready key.
func (s *Store) Rebuild(ctx context.Context, js jetstream.JetStream, stream string, also ...Applier) (int, error) {
	deleted, err := s.Reset(ctx)
	if err != nil {
		return 0, err
	}
	s.log.InfoContext(ctx, "read model reset", "prefix", s.prefix, "keys_deleted", deleted)
	n, err := ReplayByItem(ctx, js, stream, s.log, RebuildWorkers, append([]Applier{s.Applier()}, also...)...)
	if err != nil {
		return n, fmt.Errorf("readmodel: rebuild: %w", err)
	}
	s.log.InfoContext(ctx, "read model rebuilt", "stream", stream, "events", n)
	return n, nil
}

// Reset deletes every key under the Store's prefix (SCAN + UNLINK) and
// returns how many it deleted. Other keys in the same Redis are untouched.
func (s *Store) Reset(ctx context.Context) (int, error) {
	n := 0
	it := s.rdb.Scan(ctx, 0, s.match(), 1000).Iterator()
	batch := make([]string, 0, 500)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.rdb.Unlink(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("readmodel: reset: unlink: %w", err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for it.Next(ctx) {
		batch = append(batch, it.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return n, fmt.Errorf("readmodel: reset: scan: %w", err)
	}
	return n, flush()
}

// match is the SCAN pattern of the Store's keys, the prefix's glob
// characters escaped.
func (s *Store) match() string {
	var b strings.Builder
	for _, r := range s.prefix {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + "*"
}

// Replay reads stream (rebuild.Replay, an ordered consumer) from its first message to
// the last one stored when Replay starts and hands each event to every
// applier, in order. A message that is not an event is logged and skipped
// (the live consumer dead-letters it); an applier's error stops the replay.
// It returns how many events were applied.
func Replay(ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger, appliers ...Applier) (int, error) {
	return replay(ctx, js, stream, log, func(ev *feedloopv1.Event, h nats.Header) error {
		return applyAll(ctx, ev, h, appliers)
	})
}

// replay reads stream as Replay describes and hands each event to handle;
// it returns how many handle took.
func replay(ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger, handle func(*feedloopv1.Event, nats.Header) error) (int, error) {
	if log == nil {
		log = slog.Default()
	}
	n := 0
	_, err := rebuild.Replay(ctx, js, stream, "", "", func(ctx context.Context, m jetstream.Msg) error {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data(), ev); err != nil || ev.GetId() == "" {
			seq := uint64(0)
			if md, merr := m.Metadata(); merr == nil {
				seq = md.Sequence.Stream
			}
			log.WarnContext(ctx, "replay: skipping a message that is not an event",
				"stream", stream, "seq", seq, "subject", m.Subject(), "error", err)
			return nil
		}
		if err := handle(ev, m.Headers()); err != nil {
			return fmt.Errorf("event %s: %w", ev.GetId(), err)
		}
		n++
		return nil
	})
	return n, err
}

// ReplayByItem is Replay with the events of different feedback items
// applied concurrently by workers goroutines, each item's events by one of
// them, in stream order: what the projector guarantees too, and all the
// folds need (an item's state depends only on its own events; counters and
// indexes shared by items are commutative). The first applier error stops
// the replay. It returns how many events were applied.
func ReplayByItem(ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger, workers int, appliers ...Applier) (int, error) {
	if workers <= 1 {
		return Replay(ctx, js, stream, log, appliers...)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type job struct {
		ev *feedloopv1.Event
		h  nats.Header
	}
	var (
		wg      sync.WaitGroup
		applied atomic.Int64
		queues  = make([]chan job, workers)
	)
	for i := range queues {
		queues[i] = make(chan job, 64)
		wg.Go(func() {
			// A worker folds what waits in its queue together (up to
			// rebuildBatch events): one transaction per batch and applier
			// instead of one per event.
			var evs []*feedloopv1.Event
			var hs []nats.Header
			for j := range queues[i] {
				evs, hs = append(evs[:0], j.ev), append(hs[:0], j.h)
			more:
				for len(evs) < rebuildBatch {
					select {
					case next, ok := <-queues[i]:
						if !ok {
							break more
						}
						evs, hs = append(evs, next.ev), append(hs, next.h)
					default:
						break more
					}
				}
				if ctx.Err() != nil {
					continue // drain after a failure
				}
				if err := applyEvents(ctx, evs, hs, appliers); err != nil {
					cancel(err)
					continue
				}
				applied.Add(int64(len(evs)))
			}
		})
	}
	_, err := replay(ctx, js, stream, log, func(ev *feedloopv1.Event, h nats.Header) error {
		f := fnv.New32a()
		f.Write([]byte(ev.GetFeedbackId()))
		select {
		case queues[f.Sum32()%uint32(workers)] <- job{ev, h}:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return int(applied.Load()), fmt.Errorf("replay %s: %w", stream, cause)
	}
	if err != nil {
		return int(applied.Load()), err
	}
	return int(applied.Load()), nil
}

// rebuildBatch bounds the events a replay worker folds together.
const rebuildBatch = 64

// applyEvents hands evs to every applier, all of them at once to a
// BatchApplier, one by one to the others.
func applyEvents(ctx context.Context, evs []*feedloopv1.Event, hs []nats.Header, appliers []Applier) error {
	for _, a := range appliers {
		if ba, ok := a.(BatchApplier); ok && len(evs) > 1 {
			if err := ba.ApplyEvents(ctx, evs, hs); err != nil {
				return fmt.Errorf("%d events from %s: %w", len(evs), evs[0].GetId(), err)
			}
			continue
		}
		for i, ev := range evs {
			if err := applyAll(ctx, ev, hs[i], []Applier{a}); err != nil {
				return fmt.Errorf("event %s: %w", ev.GetId(), err)
			}
		}
	}
	return nil
}

func applyAll(ctx context.Context, ev *feedloopv1.Event, h nats.Header, appliers []Applier) error {
	for _, a := range appliers {
		var err error
		if ha, ok := a.(HeaderApplier); ok {
			err = ha.ApplyHeader(ctx, ev, h)
		} else {
			err = a.Apply(ctx, ev)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Dump returns every read-model key with its value in a normal form, so two
// states can be compared: strings as they are (items as protobuf text), sets
// as sorted members, sorted sets as "member score" in order, hashes as
// sorted "field=value", one per line.
func (s *Store) Dump(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	it := s.rdb.Scan(ctx, 0, s.match(), 1000).Iterator()
	for it.Next(ctx) {
		k := it.Val()
		v, err := s.dumpKey(ctx, k)
		if errors.Is(err, redis.Nil) {
			continue // gone since the scan
		}
		if err != nil {
			return nil, fmt.Errorf("readmodel: dump %s: %w", k, err)
		}
		out[k] = v
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("readmodel: dump: scan: %w", err)
	}
	return out, nil
}

func (s *Store) dumpKey(ctx context.Context, k string) (string, error) {
	typ, err := s.rdb.Type(ctx, k).Result()
	if err != nil {
		return "", err
	}
	var lines []string
	switch typ {
	case "none":
		return "", redis.Nil
	case "string":
		v, err := s.rdb.Get(ctx, k).Bytes()
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(k, s.itemKey("")) {
			return string(v), nil
		}
		it := &feedloopv1.Item{}
		if err := proto.Unmarshal(v, it); err != nil {
			return "", err
		}
		return prototext.Format(it), nil
	case "set":
		if lines, err = s.rdb.SMembers(ctx, k).Result(); err != nil {
			return "", err
		}
		slices.Sort(lines)
	case "zset":
		zs, err := s.rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		if err != nil {
			return "", err
		}
		for _, z := range zs {
			lines = append(lines, fmt.Sprint(z.Member)+" "+strconv.FormatFloat(z.Score, 'f', -1, 64))
		}
	case "hash":
		h, err := s.rdb.HGetAll(ctx, k).Result()
		if err != nil {
			return "", err
		}
		for f, v := range h {
			lines = append(lines, f+"="+v)
		}
		slices.Sort(lines)
	default:
		return "", fmt.Errorf("unexpected type %s", typ)
	}
	return strings.Join(lines, "\n"), nil
}
