// Package sla keeps the router's SLA timers: for every assignment with a
// deadline, a pre-breach warning and a breach that climbs the route's
// escalation chain, each published once as a feedback.escalated.<team> event.
//
// The timers live in Redis (Index) and are derived only from events:
// Routed arms them, StatusChanged cancels or re-arms them, and Escalated
// (which the Scheduler publishes and then applies) moves them on. Applying
// an event twice changes nothing, so the index can be rebuilt by replaying
// the FEEDBACK stream into an empty Redis, and several router replicas can
// run a Scheduler each: a firing's event id is derived from the timer, so
// replicas that publish the same firing store one event (JetStream's
// duplicate window) and apply it once (compare-and-set on the timer).
package sla

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Deadline names, as Escalated.deadline carries them.
const (
	Acknowledge = "acknowledge"
	Resolve     = "resolve"
)

// Defaults applied to zero Config fields.
const (
	DefaultTick      = time.Second
	DefaultKeyPrefix = "feedloop:sla:"
)

// ErrMalformed is wrapped (as a bus.Permanent error) by Apply for an event
// no retry can make usable.
var ErrMalformed = errors.New("sla: malformed event")

// Config configures the index and its scheduler.
type Config struct {
	// WarnAt is the fraction of a deadline's window (deadline minus the
	// time the assignment was routed or reopened) after which a WARNING is
	// published, in [0, 1); 0 publishes no warnings.
	WarnAt float64
	// Tick is how often a scheduler looks for due timers (default 1s).
	Tick time.Duration
	// KeyPrefix starts every Redis key of the index (default
	// "feedloop:sla:"). On Redis Cluster make it a hash tag such as
	// "{feedloop:sla}:": a timer and its assignment change in one
	// transaction.
	KeyPrefix string
	// Logger for the scheduler; nil is slog.Default().
	Logger *slog.Logger
	// TracerProvider receives the scheduler's sla.fire spans; nil is the
	// global one.
	TracerProvider trace.TracerProvider
}

// Validate checks the fields a caller may get wrong.
func (c Config) Validate() error {
	var errs []error
	if c.WarnAt < 0 || c.WarnAt >= 1 {
		errs = append(errs, fmt.Errorf("sla: WarnAt must be at least 0 and below 1, got %g", c.WarnAt))
	}
	if c.Tick < 0 {
		errs = append(errs, fmt.Errorf("sla: Tick must not be negative, got %s", c.Tick))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
