package bus

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	backoff := []time.Duration{time.Second, 5 * time.Second}
	transient := errors.New("timeout")
	tests := []struct {
		name      string
		err       error
		delivered uint64
		wantDelay time.Duration // 0: no RetryError expected
	}{
		{"success passes", nil, 1, 0},
		{"permanent passes", Permanent(errors.New("bad")), 1, 0},
		{"first retry", transient, 1, time.Second},
		{"second retry", transient, 2, 5 * time.Second},
		{"last entry repeats", transient, 7, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Retry(backoff)(func(context.Context, *Msg) error { return tc.err })
			err := h(context.Background(), &Msg{NumDelivered: tc.delivered})
			var re *RetryError
			if tc.wantDelay == 0 {
				if errors.As(err, &re) {
					t.Fatalf("got RetryError %v, want pass-through", re)
				}
				if !errors.Is(err, tc.err) && err != tc.err {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if !errors.As(err, &re) || re.Delay != tc.wantDelay || !errors.Is(err, transient) {
				t.Fatalf("err = %#v, want RetryError after %s wrapping the cause", err, tc.wantDelay)
			}
		})
	}
}
