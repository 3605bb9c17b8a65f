package grpcport_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/grpcport"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
)

// now is the server's clock: 2026-03-04, mid-morning UTC.
var now = time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)

func day(n int) time.Time { return time.Date(2026, 3, 2+n, 0, 0, 0, 0, time.UTC) }

const tokensYAML = `tokens:
  - {team: billing, name: alice, sha256: %s, expires: "2026-06-30T00:00:00Z"}
  - {team: product, sha256: %s}
`

// api serves the TeamService as the router does (teamauth in front) on a
// real read model, and returns clients for billing and product.
type api struct {
	t                *testing.T
	store            *readmodel.Store
	srv              *grpcport.Server
	billing, product feedloopv1.TeamServiceClient
}

func start(t *testing.T) *api {
	t.Helper()
	store, err := readmodel.New(testkit.RedisClient(t))
	if err != nil {
		t.Fatal(err)
	}
	toks, err := teamauth.Parse(fmt.Appendf(nil, tokensYAML, teamauth.Hash("tok-billing"), teamauth.Hash("tok-product")))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcport.New(grpcport.Deps{
		Store:    store,
		NotFound: func(err error) bool { return errors.Is(err, readmodel.ErrNotFound) },
		// Unsorted and with a duplicate, as a routing tree may list them.
		Teams: func() []string { return []string{"product", "billing", "logistics", "billing"} },
		Now:   func() time.Time { return now },
	}, make(chan struct{}))
	unary, stream := teamauth.Interceptors("/"+feedloopv1.TeamService_ServiceDesc.ServiceName+"/", teamauth.Static{T: toks}, func() time.Time { return now })
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
	feedloopv1.RegisterTeamServiceServer(gs, srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	c := feedloopv1.NewTeamServiceClient(cc)
	return &api{t: t, store: store, srv: srv, billing: c, product: c}
}

func (a *api) ctx(team string) context.Context {
	return metadata.AppendToOutgoingContext(a.t.Context(), "authorization", "Bearer tok-"+team)
}

// route folds an item routed to team at occurred into the read model.
func (a *api) route(id, team, text string, occurred time.Time, nps, ces *int32) {
	a.t.Helper()
	fb := &feedloopv1.Feedback{Id: id, Text: text, Subject: "subject of " + id, Nps: nps, Ces: ces,
		Customer: &feedloopv1.Customer{Id: "cust-" + id}, ReceivedAt: timestamppb.New(occurred)}
	a.apply(&feedloopv1.Event{Id: "routed-" + id + "-" + team, FeedbackId: id, OccurredAt: timestamppb.New(occurred),
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{Feedback: fb,
			Classification: &feedloopv1.Classification{Topics: []*feedloopv1.TopicScore{{Topic: "billing"}}},
			Assignment:     &feedloopv1.Assignment{Team: team, Route: team, AcknowledgeBy: timestamppb.New(occurred.Add(time.Hour))}}}})
}

func (a *api) apply(ev *feedloopv1.Event) {
	a.t.Helper()
	if _, err := a.store.Apply(context.Background(), ev); err != nil {
		a.t.Fatal(err)
	}
}

// wantField checks err is InvalidArgument with a violation of field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("%s: %v, want InvalidArgument", what, err)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 && br.GetFieldViolations()[0].GetField() == field {
			return
		}
	}
	t.Fatalf("%s: %v, want a violation of field %s", what, err, field)
}

// Me: the token's team, holder and expiry, and every team sorted once.
func TestMe(t *testing.T) {
	a := start(t)
	me, err := a.billing.Me(a.ctx("billing"), &feedloopv1.MeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if me.GetTeam() != "billing" || me.GetName() != "alice" ||
		!me.GetExpiresAt().AsTime().Equal(time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)) ||
		!slices.Equal(me.GetTeams(), []string{"billing", "logistics", "product"}) {
		t.Fatalf("Me(billing) = %v", me)
	}
	me, err = a.product.Me(a.ctx("product"), &feedloopv1.MeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if me.GetTeam() != "product" || me.GetName() != "product" || me.GetExpiresAt() != nil {
		t.Fatalf("Me(product) = %v, want no expiry", me)
	}
	if _, err := a.billing.Me(t.Context(), &feedloopv1.MeRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Me without a token: %v", err)
	}
}

// List with a query: only the matching items, a total of the matches,
// paging over them; a bad query is refused naming the field.
func TestListQuery(t *testing.T) {
	a := start(t)
	for i, text := range []string{"the refund is late", "app crashes", "refund twice please", "refund"} {
		a.route(fmt.Sprintf("fb-%d", i), "billing", text, now.Add(time.Duration(i)*time.Minute), nil, nil)
	}
	a.route("fb-p", "product", "refund", now, nil, nil)

	resp, err := a.billing.List(a.ctx("billing"), &feedloopv1.ListRequest{Query: "Refund", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := func(r *feedloopv1.ListResponse) []string {
		var out []string
		for _, s := range r.GetItems() {
			out = append(out, s.GetFeedbackId())
		}
		return out
	}
	if !slices.Equal(got(resp), []string{"fb-0", "fb-2"}) || resp.GetTotal() != 3 || resp.GetNextPageToken() == "" {
		t.Fatalf("page 1 = %v (total %d, next %q)", got(resp), resp.GetTotal(), resp.GetNextPageToken())
	}
	resp, err = a.billing.List(a.ctx("billing"), &feedloopv1.ListRequest{Query: "Refund", PageSize: 2, PageToken: resp.GetNextPageToken()})
	if err != nil || !slices.Equal(got(resp), []string{"fb-3"}) || resp.GetTotal() != 3 || resp.GetNextPageToken() != "" {
		t.Fatalf("page 2 = %v (total %d, next %q), %v", got(resp), resp.GetTotal(), resp.GetNextPageToken(), err)
	}
	resp, err = a.billing.List(a.ctx("billing"), &feedloopv1.ListRequest{Query: "refund please", Statuses: []feedloopv1.Status{feedloopv1.Status_STATUS_ROUTED}})
	if err != nil || !slices.Equal(got(resp), []string{"fb-2"}) || resp.GetTotal() != 1 {
		t.Fatalf("two words = %v (total %d), %v", got(resp), resp.GetTotal(), err)
	}
	resp, err = a.billing.List(a.ctx("billing"), &feedloopv1.ListRequest{})
	if err != nil || resp.GetTotal() != 4 {
		t.Fatalf("no query: total %d, %v", resp.GetTotal(), err)
	}

	_, err = a.billing.List(a.ctx("billing"), &feedloopv1.ListRequest{Query: strings.Repeat("x", readmodel.MaxQueryBytes+1)})
	wantField(t, "a long query", err, "query")
	// gRPC clients cannot send invalid UTF-8 in a string field; a caller
	// in process can.
	ctx := teamauth.WithPrincipal(t.Context(), teamauth.Principal{Team: "billing"})
	_, err = a.srv.List(ctx, &feedloopv1.ListRequest{Query: "refund \xff"})
	wantField(t, "invalid UTF-8", err, "query")
}

// Stats over a period through the API: unset means since the stream
// began until today (the server's clock); a period counts only its days;
// a bad period is refused naming the field.
func TestStatsPeriod(t *testing.T) {
	a := start(t)
	n := func(v int32) *int32 { return &v }
	a.route("fb-1", "billing", "one", day(0).Add(9*time.Hour), n(10), n(3))
	a.route("fb-2", "billing", "two", day(1).Add(9*time.Hour), n(0), nil)
	a.route("fb-3", "billing", "three", day(2).Add(9*time.Hour), nil, n(5))
	ctx := a.ctx("billing")

	st, err := a.billing.Stats(ctx, &feedloopv1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetRouted() != 3 || st.GetSince() != nil || !st.GetUntil().AsTime().Equal(day(2)) || len(st.GetDays()) != 3 ||
		st.GetNpsResponses() != 2 || st.GetNps() != 0 || st.GetCesResponses() != 2 || st.GetCesMean() != 4 {
		t.Fatalf("no period = %v", st)
	}
	st, err = a.billing.Stats(ctx, &feedloopv1.StatsRequest{Since: timestamppb.New(day(1).Add(13 * time.Hour)), Until: timestamppb.New(day(1))})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetRouted() != 1 || st.GetNpsDetractors() != 1 || st.GetNps() != -100 || st.GetCesResponses() != 0 ||
		!st.GetSince().AsTime().Equal(day(1)) || len(st.GetDays()) != 1 || st.GetDays()[0].GetRouted() != 1 {
		t.Fatalf("03-03 = %v", st)
	}
	// Since alone runs to today.
	st, err = a.billing.Stats(ctx, &feedloopv1.StatsRequest{Since: timestamppb.New(day(1))})
	if err != nil || st.GetRouted() != 2 || !st.GetUntil().AsTime().Equal(day(2)) || len(st.GetDays()) != 2 {
		t.Fatalf("since 03-03 = %v, %v", st, err)
	}

	_, err = a.billing.Stats(ctx, &feedloopv1.StatsRequest{Since: timestamppb.New(day(2)), Until: timestamppb.New(day(1))})
	wantField(t, "since after until", err, "since")
	_, err = a.billing.Stats(ctx, &feedloopv1.StatsRequest{Since: timestamppb.New(day(3))})
	wantField(t, "since after today", err, "since")
	_, err = a.billing.Stats(ctx, &feedloopv1.StatsRequest{Since: timestamppb.New(day(2).AddDate(0, 0, -readmodel.MaxStatsDays))})
	wantField(t, "a period too long", err, "since")
	if _, err := a.billing.Stats(ctx, &feedloopv1.StatsRequest{Since: timestamppb.New(day(2).AddDate(0, 0, 1-readmodel.MaxStatsDays))}); err != nil {
		t.Fatalf("the longest period: %v", err)
	}
	_, err = a.billing.Stats(ctx, &feedloopv1.StatsRequest{Until: &timestamppb.Timestamp{Seconds: 1, Nanos: -1}})
	wantField(t, "an invalid until", err, "until")
	_, err = a.billing.Stats(ctx, &feedloopv1.StatsRequest{Team: "product"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("another team's stats: %v", err)
	}
}
