package stack_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/telemetry"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// spans records every span of this test binary: telemetry.Setup installs it
// for the whole in-process stack, as `feedloop dev` installs its exporter.
var spans = tracetest.NewSpanRecorder()

func TestMain(m *testing.M) {
	shutdown, err := telemetry.Setup(context.Background(), "feedloop-test", telemetry.WithSpanProcessor(spans))
	if err != nil {
		fmt.Fprintln(os.Stderr, "telemetry:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = shutdown(context.Background())
	os.Exit(code)
}

// traced is the recorded spans of one trace, by span id.
type traced map[trace.SpanID]sdktrace.ReadOnlySpan

func traceOf(id trace.TraceID) traced {
	out := traced{}
	for _, s := range spans.Ended() {
		if s.SpanContext().TraceID() == id {
			out[s.SpanContext().SpanID()] = s
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

func hasEvent(s sdktrace.ReadOnlySpan, name string) bool {
	return slices.ContainsFunc(s.Events(), func(e sdktrace.Event) bool { return e.Name == name })
}

// under reports whether s descends from a span of tr matching pred.
func (tr traced) under(s sdktrace.ReadOnlySpan, pred func(sdktrace.ReadOnlySpan) bool) bool {
	for p, ok := tr[s.Parent().SpanID()]; ok; p, ok = tr[p.Parent().SpanID()] {
		if pred(p) {
			return true
		}
	}
	return false
}

func (tr traced) find(pred func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tr {
		if pred(s) {
			out = append(out, s)
		}
	}
	return out
}

func consumerOf(group string) func(sdktrace.ReadOnlySpan) bool {
	return func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindConsumer && attr(s, "messaging.consumer.group.name") == group
	}
}

func isRedis(s sdktrace.ReadOnlySpan) bool {
	return s.SpanKind() == trace.SpanKindClient && (attr(s, "db.system") == "redis" || attr(s, "db.system.name") == "redis")
}

// rootFor finds the server span named method whose feedloop.feedback_id is
// fid and that none of the earlier roots is.
func rootFor(t *testing.T, method, fid string, not ...trace.TraceID) sdktrace.ReadOnlySpan {
	t.Helper()
	var root sdktrace.ReadOnlySpan
	testkit.Eventually(t, method+" span of "+fid, func() bool {
		for _, s := range spans.Ended() {
			if s.Name() == method && s.SpanKind() == trace.SpanKindServer && attr(s, "feedloop.feedback_id") == fid &&
				!slices.Contains(not, s.SpanContext().TraceID()) {
				root = s
				return true
			}
		}
		return false
	})
	return root
}

// idleAll is idle, the projector included.
func (e *env) idleAll(t *testing.T) {
	t.Helper()
	e.idle(t)
	testkit.Eventually(t, "the projector to settle", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := e.s.Bus.JetStream().Consumer(ctx, bus.StreamFeedback, "router-projector")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// One submitted item is one trace: intake's gRPC span is its root, and the
// classifier, router (routing and projector), and notifier spans, with the
// Redis, webhook and SMTP calls they make, all descend from it through the
// NATS messages, each consumer span the child of the producer span of the
// message it handles. A resubmission is its own short trace that says it
// was ignored; a team action starts its own trace linked to the item's.
func TestOneTracePerItem(t *testing.T) {
	e := startLoop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fb := &feedloopv1.Feedback{
		Source: "survey-tool", ExternalId: "trace-1", Channel: feedloopv1.Channel_CHANNEL_SURVEY,
		Customer: &feedloopv1.Customer{Id: "c-trace", Name: "Ada", Email: "ada@example.com", Locale: "en",
			Consent: &feedloopv1.Consent{Contact: true, Survey: true}},
		Subject: "Late parcel",
		Text:    "My parcel arrived late again, the delivery took two weeks.",
		Nps:     int32p(2),
	}
	resp, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	fid := resp.GetFeedbackId()
	testkit.Eventually(t, "the customer's acknowledgement", func() bool { return len(e.customer.find(fid, "received")) == 1 })
	testkit.Eventually(t, "the acknowledgement email", func() bool { return len(e.smtp.To("ada@example.com")) == 1 })
	e.idleAll(t)

	root := rootFor(t, "feedloop.v1.IntakeService/Submit", fid)
	if root.Parent().IsValid() {
		t.Fatalf("intake's span has a parent %s: want it to be the root", root.Parent().SpanID())
	}
	tr := traceOf(root.SpanContext().TraceID())

	// Every span hangs off another span of the trace: no orphans.
	for _, s := range tr {
		if s != root {
			if _, ok := tr[s.Parent().SpanID()]; !ok {
				t.Errorf("span %q has a parent outside the trace", s.Name())
			}
		}
	}
	// Each consumer span is the child of the producer span of its message.
	for _, s := range tr.find(func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindConsumer }) {
		p := tr[s.Parent().SpanID()]
		if p == nil || p.SpanKind() != trace.SpanKindProducer || attr(p, "messaging.message.id") != attr(s, "messaging.message.id") ||
			p.Name() != "send "+attr(s, "messaging.destination.name") {
			t.Errorf("consumer span %q (group %s) is not the child of its message's producer span", s.Name(), attr(s, "messaging.consumer.group.name"))
		}
		for _, k := range []string{"messaging.system", "messaging.destination.name", "messaging.operation.type", "messaging.message.id"} {
			if attr(s, k) == "" {
				t.Errorf("consumer span %q lacks %s", s.Name(), k)
			}
		}
	}
	// All four services are in it.
	for _, group := range []string{"classifier", "router", "router-projector", "notifier"} {
		if len(tr.find(consumerOf(group))) == 0 {
			t.Errorf("no %s consumer span in the item's trace", group)
		}
	}
	for _, subject := range []string{bus.SubjectReceived, bus.SubjectClassified, bus.RoutedSubject("logistics"), bus.RoutedSubject("customer-success"), bus.SubjectNotified} {
		if len(tr.find(func(s sdktrace.ReadOnlySpan) bool {
			return s.SpanKind() == trace.SpanKindProducer && s.Name() == "send "+subject && attr(s, "messaging.system") == "nats" &&
				attr(s, "messaging.operation.type") == "send"
		})) == 0 {
			t.Errorf("no producer span for %s in the item's trace", subject)
		}
	}
	routed := tr.find(func(s sdktrace.ReadOnlySpan) bool { return consumerOf("router")(s) && attr(s, "feedloop.teams") != "" })
	if len(routed) != 1 || attr(routed[0], "feedloop.feedback_id") != fid {
		t.Errorf("router span lacks the feedback id and teams: %v", routed)
	}
	// The calls the services make are descendants too.
	isIntake := func(s sdktrace.ReadOnlySpan) bool { return s == root }
	if len(tr.find(func(s sdktrace.ReadOnlySpan) bool { return isRedis(s) && tr.under(s, isIntake) })) == 0 {
		t.Error("no Redis span under intake (idempotency key)")
	}
	for what, pred := range map[string]func(sdktrace.ReadOnlySpan) bool{
		"Redis": isRedis,
		"webhook": func(s sdktrace.ReadOnlySpan) bool {
			return s.SpanKind() == trace.SpanKindClient && attr(s, "http.request.method") == "POST"
		},
		"SMTP": func(s sdktrace.ReadOnlySpan) bool {
			return s.Name() == "smtp send" && s.SpanKind() == trace.SpanKindClient
		},
	} {
		if len(tr.find(func(s sdktrace.ReadOnlySpan) bool { return pred(s) && tr.under(s, consumerOf("notifier")) })) == 0 {
			t.Errorf("no %s client span under the notifier", what)
		}
	}

	// A resubmission: its own trace, which says why nothing happened.
	again, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: fb})
	if err != nil || !again.GetDuplicate() {
		t.Fatalf("resubmission: %v, %v", again, err)
	}
	dup := rootFor(t, "feedloop.v1.IntakeService/Submit", fid, root.SpanContext().TraceID())
	if !hasEvent(dup, "resubmission ignored") {
		t.Errorf("resubmission span events %v, want \"resubmission ignored\"", dup.Events())
	}

	// A team action: its own trace, linked to the item's.
	cc, err := grpc.NewClient(e.s.Router.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	logistics := team{feedloopv1.NewTeamServiceClient(cc), loopTokens["logistics"]}
	if _, err := logistics.c.Acknowledge(logistics.ctx(ctx), &feedloopv1.AcknowledgeRequest{FeedbackId: fid}); err != nil {
		t.Fatal(err)
	}
	ack := rootFor(t, "feedloop.v1.TeamService/Acknowledge", fid)
	if ack.SpanContext().TraceID() == root.SpanContext().TraceID() {
		t.Fatal("the team action runs in the item's trace; want its own, linked")
	}
	if !slices.ContainsFunc(ack.Links(), func(l sdktrace.Link) bool {
		return l.SpanContext.TraceID() == root.SpanContext().TraceID() &&
			slices.Contains(l.Attributes, attribute.String("feedloop.feedback_id", fid))
	}) {
		t.Errorf("team action links %v, want one to the item's trace %s", ack.Links(), root.SpanContext().TraceID())
	}
	e.idleAll(t)
	at := traceOf(ack.SpanContext().TraceID())
	if len(at.find(consumerOf("notifier"))) == 0 || len(at.find(func(s sdktrace.ReadOnlySpan) bool {
		return s.Name() == "send "+bus.UpdatedSubject("logistics")
	})) == 0 {
		t.Error("the action's event and its notification are not in the action's trace")
	}
}
