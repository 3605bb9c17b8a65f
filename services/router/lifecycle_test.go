package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
)

// Team tokens of the test: the file holds only their hashes.
var teamTokens = map[string]string{
	"billing":          "tok-billing-5f2c9a",
	"customer-success": "tok-cs-81d0e3",
	"logistics":        "tok-logistics-77ab10",
}

func writeTokens(t *testing.T, path string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("tokens:\n")
	for team, tok := range teamTokens {
		fmt.Fprintf(&b, "  - {team: %s, name: %s-lead, sha256: %s}\n", team, team, teamauth.Hash(tok))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// teamClient is the TeamService as one team calls it.
type teamClient struct {
	t   *testing.T
	c   feedloopv1.TeamServiceClient
	tok string
}

func (h *harness) team(name string) *teamClient {
	h.t.Helper()
	cc, err := grpc.NewClient(h.svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cc.Close() })
	return &teamClient{t: h.t, c: feedloopv1.NewTeamServiceClient(cc), tok: teamTokens[name]}
}

func (tc *teamClient) ctx() context.Context {
	ctx := tc.t.Context()
	if tc.tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tc.tok)
	}
	return ctx
}

func (tc *teamClient) get(id string) (*feedloopv1.GetResponse, error) {
	return tc.c.Get(tc.ctx(), &feedloopv1.GetRequest{FeedbackId: id})
}

func (tc *teamClient) status(id, team string) feedloopv1.Status {
	tc.t.Helper()
	r, err := tc.get(id)
	if err != nil {
		tc.t.Fatalf("get %s: %v", id, err)
	}
	for _, a := range r.GetItem().GetAssignments() {
		if a.GetTeam() == team {
			return a.GetStatus()
		}
	}
	return feedloopv1.Status_STATUS_UNSPECIFIED
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
		t.Fatalf("%s: err = %v, want %s containing %q", what, err, code, msg)
	}
}

// received and classified events of an item as intake and the classifier
// publish them, happening now so SLA deadlines lie ahead.
func (h *harness) submit(id, token string, it item) {
	h.t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	fb := &feedloopv1.Feedback{Id: id, Source: "helpdesk", ExternalId: id, Channel: it.channel, Text: "call me at +49 170 1234567, the refund is late",
		Subject:    "Refund",
		Customer:   &feedloopv1.Customer{Id: "cust-7", Email: "ada@example.com", Locale: "de", Consent: &feedloopv1.Consent{Contact: true, Survey: true}},
		ReceivedAt: timestamppb.New(now), Attributes: it.attrs}
	rec := &feedloopv1.Event{Id: "received-" + id, FeedbackId: id, OccurredAt: timestamppb.New(now),
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: fb, StatusToken: token}}}
	if _, err := h.bus.Publish(h.t.Context(), bus.SubjectReceived, rec); err != nil {
		h.t.Fatal(err)
	}
	ev := it.event()
	ev.Id, ev.FeedbackId, ev.OccurredAt = "classified-"+id, id, timestamppb.New(now)
	ev.GetClassified().Feedback = fb
	ev.GetClassified().Classification.RedactedText = "call me at [PHONE], the refund is late"
	if !it.olderClassifier {
		ev.GetClassified().Received = &feedloopv1.ReceivedRef{EventId: rec.GetId(), OccurredAt: rec.GetOccurredAt(), StatusToken: token}
	}
	h.publish(ev)
}

// events returns the FEEDBACK events on subjects matching filter for an item.
func (h *harness) events(filter, feedbackID string) []*feedloopv1.Event {
	h.t.Helper()
	var out []*feedloopv1.Event
	for _, m := range testkit.Messages(h.t, h.bus, bus.StreamFeedback, filter) {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			h.t.Fatal(err)
		}
		if ev.GetFeedbackId() == feedbackID {
			out = append(out, ev)
		}
	}
	return out
}

const statusToken = "0123456789abcdef0123456789abcdef"

// The whole lifecycle through the team API: auth, legal and illegal
// transitions, reroute, closing, the status page, the survey answer
// reopening the item, and the team's figures.
func TestLifecycleThroughTheTeamAPI(t *testing.T) {
	h := start(t)
	billing, cs, logistics := h.team("billing"), h.team("customer-success"), h.team("logistics")
	// A feedback id as intake issues them: the survey answer replies to it,
	// and the status page refuses an answer intake would refuse.
	const id = "5d0c9b8a-7e6f-4a5b-8c9d-0e1f2a3b4c5d"
	h.submit(id, statusToken, item{topics: []string{"billing"}, nps: feedloopv1.NpsBand_NPS_BAND_DETRACTOR, channel: feedloopv1.Channel_CHANNEL_SURVEY})
	testkit.Eventually(t, "the item in the read model", func() bool { _, err := billing.get(id); return err == nil })

	// Auth: no token, unknown token, another team's token: refused, nothing changes.
	anon := &teamClient{t: t, c: billing.c}
	_, err := anon.get(id)
	wantCode(t, "no token", err, codes.Unauthenticated, "authorization")
	forged := &teamClient{t: t, c: billing.c, tok: "tok-billing-forged"}
	_, err = forged.c.Acknowledge(forged.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id})
	wantCode(t, "forged token", err, codes.Unauthenticated, "unknown team token")
	// The refusal says what to do: where dev keeps its tokens, whom to ask.
	wantCode(t, "forged token", err, codes.Unauthenticated, "<data>/dev-team-tokens.yaml")
	wantCode(t, "forged token", err, codes.Unauthenticated, "ask whoever runs the router")
	_, err = logistics.get(id)
	wantCode(t, "other team's item", err, codes.PermissionDenied, "not routed to team logistics")
	_, err = logistics.c.Acknowledge(logistics.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id})
	wantCode(t, "act on other team's item", err, codes.PermissionDenied, "logistics")
	_, err = cs.c.List(cs.ctx(), &feedloopv1.ListRequest{Team: "billing"})
	wantCode(t, "list another team", err, codes.PermissionDenied, "cannot read team billing")
	if st := billing.status(id, "billing"); st != feedloopv1.Status_STATUS_ROUTED {
		t.Fatalf("after refused calls billing is %s", st)
	}

	// Teams see the redacted text only, and never the status token.
	got, err := billing.get(id)
	if err != nil {
		t.Fatal(err)
	}
	if txt := got.GetItem().GetFeedback().GetText(); strings.Contains(txt, "1234567") || got.GetItem().GetStatusToken() != "" {
		t.Fatalf("team sees text %q token %q", txt, got.GetItem().GetStatusToken())
	}

	// Illegal: resolve before acknowledging names the current state.
	_, err = billing.c.Resolve(billing.ctx(), &feedloopv1.ResolveRequest{FeedbackId: id, CustomerMessage: "done"})
	wantCode(t, "resolve a routed item", err, codes.FailedPrecondition, "is routed")
	// Invalid: a decline without reason names the field.
	_, err = billing.c.Decline(billing.ctx(), &feedloopv1.DeclineRequest{FeedbackId: id})
	wantCode(t, "decline without reason", err, codes.InvalidArgument, "customer_message: required")

	ack, err := billing.c.Acknowledge(billing.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id})
	if err != nil || ack.GetAssignment().GetStatus() != feedloopv1.Status_STATUS_ACKNOWLEDGED {
		t.Fatalf("ack: %v %v", ack, err)
	}
	_, err = billing.c.Acknowledge(billing.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id})
	wantCode(t, "ack twice", err, codes.FailedPrecondition, "is acknowledged")

	due1 := time.Now().UTC().Truncate(24 * time.Hour).Add(72 * time.Hour)
	due2 := due1.Add(48 * time.Hour)
	if _, err := billing.c.Plan(billing.ctx(), &feedloopv1.PlanRequest{FeedbackId: id, CustomerMessage: "We refund you by then.", DueAt: timestamppb.New(due1)}); err != nil {
		t.Fatal(err)
	}
	_, err = billing.c.Plan(billing.ctx(), &feedloopv1.PlanRequest{FeedbackId: id, CustomerMessage: "Same date.", DueAt: timestamppb.New(due1)})
	wantCode(t, "plan the same date", err, codes.FailedPrecondition, "already planned")
	pl, err := billing.c.Plan(billing.ctx(), &feedloopv1.PlanRequest{FeedbackId: id, CustomerMessage: "The bank needs two more days.", DueAt: timestamppb.New(due2)})
	if err != nil || !pl.GetAssignment().GetPlannedDueAt().AsTime().Equal(due2) {
		t.Fatalf("replan: %v %v", pl, err)
	}

	// The survey opens only once every team is done.
	early, err := http.PostForm("http://"+h.svc.HTTPAddr()+"/status/"+statusToken+"/survey", url.Values{"csat": {"5"}})
	if err != nil {
		t.Fatal(err)
	}
	early.Body.Close()
	if early.StatusCode != http.StatusConflict {
		t.Fatalf("survey answer while teams work: %s", early.Status)
	}
	if sub := testkit.Messages(t, h.bus, bus.StreamSubmit, bus.SubmitSubject("survey")); len(sub) != 0 {
		t.Fatalf("an early answer was submitted: %d", len(sub))
	}

	// Customer success hands its share to logistics; logistics is alerted
	// (a routed event) and may now read and act.
	_, err = cs.c.Reroute(cs.ctx(), &feedloopv1.RerouteRequest{FeedbackId: id, Team: "nobody", InternalNote: "x"})
	wantCode(t, "reroute to unknown team", err, codes.InvalidArgument, `unknown team "nobody"`)
	if _, err := cs.c.Reroute(cs.ctx(), &feedloopv1.RerouteRequest{FeedbackId: id, Team: "logistics", InternalNote: "parcel never arrived (internal)"}); err != nil {
		t.Fatal(err)
	}
	if rs := h.events(bus.RoutedSubject("logistics"), id); len(rs) != 1 || rs[0].GetRouted().GetAssignment().GetReroutedFrom() != "customer-success" {
		t.Fatalf("logistics routed events = %v", rs)
	}
	if _, err := logistics.c.Acknowledge(logistics.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := logistics.c.Comment(logistics.ctx(), &feedloopv1.CommentRequest{FeedbackId: id, InternalNote: "courier says delivered (internal)"}); err != nil {
		t.Fatal(err)
	}
	_, err = cs.c.Acknowledge(cs.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id})
	wantCode(t, "act after reroute", err, codes.FailedPrecondition, "rerouted to logistics")

	// List: billing's planned item is there, with its due date.
	lst, err := billing.c.List(billing.ctx(), &feedloopv1.ListRequest{})
	if err != nil || len(lst.GetItems()) != 1 || lst.GetItems()[0].GetAssignment().GetStatus() != feedloopv1.Status_STATUS_PLANNED {
		t.Fatalf("billing list = %v %v", lst, err)
	}

	if _, err := billing.c.Resolve(billing.ctx(), &feedloopv1.ResolveRequest{FeedbackId: id, CustomerMessage: "Refunded 42 EUR."}); err != nil {
		t.Fatal(err)
	}
	if cl := h.events(bus.SubjectClosed, id); len(cl) != 0 {
		t.Fatalf("closed while logistics works: %v", cl)
	}
	if _, err := logistics.c.Decline(logistics.ctx(), &feedloopv1.DeclineRequest{FeedbackId: id, CustomerMessage: "The parcel was delivered to your neighbour."}); err != nil {
		t.Fatal(err)
	}
	closed := h.events(bus.SubjectClosed, id)
	if len(closed) != 1 || strings.Join(closed[0].GetClosed().GetTeams(), ",") != "billing,logistics" || closed[0].GetClosed().GetStatusToken() != statusToken {
		t.Fatalf("closed events = %v", closed)
	}
	// Every transition is an event on feedback.updated.<team> with its actor.
	var trail []string
	for _, ev := range h.events("feedback.updated.*", id) {
		if sc := ev.GetStatusChanged(); sc != nil {
			trail = append(trail, sc.GetTeam()+":"+strings.TrimPrefix(sc.GetTo().String(), "STATUS_")+"@"+sc.GetActor())
		}
	}
	want := "billing:ACKNOWLEDGED@billing-lead billing:PLANNED@billing-lead billing:PLANNED@billing-lead customer-success:REROUTED@customer-success-lead " +
		"logistics:ACKNOWLEDGED@logistics-lead billing:RESOLVED@billing-lead logistics:DECLINED@logistics-lead"
	if strings.Join(trail, " ") != want {
		t.Fatalf("transitions:\n%s\nwant\n%s", strings.Join(trail, " "), want)
	}

	// The status page: customer-facing entries only.
	page := h.statusPage(t, statusToken, "application/json", http.StatusOK)
	for _, s := range []string{"Refunded 42 EUR.", "The parcel was delivered to your neighbour.", "The bank needs two more days.", `"closed":true`} {
		if !strings.Contains(page, s) {
			t.Errorf("status JSON lacks %q:\n%s", s, page)
		}
	}
	for _, s := range []string{"(internal)", "1234567", "escalat"} {
		if strings.Contains(page, s) {
			t.Errorf("status JSON shows %q:\n%s", s, page)
		}
	}
	html := h.statusPage(t, statusToken, "text/html", http.StatusOK)
	if !strings.Contains(html, "Refunded 42 EUR.") || strings.Contains(html, "(internal)") {
		t.Errorf("status HTML:\n%s", html)
	}
	h.statusPage(t, "ffffffffffffffffffffffffffffffff", "application/json", http.StatusNotFound)
	h.statusPage(t, "../../etc/passwd", "text/html", http.StatusNotFound)

	// The survey answer goes to intake's queue, once per item.
	for range 2 {
		resp, err := http.PostForm("http://"+h.svc.HTTPAddr()+"/status/"+statusToken+"/survey", url.Values{"csat": {"1"}, "comment": {"still angry"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("survey answer: %s", resp.Status)
		}
	}
	sub := testkit.Messages(t, h.bus, bus.StreamSubmit, bus.SubmitSubject("survey"))
	if len(sub) != 1 {
		t.Fatalf("%d survey submissions, want 1", len(sub))
	}
	var answer feedloopv1.Feedback
	if err := proto.Unmarshal(sub[0].Data, &answer); err != nil || answer.GetInReplyTo() != id || answer.GetCsat() != 1 || answer.GetCustomer().GetEmail() != "ada@example.com" {
		t.Fatalf("survey submission = %v %v", &answer, err)
	}
	resp, err := http.PostForm("http://"+h.svc.HTTPAddr()+"/status/"+statusToken+"/survey", url.Values{"csat": {"9"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("csat 9: %s", resp.Status)
	}

	// An "answer" from another customer (a wrongly threaded message) is
	// new feedback: it is routed and reopens nothing.
	reply := func(fid, customer string) *feedloopv1.Event {
		return &feedloopv1.Event{Id: "classified-" + fid, FeedbackId: fid, OccurredAt: timestamppb.Now(),
			Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{
				Feedback: &feedloopv1.Feedback{Id: fid, Source: "survey", Csat: proto.Int32(1), InReplyTo: id, Text: "still angry",
					Customer: &feedloopv1.Customer{Id: customer}},
				Classification: &feedloopv1.Classification{},
			}}}
	}
	h.waitHandled(h.publish(reply("fb-answer-stranger", "cust-8")))
	if rs := h.routedFor("fb-answer-stranger"); len(rs) != 1 {
		t.Fatalf("another customer's answer: routed %v, want as new feedback", rs)
	}
	if st := billing.status(id, "billing"); st != feedloopv1.Status_STATUS_RESOLVED {
		t.Fatalf("another customer's answer moved billing to %s", st)
	}

	// The customer's answer comes back classified: CSAT 1 reopens the
	// shares of the teams that handled the item (not the one that handed
	// it on).
	h.waitHandled(h.publish(reply("fb-answer-1", "cust-7")))
	testkit.Eventually(t, "both shares reopened", func() bool {
		return billing.status(id, "billing") == feedloopv1.Status_STATUS_REOPENED && billing.status(id, "logistics") == feedloopv1.Status_STATUS_REOPENED
	})
	if st := billing.status(id, "customer-success"); st != feedloopv1.Status_STATUS_REROUTED {
		t.Fatalf("customer-success = %s", st)
	}
	if rs := h.routedFor("fb-answer-1"); len(rs) != 0 {
		t.Fatalf("the answer was routed as new feedback: %v", rs)
	}

	// Figures per team.
	st, err := billing.c.Stats(billing.ctx(), &feedloopv1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetAcknowledged() != 1 || st.GetResolved() != 1 || st.GetReopened() != 1 || st.GetCsatResponses() != 1 || st.GetCsatMean() != 1 ||
		st.GetMeanTimeToAcknowledge() == nil || st.GetMeanTimeToClose() == nil {
		t.Fatalf("billing stats = %v", st)
	}
	lst2, err := logistics.c.Stats(logistics.ctx(), &feedloopv1.StatsRequest{})
	if err != nil || lst2.GetReroutedIn() != 1 || lst2.GetDeclined() != 1 {
		t.Fatalf("logistics stats = %v %v", lst2, err)
	}
}

func (h *harness) statusPage(t *testing.T, token, accept string, code int) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.svc.HTTPAddr()+"/status/"+token, nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET /status/%s: %s, want %d", token, resp.Status, code)
	}
	if code == http.StatusOK && accept == "application/json" && !json.Valid(body) {
		t.Fatalf("not JSON: %s", body)
	}
	return string(body)
}

// Watch delivers what was routed while no one watched, then live items,
// and a team can watch only itself.
func TestWatch(t *testing.T) {
	h := start(t)
	logistics := h.team("logistics")
	// Routed before the team ever watched: inbox list's business, not Watch's.
	h.submit("fb-watch-0", "", item{topics: []string{"delivery"}})
	h.waitHandled(h.publish(item{id: "fb-watch-sync", topics: []string{"billing"}}.event()))

	ctx, cancel := context.WithCancel(logistics.ctx())
	ws, err := logistics.c.Watch(ctx, &feedloopv1.WatchRequest{Team: "logistics"})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the team's durable consumer", func() bool {
		_, err := h.js.Consumer(t.Context(), bus.StreamFeedback, "watch-logistics")
		return err == nil
	})
	h.submit("fb-watch-1", "", item{topics: []string{"delivery"}})
	h.submit("fb-watch-2", "", item{topics: []string{"delivery"}})
	// The router routes concurrently, so the two may come in either order.
	seen := map[string]bool{}
	for range 2 {
		m, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		seen[m.GetRouted().GetFeedback().GetId()] = true
		if strings.Contains(m.GetRouted().GetFeedback().GetText(), "1234567") {
			t.Fatal("watch shows unredacted text")
		}
	}
	if !seen["fb-watch-1"] || !seen["fb-watch-2"] {
		t.Fatalf("watch delivered %v", seen)
	}
	cancel()

	// Routed while away: the next watcher gets it (within a bound, so that
	// a lost item fails here instead of hanging until the test timeout).
	h.submit("fb-watch-3", "", item{topics: []string{"delivery"}})
	rctx, rcancel := context.WithTimeout(logistics.ctx(), time.Minute)
	defer rcancel()
	ws, err = logistics.c.Watch(rctx, &feedloopv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Delivery is at least once: an item the first watch was sent as it
	// hung up may come again first.
	for {
		m, err := ws.Recv()
		if err != nil {
			t.Fatalf("after reconnect: %v", err)
		}
		id := m.GetRouted().GetFeedback().GetId()
		if id == "fb-watch-3" {
			break
		}
		if !seen[id] {
			t.Fatalf("after reconnect: %s, want fb-watch-3", id)
		}
	}

	other, err := logistics.c.Watch(logistics.ctx(), &feedloopv1.WatchRequest{Team: "billing"})
	if err == nil {
		_, err = other.Recv()
	}
	wantCode(t, "watch another team", err, codes.PermissionDenied, "cannot read team billing")
}

// A live watch gets every item routed while it is open, however many
// watch at once; the team's durable consumer is not used by it.
func TestWatchLive(t *testing.T) {
	h := start(t)
	logistics := h.team("logistics")
	var streams []feedloopv1.TeamService_WatchClient
	for range 2 {
		ws, err := logistics.c.Watch(logistics.ctx(), &feedloopv1.WatchRequest{Live: true})
		if err != nil {
			t.Fatal(err)
		}
		if md, err := ws.Header(); err != nil || md.Get("feedloop-watch")[0] != "ready" {
			t.Fatalf("watch header: %v %v", md, err)
		}
		streams = append(streams, ws)
	}
	h.submit("fb-live-1", "", item{topics: []string{"delivery"}})
	for i, ws := range streams {
		m, err := ws.Recv()
		if err != nil || m.GetRouted().GetFeedback().GetId() != "fb-live-1" {
			t.Fatalf("live watch %d: %v %v", i, m, err)
		}
	}
	if _, err := h.js.Consumer(t.Context(), bus.StreamFeedback, "watch-logistics"); err == nil {
		t.Fatal("a live watch created the team's durable consumer")
	}
}

// A router that dies between a closing status change and its Closed event
// leaves the projector to publish it: the same id the action would have
// used, exactly once.
func TestProjectorCompletesAClosingAction(t *testing.T) {
	h := start(t)
	billing := h.team("billing")
	const id = "fb-crash-1"
	h.submit(id, statusToken, item{topics: []string{"billing"}})
	testkit.Eventually(t, "the item in the read model", func() bool { _, err := billing.get(id); return err == nil })
	if _, err := billing.c.Acknowledge(billing.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id}); err != nil {
		t.Fatal(err)
	}
	// What the team API publishes first for a resolve; the crash takes the rest.
	resolved := &feedloopv1.Event{Id: "resolve-crash-1", FeedbackId: id, OccurredAt: timestamppb.Now(),
		Payload: &feedloopv1.Event_StatusChanged{StatusChanged: &feedloopv1.StatusChanged{
			Team: "billing", From: feedloopv1.Status_STATUS_ACKNOWLEDGED, To: feedloopv1.Status_STATUS_RESOLVED,
			Actor: "billing-lead", CustomerMessage: "Refunded.", StatusToken: statusToken,
		}}}
	if _, err := h.bus.Publish(t.Context(), bus.UpdatedSubject("billing"), resolved); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the closed event", func() bool { return len(h.events(bus.SubjectClosed, id)) == 1 })
	cl := h.events(bus.SubjectClosed, id)[0]
	if cl.GetId() != bus.DeriveID(id, "closed", "1") || strings.Join(cl.GetClosed().GetTeams(), ",") != "billing" {
		t.Fatalf("closed = %v", cl)
	}
	testkit.Eventually(t, "the item closed in the read model", func() bool {
		r, err := billing.get(id)
		return err == nil && r.GetItem().GetClosedAt() != nil
	})
	// Once both consumers handled everything in the stream, a second
	// Closed would be there.
	h.settled()
	if n := len(h.events(bus.SubjectClosed, id)); n != 1 {
		t.Fatalf("%d closed events", n)
	}
}
