// Package natsport takes submissions from the NATS work queue
// feedback.submit.<source>: each message is a protobuf-encoded Feedback.
// A message that can never be accepted is dead-lettered at once with the
// violations in its error; a transient failure is retried.
package natsport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/services/intake/internal/app"
	"github.com/feedloop/feedloop/services/intake/internal/decode"
	"github.com/feedloop/feedloop/services/intake/validate"
)

// Durable is the consumer name shared by every intake replica; it also
// names the dead-letter subject feedback.dlq.intake.
const Durable = bus.ConsumerIntake

// ConsumerConfig is the durable consumer on the submit stream.
func ConsumerConfig(concurrency int) bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Stream:         bus.StreamSubmit,
		Durable:        Durable,
		FilterSubjects: []string{bus.AllSubmit},
		Concurrency:    concurrency,
	}
}

// Handler returns the bus handler for submissions.
func Handler(acc *app.Acceptor, log *slog.Logger) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) error {
		fb, vs := decode.Feedback(m.Data)
		if len(vs) > 0 {
			return bus.Permanent(fmt.Errorf("submission on %s: %w", m.Subject, app.Invalid(vs)))
		}
		// The subject names the source, so a system may leave it out of the
		// payload; when both are given they must agree, or one system could
		// file feedback under another's name.
		src := bus.LastToken(m.Subject)
		switch fb.GetSource() {
		case "":
			fb.Source = src
		case src:
		default:
			return bus.Permanent(fmt.Errorf("submission on %s: %w", m.Subject, app.Invalid([]validate.Violation{{
				Field:       validate.Prefix + ".source",
				Description: fmt.Sprintf("must match the subject's source %q or be empty, got %q", src, fb.GetSource()),
			}})))
		}
		res, err := acc.Submit(ctx, fb)
		switch {
		case err == nil:
			log.DebugContext(ctx, "intake: nats submission handled", "subject", m.Subject, "feedback_id", res.FeedbackID, "duplicate", res.Duplicate)
			return nil
		case errors.Is(err, app.ErrInvalid):
			return bus.Permanent(fmt.Errorf("submission on %s: %w", m.Subject, err))
		default:
			// Redis or the bus is down: retry with backoff.
			return fmt.Errorf("submission on %s: %w", m.Subject, err)
		}
	}
}
