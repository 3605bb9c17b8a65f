package bus

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

func TestRecovererTurnsPanicIntoPermanentError(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := Recoverer(log)(func(context.Context, *Msg) error { panic("nil map") })
	err := h(context.Background(), &Msg{Subject: "feedback.received"})
	if err == nil || !IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	ok := Recoverer(log)(func(context.Context, *Msg) error { return nil })
	if err := ok(context.Background(), &Msg{}); err != nil {
		t.Fatalf("no panic: err = %v", err)
	}
}
