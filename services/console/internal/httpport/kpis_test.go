package httpport

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

// A mean time reads as people say it; no data is a dash, but a mean of a
// few seconds is data, not a dash.
func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    *durationpb.Duration
		want string
	}{
		{nil, "—"},
		{durationpb.New(0), "under 1 min"},
		{durationpb.New(20 * time.Second), "under 1 min"},
		{durationpb.New(42 * time.Minute), "42 min"},
		{durationpb.New(5*time.Hour + 30*time.Minute), "5.5 h"},
		{durationpb.New(72 * time.Hour), "3.0 days"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d.AsDuration(), got, tc.want)
		}
	}
}
