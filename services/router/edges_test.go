package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/router"
	"github.com/feedloop/feedloop/services/router/internal/app"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
)

// edges is the router and intake on one embedded NATS and one real Redis,
// wired as `feedloop dev` wires them, minus the classifier: a test
// classifies an answer itself when the router is to see it. It records what
// intake did with every submission: received (by external id) or
// dead-lettered.
type edges struct {
	tb     testing.TB
	bus    *bus.Bus
	router *router.Service
	http   *http.Client
	teams  map[string]feedloopv1.TeamServiceClient

	mu       sync.Mutex
	received map[string]*feedloopv1.Event // feedback.received by external id
	dead     []string                     // dead letters, described
}

func startEdges(tb testing.TB) *edges {
	tb.Helper()
	b := testkit.Bus(tb)
	rdb := testkit.RedisClient(tb)
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Log(logs.String())
		}
	})
	e := &edges{tb: tb, bus: b, http: &http.Client{Timeout: 10 * time.Second}, teams: map[string]feedloopv1.TeamServiceClient{},
		received: map[string]*feedloopv1.Event{}}
	tb.Cleanup(e.http.CloseIdleConnections)

	// What intake did, seen on the subjects it publishes to.
	sub := func(subject string, fn func(*nats.Msg)) {
		s, err := b.Conn().Subscribe(subject, fn)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = s.Unsubscribe() })
	}
	sub(bus.SubjectReceived, func(m *nats.Msg) {
		ev := &feedloopv1.Event{}
		if proto.Unmarshal(m.Data, ev) == nil {
			e.mu.Lock()
			e.received[ev.GetReceived().GetFeedback().GetExternalId()] = ev
			e.mu.Unlock()
		}
	})
	sub(bus.DLQSubject("intake"), func(m *nats.Msg) {
		fb := &feedloopv1.Feedback{}
		_ = proto.Unmarshal(m.Data, fb)
		e.mu.Lock()
		e.dead = append(e.dead, fmt.Sprintf("%s (%s): %s", fb.GetExternalId(), m.Header.Get(bus.HeaderDLQSubject), m.Header.Get(bus.HeaderDLQError)))
		e.mu.Unlock()
	})
	if err := b.Conn().Flush(); err != nil {
		tb.Fatal(err)
	}

	dir := tb.TempDir()
	routes, tokens := filepath.Join(dir, "routes.yaml"), filepath.Join(dir, "tokens.yaml")
	var toks strings.Builder
	toks.WriteString("tokens:\n")
	for team, tok := range teamTokens {
		fmt.Fprintf(&toks, "  - {team: %s, name: %s-lead, sha256: %s}\n", team, team, teamauth.Hash(tok))
	}
	if err := os.WriteFile(routes, []byte(routesYAML), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(tokens, []byte(toks.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	infra := &lifecycle.Infra{Bus: b, Redis: rdb, Log: log}
	cfg := testConfig(routes, tokens)
	cfg.Concurrency, cfg.ReloadInterval, cfg.SLATick, cfg.SLAWarnAt = 2, time.Second, time.Second, 0.5
	r, err := router.New(cfg, infra)
	if err != nil {
		tb.Fatalf("router: %v", err)
	}
	testkit.Run(tb, r.Run)
	inCfg := intake.DefaultConfig()
	inCfg.GRPCAddr, inCfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	inCfg.RateLimit = access.Rate{} // the edges are submitted from one source at once
	in, err := intake.New(inCfg, infra)
	if err != nil {
		tb.Fatalf("intake: %v", err)
	}
	testkit.Run(tb, in.Run)
	e.router = r

	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cc.Close() })
	for team := range teamTokens {
		e.teams[team] = feedloopv1.NewTeamServiceClient(cc)
	}
	return e
}

// as is a context calling the team API as team.
func (e *edges) as(team string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+teamTokens[team])
}

// item makes an item of customer cust-7 routed to billing, as intake and
// the classifier would publish it, and waits until billing can read it.
func (e *edges) item(id, token string) {
	e.tb.Helper()
	e.itemIn(id, token, "", "")
}

// itemIn is item from a customer of locale, with subject.
func (e *edges) itemIn(id, token, locale, subject string) {
	e.tb.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	fb := &feedloopv1.Feedback{Id: id, Source: "helpdesk", ExternalId: id, Channel: feedloopv1.Channel_CHANNEL_EMAIL, Text: "the refund is late",
		Subject:    subject,
		Customer:   &feedloopv1.Customer{Id: "cust-7", Email: "ada@example.com", Locale: locale, Consent: &feedloopv1.Consent{Contact: true, Survey: true}},
		ReceivedAt: timestamppb.New(now)}
	rec := &feedloopv1.Event{Id: "received-" + id, FeedbackId: id, OccurredAt: timestamppb.New(now),
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: fb, StatusToken: token}}}
	cl := &feedloopv1.Event{Id: "classified-" + id, FeedbackId: id, OccurredAt: timestamppb.New(now),
		Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{Feedback: fb,
			Classification: &feedloopv1.Classification{Topics: []*feedloopv1.TopicScore{{Topic: "billing", Confidence: 0.9}}}}}}
	// Received first, as intake and the classifier publish them: the status
	// token comes with it, so once billing reads the item its status page
	// is there too (in a map's random order, a page could 404 for a moment).
	for _, p := range []struct {
		subj string
		ev   *feedloopv1.Event
	}{{bus.SubjectReceived, rec}, {bus.SubjectClassified, cl}} {
		if _, err := e.bus.Publish(context.Background(), p.subj, p.ev); err != nil {
			e.tb.Fatal(err)
		}
	}
	testkit.Eventually(e.tb, "billing reads "+id, func() bool {
		_, err := e.teams["billing"].Get(e.as("billing"), &feedloopv1.GetRequest{FeedbackId: id})
		return err == nil
	})
	if _, err := e.teams["billing"].Acknowledge(e.as("billing"), &feedloopv1.AcknowledgeRequest{FeedbackId: id}); err != nil {
		e.tb.Fatalf("acknowledge %s: %v", id, err)
	}
}

// closedItem is item, resolved by billing: closed, so the survey is open.
func (e *edges) closedItem(id, token string) {
	e.tb.Helper()
	e.item(id, token)
	if _, err := e.teams["billing"].Resolve(e.as("billing"), &feedloopv1.ResolveRequest{FeedbackId: id, CustomerMessage: "Refunded 42 EUR."}); err != nil {
		e.tb.Fatalf("resolve %s: %v", id, err)
	}
}

// surveyResult is the status page's answer to a survey post.
type surveyResult struct {
	code  int
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Field string `json:"field"`
	body  string
}

// survey posts an answer as a form, or as JSON when body is set (then form
// is ignored), asking for JSON (or HTML when html is set).
func (e *edges) survey(token string, form url.Values, body string, html bool) surveyResult {
	e.tb.Helper()
	ctype, payload := "application/x-www-form-urlencoded", form.Encode()
	if body != "" {
		ctype, payload = "application/json", body
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+e.router.HTTPAddr()+"/status/"+token+"/survey", strings.NewReader(payload))
	if err != nil {
		e.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	if html {
		req.Header.Set("Accept", "text/html")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	res := surveyResult{code: resp.StatusCode, body: string(data)}
	if !html && resp.StatusCode < 500 {
		if err := json.Unmarshal(data, &res); err != nil {
			e.tb.Fatalf("survey answer %d is not JSON: %v: %q", resp.StatusCode, err, data)
		}
	}
	return res
}

// stored waits until intake received the submission of external id ext,
// failing as soon as intake dead-letters anything.
func (e *edges) stored(ext string) *feedloopv1.Event {
	e.tb.Helper()
	var ev *feedloopv1.Event
	testkit.Eventually(e.tb, "intake receives "+ext, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(e.dead) > 0 {
			e.tb.Fatalf("intake dead-lettered what an edge accepted: %v", e.dead)
		}
		ev = e.received[ext]
		return ev != nil
	})
	return ev
}

// classify publishes intake's received answer as the classifier would,
// and waits until the router has handled it.
func (e *edges) classify(rec *feedloopv1.Event) {
	e.tb.Helper()
	ev := &feedloopv1.Event{Id: bus.DeriveID(rec.GetId(), "classified"), FeedbackId: rec.GetFeedbackId(), OccurredAt: timestamppb.Now(),
		Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{
			Feedback: rec.GetReceived().GetFeedback(), Classification: &feedloopv1.Classification{RedactedText: rec.GetReceived().GetFeedback().GetText()}}}}
	ack, err := e.bus.Publish(context.Background(), bus.SubjectClassified, ev)
	if err != nil {
		e.tb.Fatal(err)
	}
	js := e.bus.JetStream()
	testkit.Eventually(e.tb, "the router handles the answer", func() bool {
		cons, err := js.Consumer(context.Background(), bus.StreamFeedback, "router")
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.AckFloor.Stream >= ack.Sequence
	})
}

// fieldViolation returns the BadRequest field violation of an
// InvalidArgument, failing on any other error.
func fieldViolation(tb testing.TB, err error) *errdetails.BadRequest_FieldViolation {
	tb.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		tb.Fatalf("err = %v, want InvalidArgument", err)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 {
			return br.GetFieldViolations()[0]
		}
	}
	tb.Fatalf("InvalidArgument without one BadRequest field violation: %v", st.Details())
	return nil
}

const (
	surveyItem  = "6a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
	surveyToken = "00000000000000000000000000000abc"
	teamItem    = "7b2e1d3f-4c5e-4f60-9b0c-1d2e3f4a5b6c"
)

// The lost answer: a comment intake would refuse is refused by the
// status page, naming the field, and the customer's next answer reaches
// intake. Two different answers are two submissions (neither shadows the
// other); the first attributed counts, and a later one is refused once the
// first shows.
func TestSurveyAnswerIsNeverLost(t *testing.T) {
	e := startEdges(t)
	e.closedItem(surveyItem, surveyToken)

	for _, bad := range []struct{ comment, rule string }{
		{"good\x00bad", "must not contain control characters"},
		{"\x1b[31mred", "must not contain control characters"},
		{"\xff\xfe", "must be valid UTF-8"},
	} {
		r := e.survey(surveyToken, url.Values{"csat": {"5"}, "comment": {bad.comment}}, "", false)
		if r.code != http.StatusUnprocessableEntity || r.OK || r.Field != "comment" || !strings.HasPrefix(r.Error, "comment: "+bad.rule) {
			t.Fatalf("comment %q: %d %+v, want 422 on comment: %s", bad.comment, r.code, r, bad.rule)
		}
	}
	if r := e.survey(surveyToken, nil, `{"csat":5,"comment":"a\u001bb"}`, false); r.code != http.StatusUnprocessableEntity || r.Field != "comment" {
		t.Fatalf("JSON comment with ESC: %d %+v", r.code, r)
	}
	// The HTML form says why and offers the comment back without the
	// characters the customer could not see.
	if r := e.survey(surveyToken, url.Values{"csat": {"5"}, "comment": {"good\x00bad"}}, "", true); r.code != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, "Your comment had characters we cannot accept") || !strings.Contains(r.body, ">goodbad</textarea>") {
		t.Fatalf("HTML form: %d, want 422 showing the comment's error and the comment without them:\n%s", r.code, r.body)
	}

	// The customer corrects the answer, then changes their mind before the
	// first shows: both reach intake, as two submissions.
	if r := e.survey(surveyToken, url.Values{"csat": {"4"}}, "", false); r.code != http.StatusOK || !r.OK {
		t.Fatalf("valid answer: %d %+v", r.code, r)
	}
	first := e.stored(app.AnswerID(surveyItem, 4, ""))
	if fb := first.GetReceived().GetFeedback(); fb.GetCsat() != 4 || fb.GetInReplyTo() != surveyItem || fb.GetSource() != app.SurveySource {
		t.Fatalf("intake received %v", fb)
	}
	if r := e.survey(surveyToken, nil, `{"csat":1,"comment":"changed my mind"}`, false); r.code != http.StatusOK {
		t.Fatalf("second answer before the first shows: %d %+v", r.code, r)
	}
	second := e.stored(app.AnswerID(surveyItem, 1, "changed my mind"))

	// The first attributed counts: the second neither replaces its score
	// nor reopens the item nor counts CSAT twice.
	e.classify(first)
	e.classify(second)
	got, err := e.teams["billing"].Get(e.as("billing"), &feedloopv1.GetRequest{FeedbackId: surveyItem})
	if err != nil {
		t.Fatal(err)
	}
	replied := 0
	for _, en := range got.GetItem().GetTimeline() {
		if en.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_REPLIED {
			replied++
			if en.GetLevel() != 4 {
				t.Fatalf("attributed answer with score %d, want only the first (4)", en.GetLevel())
			}
		}
	}
	if replied != 1 || got.GetItem().GetAssignments()[0].GetStatus() != feedloopv1.Status_STATUS_RESOLVED {
		t.Fatalf("%d answers attributed, billing %s; want the first only, nothing reopened", replied, got.GetItem().GetAssignments()[0].GetStatus())
	}
	st, err := e.teams["billing"].Stats(e.as("billing"), &feedloopv1.StatsRequest{})
	if err != nil || st.GetCsatResponses() != 1 || st.GetCsatMean() != 4 {
		t.Fatalf("billing stats = %v %v, want one CSAT response of 4", st, err)
	}

	// Once the answer shows, another is refused.
	if r := e.survey(surveyToken, url.Values{"csat": {"2"}}, "", false); r.code != http.StatusConflict || r.Field != "csat" || !strings.Contains(r.Error, "already answered") {
		t.Fatalf("answer after the first shows: %d %+v, want 409 already answered", r.code, r)
	}
}

// The team API's free text is refused by intake's rules, with the field.
func TestTeamAPITextMeetsIntakesRules(t *testing.T) {
	e := startEdges(t)
	e.item(teamItem, "00000000000000000000000000000def")
	billing := e.teams["billing"]
	ctx := e.as("billing")
	_, err := billing.Comment(ctx, &feedloopv1.CommentRequest{FeedbackId: teamItem, InternalNote: "called\x1b[2J"})
	if v := fieldViolation(t, err); v.GetField() != "internal_note" || !strings.Contains(v.GetDescription(), "control characters") {
		t.Fatalf("comment with ESC: %v", v)
	}
	_, err = billing.Plan(ctx, &feedloopv1.PlanRequest{FeedbackId: teamItem, CustomerMessage: "soon\x00", DueAt: timestamppb.New(time.Now().Add(48 * time.Hour))})
	if v := fieldViolation(t, err); v.GetField() != "customer_message" {
		t.Fatalf("plan message with NUL: %v", v)
	}
	_, err = billing.Decline(ctx, &feedloopv1.DeclineRequest{FeedbackId: teamItem, CustomerMessage: "no\x07"})
	if v := fieldViolation(t, err); v.GetField() != "customer_message" {
		t.Fatalf("decline reason with BEL: %v", v)
	}
	_, err = billing.Reroute(ctx, &feedloopv1.RerouteRequest{FeedbackId: teamItem, Team: "logistics", InternalNote: "\x1bx"})
	if v := fieldViolation(t, err); v.GetField() != "internal_note" {
		t.Fatalf("reroute reason with ESC: %v", v)
	}
	// Nothing was done: billing still has it acknowledged.
	got, err := billing.Get(ctx, &feedloopv1.GetRequest{FeedbackId: teamItem})
	if err != nil || got.GetItem().GetAssignments()[0].GetStatus() != feedloopv1.Status_STATUS_ACKNOWLEDGED {
		t.Fatalf("after refused actions: %v %v", got, err)
	}
	if _, err := billing.Comment(ctx, &feedloopv1.CommentRequest{FeedbackId: teamItem, InternalNote: "called:\r\n\tno answer"}); err != nil {
		t.Fatalf("multi-line comment: %v", err)
	}
}
