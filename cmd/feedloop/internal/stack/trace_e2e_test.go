package stack_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/telemetry"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// testService is the service.name of the process's own spans (the global
// provider's, which OTEL_SERVICE_NAME names); no service's span may carry
// it: each service has its own.
const testService = "feedloop-test"

// collector receives every span of this test binary over OTLP/gRPC:
// telemetry.Setup and the stacks' per-service providers are pointed at it
// by the standard OTEL_* variables, as `feedloop dev` is pointed at a real
// collector.
var collector *otlpReceiver

// running are the stacks whose spans received flushes (see tracked).
var running struct {
	sync.Mutex
	stacks map[*stack.Stack]bool
}

// tracked makes received flush s's services' spans until the test ends.
func tracked(t *testing.T, s *stack.Stack) {
	running.Lock()
	if running.stacks == nil {
		running.stacks = map[*stack.Stack]bool{}
	}
	running.stacks[s] = true
	running.Unlock()
	t.Cleanup(func() {
		running.Lock()
		delete(running.stacks, s)
		running.Unlock()
	})
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if collector, err = startOTLPReceiver(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer collector.Stop()
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + collector.addr,
		"OTEL_EXPORTER_OTLP_INSECURE": "true",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_SERVICE_NAME":           testService,
		"OTEL_TRACES_SAMPLER":         "parentbased_always_on",
		// A short batch delay so spans reach the receiver while the test
		// waits for them; flush() forces the rest.
		"OTEL_BSP_SCHEDULE_DELAY": "50",
		// The receiver is a trace service only; metrics are scraped.
		"OTEL_METRICS_EXPORTER": "none",
	} {
		os.Setenv(k, v)
	}
	shutdown, err := telemetry.Setup(context.Background(), "ignored-for-OTEL_SERVICE_NAME")
	if err != nil {
		fmt.Fprintln(os.Stderr, "telemetry:", err)
		return 1
	}
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "telemetry shutdown:", err)
		return max(code, 1)
	}
	return code
}

// received flushes the batch span processors, the global one and each
// running stack's services', and returns what the receiver has got: a span
// counts only once it has been exported.
func received(t *testing.T) []span {
	t.Helper()
	tp, ok := otel.GetTracerProvider().(interface{ ForceFlush(context.Context) error })
	if !ok {
		t.Fatalf("tracer provider %T cannot flush", otel.GetTracerProvider())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("flushing spans to the OTLP receiver: %v", err)
	}
	running.Lock()
	defer running.Unlock()
	for s := range running.stacks {
		if err := s.FlushTraces(ctx); err != nil {
			t.Fatalf("flushing the services' spans to the OTLP receiver: %v", err)
		}
	}
	return collector.Spans()
}

// traced is the exported spans of one trace, by span id.
type traced map[trace.SpanID]span

func traceOf(t *testing.T, id trace.TraceID) traced {
	t.Helper()
	out := traced{}
	for _, s := range received(t) {
		if s.TraceID == id {
			out[s.SpanID] = s
		}
	}
	return out
}

func hasEvent(s span, name string) bool { return slices.Contains(s.Events, name) }

// under reports whether s descends from a span of tr matching pred.
func (tr traced) under(s span, pred func(span) bool) bool {
	for p, ok := tr[s.Parent]; ok; p, ok = tr[p.Parent] {
		if pred(p) {
			return true
		}
	}
	return false
}

func (tr traced) find(pred func(span) bool) []span {
	var out []span
	for _, s := range tr {
		if pred(s) {
			out = append(out, s)
		}
	}
	return out
}

func consumerOf(group string) func(span) bool {
	return func(s span) bool {
		return s.Kind == tracepb.Span_SPAN_KIND_CONSUMER && s.Attrs["messaging.consumer.group.name"] == group
	}
}

func isRedis(s span) bool {
	return s.Kind == tracepb.Span_SPAN_KIND_CLIENT && (s.Attrs["db.system"] == "redis" || s.Attrs["db.system.name"] == "redis")
}

// serviceOfGroup is the service that runs a durable consumer: the service
// its name starts with ("router-projector" is the router's).
func serviceOfGroup(group string) string {
	for _, service := range stack.Services {
		if group == service || strings.HasPrefix(group, service+"-") {
			return service
		}
	}
	return ""
}

// scopePrefix starts the instrumentation scope of a service's own tracers.
const scopePrefix = "github.com/feedloop/feedloop/services/"

// checkServices asserts that every span of tr carries the service.name of
// the service that made it, worked out without looking at the names: the
// root is rootService's; a consumer span belongs to the service of its
// durable consumer; any other span to its parent's service (in-process
// work stays in its service); and a span of a service's own tracer (scope
// under services/<name>) to that service. Were every span exported under
// one name again, the consumers' spans would carry the root's.
func (tr traced) checkServices(t *testing.T, root span, rootService string) {
	t.Helper()
	want := map[trace.SpanID]string{}
	var of func(s span) string
	of = func(s span) string {
		if w, ok := want[s.SpanID]; ok {
			return w
		}
		var w string
		switch p, ok := tr[s.Parent]; {
		case s.SpanID == root.SpanID:
			w = rootService
		case s.Kind == tracepb.Span_SPAN_KIND_CONSUMER:
			w = serviceOfGroup(s.Attrs["messaging.consumer.group.name"])
		case ok:
			w = of(p)
		}
		want[s.SpanID] = w
		return w
	}
	for _, s := range tr {
		w := of(s)
		if w == "" {
			t.Errorf("span %q (scope %s): no service to expect", s.Name, s.Scope)
			continue
		}
		if s.Service != w {
			t.Errorf("span %q (scope %s) exported with service.name %q, want %q", s.Name, s.Scope, s.Service, w)
		}
		if rest, ok := strings.CutPrefix(s.Scope, scopePrefix); ok {
			if own, _, _ := strings.Cut(rest, "/"); own != s.Service {
				t.Errorf("span %q of %s's scope %s exported with service.name %q", s.Name, own, s.Scope, s.Service)
			}
		}
	}
}

// rootFor finds the server span named method whose feedloop.feedback_id is
// fid and that none of the earlier roots is.
func rootFor(t *testing.T, method, fid string, not ...trace.TraceID) span {
	t.Helper()
	var root span
	testkit.Eventually(t, method+" span of "+fid, func() bool {
		for _, s := range received(t) {
			if s.Name == method && s.Kind == tracepb.Span_SPAN_KIND_SERVER && s.Attrs["feedloop.feedback_id"] == fid &&
				!slices.Contains(not, s.TraceID) {
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

// One submitted item is one trace, as a collector receives it over OTLP:
// intake's gRPC span is its root, and the classifier, router (routing and
// projector), and notifier spans, with the Redis, webhook and SMTP calls
// they make, all descend from it through the NATS messages, each consumer
// span the child of the producer span of the message it handles. A resubmission is its own short trace that says it
// was ignored; a team action, and the customer's survey answer, each start
// their own trace linked to the item's.
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
	if root.Parent.IsValid() {
		t.Fatalf("intake's span has a parent %s: want it to be the root", root.Parent)
	}
	tr := traceOf(t, root.TraceID)

	// Every span hangs off another span of the trace: no orphans.
	for _, s := range tr {
		if s.SpanID != root.SpanID {
			if _, ok := tr[s.Parent]; !ok {
				t.Errorf("span %q has a parent outside the trace", s.Name)
			}
		}
	}
	// Every exported span names the service that made it, as deployed:
	// the one trace crosses the four services, each under its own name.
	tr.checkServices(t, root, "intake")
	for _, service := range []string{"intake", "classifier", "router", "notifier"} {
		if len(tr.find(func(s span) bool { return s.Service == service })) == 0 {
			t.Errorf("no span of service.name %q in the item's trace", service)
		}
	}
	// Each consumer span is the child of the producer span of its message.
	for _, s := range tr.find(func(s span) bool { return s.Kind == tracepb.Span_SPAN_KIND_CONSUMER }) {
		p, ok := tr[s.Parent]
		if !ok || p.Kind != tracepb.Span_SPAN_KIND_PRODUCER || p.Attrs["messaging.message.id"] != s.Attrs["messaging.message.id"] ||
			p.Name != "send "+s.Attrs["messaging.destination.name"] {
			t.Errorf("consumer span %q (group %s) is not the child of its message's producer span", s.Name, s.Attrs["messaging.consumer.group.name"])
		}
		for _, k := range []string{"messaging.system", "messaging.destination.name", "messaging.operation.type", "messaging.message.id"} {
			if s.Attrs[k] == "" {
				t.Errorf("consumer span %q lacks %s", s.Name, k)
			}
		}
		if s.Attrs["messaging.system"] != "nats" || s.Attrs["messaging.operation.type"] != "process" {
			t.Errorf("consumer span %q: messaging.system %q, operation %q; want nats, process",
				s.Name, s.Attrs["messaging.system"], s.Attrs["messaging.operation.type"])
		}
	}
	// All four services are in it: intake is the root, the others consume.
	for _, group := range []string{"classifier", "router", "router-projector", "notifier"} {
		if len(tr.find(consumerOf(group))) == 0 {
			t.Errorf("no %s consumer span in the item's trace", group)
		}
	}
	for _, subject := range []string{bus.SubjectReceived, bus.SubjectClassified, bus.RoutedSubject("logistics"), bus.RoutedSubject("customer-success"), bus.SubjectNotified} {
		if len(tr.find(func(s span) bool {
			return s.Kind == tracepb.Span_SPAN_KIND_PRODUCER && s.Name == "send "+subject && s.Attrs["messaging.system"] == "nats" &&
				s.Attrs["messaging.operation.type"] == "send" && s.Attrs["messaging.destination.name"] == subject &&
				s.Attrs["messaging.message.id"] != ""
		})) == 0 {
			t.Errorf("no producer span for %s in the item's trace", subject)
		}
	}
	routed := tr.find(func(s span) bool { return consumerOf("router")(s) && s.Attrs["feedloop.teams"] != "" })
	if len(routed) != 1 || routed[0].Attrs["feedloop.feedback_id"] != fid {
		t.Errorf("router span lacks the feedback id and teams: %v", routed)
	}
	// The calls the services make are descendants too.
	isIntake := func(s span) bool { return s.SpanID == root.SpanID }
	if len(tr.find(func(s span) bool { return isRedis(s) && tr.under(s, isIntake) })) == 0 {
		t.Error("no Redis span under intake (idempotency key)")
	}
	for what, pred := range map[string]func(span) bool{
		"Redis": isRedis,
		"webhook": func(s span) bool {
			return s.Kind == tracepb.Span_SPAN_KIND_CLIENT && s.Attrs["http.request.method"] == "POST"
		},
		"SMTP": func(s span) bool {
			return s.Name == "smtp send" && s.Kind == tracepb.Span_SPAN_KIND_CLIENT
		},
	} {
		if len(tr.find(func(s span) bool { return pred(s) && tr.under(s, consumerOf("notifier")) })) == 0 {
			t.Errorf("no %s client span under the notifier", what)
		}
	}

	// A resubmission: its own trace, which says why nothing happened.
	again, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: fb})
	if err != nil || !again.GetDuplicate() {
		t.Fatalf("resubmission: %v, %v", again, err)
	}
	dup := rootFor(t, "feedloop.v1.IntakeService/Submit", fid, root.TraceID)
	if !hasEvent(dup, "resubmission ignored") {
		t.Errorf("resubmission span events %v, want \"resubmission ignored\"", dup.Events)
	}
	if dup.Parent.IsValid() {
		t.Errorf("resubmission span has a parent %s: want it to root its own trace", dup.Parent)
	}
	traceOf(t, dup.TraceID).checkServices(t, dup, "intake")
	// Nothing was published for it: its trace stops at intake.
	if sent := traceOf(t, dup.TraceID).find(func(s span) bool { return s.Kind == tracepb.Span_SPAN_KIND_PRODUCER }); len(sent) != 0 {
		t.Errorf("the ignored resubmission published %d messages", len(sent))
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
	if ack.TraceID == root.TraceID {
		t.Fatal("the team action runs in the item's trace; want its own, linked")
	}
	if !slices.ContainsFunc(ack.Links, func(l spanLink) bool {
		return l.TraceID == root.TraceID && l.Attrs["feedloop.feedback_id"] == fid
	}) {
		t.Errorf("team action links %v, want one to the item's trace %s", ack.Links, root.TraceID)
	}
	e.idleAll(t)
	at := traceOf(t, ack.TraceID)
	at.checkServices(t, ack, "router")
	if len(at.find(consumerOf("notifier"))) == 0 || len(at.find(func(s span) bool {
		return s.Name == "send "+bus.UpdatedSubject("logistics")
	})) == 0 {
		t.Error("the action's event and its notification are not in the action's trace")
	}

	// The survey answer: the teams close the item, the customer answers on
	// the status page, and the answer runs through intake, the classifier
	// and the router in its own trace, linked to the item's.
	cs := team{logistics.c, loopTokens["customer-success"]}
	if _, err := logistics.c.Resolve(logistics.ctx(ctx), &feedloopv1.ResolveRequest{FeedbackId: fid, CustomerMessage: "Delivered."}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.c.Decline(cs.ctx(ctx), &feedloopv1.DeclineRequest{FeedbackId: fid, CustomerMessage: "Logistics has it."}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the survey", func() bool { return len(e.customer.find(fid, "survey")) == 1 })
	// The customer's status token (the team API does not show it).
	rcv := e.events(t, bus.SubjectReceived, fid)[bus.SubjectReceived]
	if len(rcv) != 1 || rcv[0].GetReceived().GetStatusToken() == "" {
		t.Fatalf("received events %v: want one with a status token", rcv)
	}
	res, err := http.PostForm("http://"+e.s.Router.HTTPAddr()+"/status/"+rcv[0].GetReceived().GetStatusToken()+"/survey", url.Values{"csat": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("survey answer: %s", res.Status)
	}
	testkit.Eventually(t, "the answer to reopen the item", func() bool { return len(e.teams.find(fid, "reopened")) == 2 })
	e.idleAll(t)
	// The answer's classified event (its message id names the router's
	// span of it: the receiver holds every test's spans).
	var answerEv string
	for _, ev := range e.events(t, bus.SubjectClassified, "")[bus.SubjectClassified] {
		if ev.GetClassified().GetFeedback().GetInReplyTo() == fid {
			answerEv = ev.GetId()
		}
	}
	if answerEv == "" {
		t.Fatal("no classified answer to the item on the stream")
	}
	answered := func(s span) bool { return consumerOf("router")(s) && hasEvent(s, "answer to an earlier item") }
	var handled span
	testkit.Eventually(t, "the router's span of the answer", func() bool {
		for _, s := range received(t) {
			if answered(s) && s.Attrs["messaging.message.id"] == answerEv {
				handled = s
				return true
			}
		}
		return false
	})
	linked := func(s span) bool {
		return slices.ContainsFunc(s.Links, func(l spanLink) bool {
			return l.TraceID == root.TraceID && l.Attrs["feedloop.feedback_id"] == fid
		})
	}
	if handled.TraceID == root.TraceID || handled.TraceID == ack.TraceID {
		t.Fatal("the router handles the answer in the item's (or the action's) trace; want the answer's own, linked")
	}
	if !linked(handled) {
		t.Errorf("router span of the answer links %v, want one to the item's trace %s", handled.Links, root.TraceID)
	}
	if handled.Attrs["feedloop.feedback_id"] != fid {
		t.Errorf("router span of the answer has feedloop.feedback_id %q, want the answered item %s", handled.Attrs["feedloop.feedback_id"], fid)
	}
	// One answer trace from the click: the status page's request is its
	// root (linked too), then intake, the classifier, the router and the
	// reopen it publishes.
	at = traceOf(t, handled.TraceID)
	page := at.find(func(s span) bool { return s.Kind == tracepb.Span_SPAN_KIND_SERVER && !s.Parent.IsValid() })
	if len(page) != 1 || !linked(page[0]) {
		t.Fatalf("the answer's trace root %v, want the status page's request linked to the item's trace", page)
	}
	at.checkServices(t, page[0], "router")
	for _, group := range []string{"intake", "classifier", "router", "notifier"} {
		if len(at.find(consumerOf(group))) == 0 {
			t.Errorf("no %s consumer span in the answer's trace", group)
		}
	}
	for _, subject := range []string{bus.SubmitSubject("survey"), bus.UpdatedSubject("logistics"), bus.UpdatedSubject("customer-success")} {
		if len(at.find(func(s span) bool { return s.Kind == tracepb.Span_SPAN_KIND_PRODUCER && s.Name == "send "+subject })) == 0 {
			t.Errorf("no %s producer span in the answer's trace", subject)
		}
	}
	// And none of it is in the item's trace.
	if n := len(traceOf(t, root.TraceID).find(func(s span) bool {
		return answered(s) || s.Name == "send "+bus.SubmitSubject("survey") || consumerOf("intake")(s)
	})); n != 0 {
		t.Errorf("%d spans of the answer are in the item's trace", n)
	}
}

// Stopping a stack exports what its services' providers still hold, each
// service's spans under its own service.name: with an hour's batch delay
// nothing of the item's trace leaves before the stack stops, all of it
// after.
func TestStackFlushesEveryServiceOnExit(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000")
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	resp, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
		// An external id of its own each run: the feedback id derives from
		// it, and the package's collector keeps an earlier run's spans.
		Source: "helpdesk", ExternalId: fmt.Sprintf("flush-%d", time.Now().UnixNano()), Text: "The invoice was charged twice.",
		Customer: &feedloopv1.Customer{Id: "c-flush", Email: "flush@example.com", Consent: &feedloopv1.Consent{Contact: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	fid := resp.GetFeedbackId()
	testkit.Eventually(t, "the customer's acknowledgement", func() bool { return len(e.customer.find(fid, "received")) == 1 })
	e.idle(t)
	ofItem := func() []span {
		var out []span
		for _, s := range collector.Spans() {
			if s.Attrs["feedloop.feedback_id"] == fid {
				out = append(out, s)
			}
		}
		return out
	}
	if got := ofItem(); len(got) != 0 {
		t.Fatalf("%d spans of the item exported before the stack stopped; the test needs them held in the batch", len(got))
	}
	e.stop()
	services := map[string]bool{}
	for _, s := range ofItem() {
		services[s.Service] = true
	}
	for _, service := range []string{"intake", "classifier", "router", "notifier"} {
		if !services[service] {
			t.Errorf("no span of the item under service.name %q after the stack stopped (got %v)", service, services)
		}
	}
}
