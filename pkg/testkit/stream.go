package testkit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/feedloop/feedloop/pkg/bus"
)

// Messages returns every message stored in stream whose subject matches
// filter (a NATS subject filter: "feedback.received", "feedback.routed.*",
// "feedback.>"), in stream order. Tests read what a service published this
// way, from the stream itself rather than through a subscription that
// could miss what came before it.
func Messages(t testing.TB, b *bus.Bus, stream, filter string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := b.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatalf("testkit: stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("testkit: stream %s info: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted, or taken from a work queue
		}
		if err != nil {
			t.Fatalf("testkit: %s message %d: %v", stream, seq, err)
		}
		if SubjectMatches(filter, m.Subject) {
			out = append(out, m)
		}
	}
	return out
}

// SubjectMatches reports whether subject matches the NATS filter, with "*"
// for one token and a final ">" for one or more.
func SubjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return i == len(ft)-1 && len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}
