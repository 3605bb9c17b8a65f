package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamsConfig sizes the streams. The zero value is completed by defaults.
type StreamsConfig struct {
	// Replicas per stream: 1 on one node, 3 in a cluster.
	Replicas int
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Ids.
	DuplicateWindow time.Duration
	// MaxAge is how long FEEDBACK keeps events; 0 keeps them for ever (it is the record).
	MaxAge time.Duration
	// DLQMaxAge is how long dead letters are kept.
	DLQMaxAge time.Duration
}

// Defaults for StreamsConfig.
const (
	DefaultDuplicateWindow = 10 * time.Minute
	DefaultDLQMaxAge       = 14 * 24 * time.Hour
)

func (c StreamsConfig) withDefaults() StreamsConfig {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.DLQMaxAge == 0 {
		c.DLQMaxAge = DefaultDLQMaxAge
	}
	return c
}

// StreamConfigs returns the three stream definitions for c.
func StreamConfigs(c StreamsConfig) []jetstream.StreamConfig {
	c = c.withDefaults()
	return []jetstream.StreamConfig{
		{
			Name:        StreamFeedback,
			Description: "feedloop lifecycle events: the system of record",
			Subjects:    FeedbackSubjects,
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      c.MaxAge,
			Duplicates:  c.DuplicateWindow,
			Replicas:    c.Replicas,
		},
		{
			Name:        StreamSubmit,
			Description: "feedback submitted by company systems over NATS, consumed by intake",
			Subjects:    []string{AllSubmit},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.WorkQueuePolicy,
			Duplicates:  c.DuplicateWindow,
			Replicas:    c.Replicas,
		},
		{
			Name:        StreamDLQ,
			Description: "dead letters: messages a consumer could not handle",
			Subjects:    []string{AllDLQ},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      c.DLQMaxAge,
			Duplicates:  c.DuplicateWindow,
			Replicas:    c.Replicas,
		},
	}
}

// EnsureStreams creates the streams or updates them to c. Every service calls
// it at start, so it must be idempotent and safe to run concurrently.
func (b *Bus) EnsureStreams(ctx context.Context, c StreamsConfig) error {
	for _, sc := range StreamConfigs(c) {
		if _, err := b.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("bus: ensure stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// CheckStreams checks the streams exist, changing nothing: for a user that
// may not create them, and for commands, which must not resize them.
func (b *Bus) CheckStreams(ctx context.Context) error {
	for _, sc := range StreamConfigs(StreamsConfig{}) {
		if _, err := b.js.Stream(ctx, sc.Name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("bus: stream %s does not exist: start a service that creates it (NATS_STREAMS=ensure) first: %w", sc.Name, err)
			}
			return fmt.Errorf("bus: check stream %s: %w", sc.Name, err)
		}
	}
	return nil
}
