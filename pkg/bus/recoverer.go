package bus

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Recoverer turns a handler panic into a permanent error, so one poison
// message is dead-lettered instead of crashing the service.
func Recoverer(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.ErrorContext(ctx, "bus: handler panicked", "subject", m.Subject, "panic", r, "stack", string(debug.Stack()))
					err = Permanent(fmt.Errorf("handler panicked: %v", r))
				}
			}()
			return next(ctx, m)
		}
	}
}
