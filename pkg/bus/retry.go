package bus

import (
	"context"
	"time"
)

// Retry turns a transient handler error into a RetryError whose delay follows
// backoff by delivery count, so the runner naks with that delay. Permanent
// errors pass through untouched.
func Retry(backoff []time.Duration) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			err := next(ctx, m)
			if err == nil || IsPermanent(err) {
				return err
			}
			return &RetryError{Err: err, Delay: backoffFor(backoff, m.NumDelivered)}
		}
	}
}

// backoffFor returns the delay after the n-th delivery (1-based); the last
// entry repeats.
func backoffFor(backoff []time.Duration, delivered uint64) time.Duration {
	if len(backoff) == 0 {
		return time.Second
	}
	i := int(delivered) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(backoff) {
		i = len(backoff) - 1
	}
	return backoff[i]
}
