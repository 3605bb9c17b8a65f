package bus_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
)

func TestDeadLetter(t *testing.T) {
	b := testkit.Bus(t)
	fail := func(err error) bus.Handler {
		return func(context.Context, *bus.Msg) error { return err }
	}
	msg := func(delivered uint64) *bus.Msg {
		h := nats.Header{}
		h.Set(nats.MsgIdHdr, "orig")
		h.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		return &bus.Msg{Subject: bus.SubjectReceived, Data: []byte("x"), Header: h, Stream: bus.StreamFeedback, StreamSeq: delivered * 10, NumDelivered: delivered}
	}
	mw := bus.DeadLetter(b, "dl", 3)

	// A transient error before the last delivery is only passed on.
	if err := mw(fail(errors.New("later")))(ctxT(t), msg(1)); err == nil || subjectCount(t, b, bus.StreamDLQ, bus.DLQSubject("dl")) != 0 {
		t.Fatalf("transient error on delivery 1 was dead-lettered (err %v)", err)
	}
	// A permanent error is dead-lettered at once.
	if err := mw(fail(bus.Permanent(errors.New("bad field"))))(ctxT(t), msg(1)); err == nil {
		t.Fatal("dead-lettered message reported success")
	}
	// The last delivery of a transient error is dead-lettered too.
	if err := mw(fail(errors.New("still down")))(ctxT(t), msg(3)); err == nil {
		t.Fatal("dead-lettered message reported success")
	}
	if n := subjectCount(t, b, bus.StreamDLQ, bus.DLQSubject("dl")); n != 2 {
		t.Fatalf("%d dead letters, want 2", n)
	}
	dl := lastMsg(t, b, bus.StreamDLQ, bus.DLQSubject("dl"))
	if dl.Header.Get(bus.HeaderDLQError) != "still down" || dl.Header.Get(bus.HeaderDLQSequence) != "30" {
		t.Errorf("headers = %v", dl.Header)
	}
	if dl.Header.Get("traceparent") == "" {
		t.Error("trace context not kept on the dead letter")
	}
	if dl.Header.Get(nats.MsgIdHdr) == "orig" {
		t.Error("dead letter reuses the original Nats-Msg-Id")
	}
	// Success passes through untouched.
	if err := mw(fail(nil))(ctxT(t), msg(3)); err != nil {
		t.Fatalf("success: %v", err)
	}
}

func TestDeadLetterKeepsMessageWhenCopyFails(t *testing.T) {
	b := testkit.Bus(t)
	if err := b.JetStream().DeleteStream(ctxT(t), bus.StreamDLQ); err != nil {
		t.Fatal(err)
	}
	mw := bus.DeadLetter(b, "dl", 1)
	bad := bus.Permanent(errors.New("bad"))
	err := mw(func(context.Context, *bus.Msg) error { return bad })(ctxT(t), &bus.Msg{Subject: "s", Header: nats.Header{}, NumDelivered: 1})
	if err == nil || !errors.Is(err, bus.ErrNotStored) {
		t.Fatalf("err = %v, want the copy failure so the message is retried", err)
	}
}
