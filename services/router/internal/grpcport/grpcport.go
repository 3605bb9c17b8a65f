// Package grpcport is the router's gRPC port, the TeamService: how a
// department lists, reads, watches and works the items routed to it. Reads
// come from the read model; an action is the team use case (app.Team),
// which this port authenticates, decodes and answers in gRPC codes.
package grpcport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/app"
	"github.com/feedloop/feedloop/services/router/internal/itemlock"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
	"github.com/feedloop/feedloop/services/router/internal/workflow"
)

// Store is the read model the API serves.
type Store interface {
	Item(ctx context.Context, id string) (*feedloopv1.Item, error)
	List(ctx context.Context, team string, statuses []feedloopv1.Status, query string, offset, limit int) ([]*feedloopv1.ItemSummary, int64, error)
	CustomerHistory(ctx context.Context, item *feedloopv1.Item, limit int) ([]*feedloopv1.ItemSummary, error)
	// Stats with a zero until is all-time; since and until are UTC days.
	Stats(ctx context.Context, team string, since, until time.Time) (*feedloopv1.StatsResponse, error)
}

// Deps are what the server needs.
type Deps struct {
	Store Store
	// NotFound reports whether a Store error means the item does not exist.
	NotFound func(error) bool
	// Actions is the team use case every action goes to.
	Actions *app.Team
	// Bus is where Watch reads the routed items.
	Bus *bus.Bus
	// Teams are the teams that exist (the routing tree's).
	Teams func() []string
	Now   func() time.Time
	Log   *slog.Logger
}

// Paging limits of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
	historyLimit    = 20
)

// WatchDurable is the durable consumer that keeps a team's routed items
// while no one watches.
func WatchDurable(team string) string { return bus.WatchConsumer(team) }

// Server implements feedloopv1.TeamServiceServer.
type Server struct {
	feedloopv1.UnimplementedTeamServiceServer
	d Deps
	// done ends Watch streams when the service stops: a graceful gRPC stop
	// waits for open streams, which would otherwise never end.
	done <-chan struct{}
}

// New returns the server; done closes when the service shuts down.
func New(d Deps, done <-chan struct{}) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Server{d: d, done: done}
}

// caller returns the authenticated principal; the interceptor guarantees one.
func caller(ctx context.Context) (teamauth.Principal, error) {
	p, ok := teamauth.FromContext(ctx)
	if !ok {
		return p, status.Error(codes.Unauthenticated, "no team token")
	}
	return p, nil
}

// teamOf checks that a request's team, if given, is the caller's own.
func teamOf(p teamauth.Principal, requested string) (string, error) {
	if requested != "" && requested != p.Team {
		return "", status.Errorf(codes.PermissionDenied, "token of team %s cannot read team %s", p.Team, requested)
	}
	return p.Team, nil
}

// List returns the team's items, soonest due first.
func (s *Server) List(ctx context.Context, req *feedloopv1.ListRequest) (*feedloopv1.ListResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	team, err := teamOf(p, req.GetTeam())
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = DefaultPageSize
	case size < 0 || size > MaxPageSize:
		return nil, invalid("page_size", fmt.Sprintf("must be between 1 and %d, got %d", MaxPageSize, size))
	}
	offset := 0
	if tok := req.GetPageToken(); tok != "" {
		offset, err = strconv.Atoi(tok)
		if err != nil || offset < 0 {
			return nil, invalid("page_token", "not a token from a previous page")
		}
	}
	for i, st := range req.GetStatuses() {
		if _, ok := feedloopv1.Status_name[int32(st)]; !ok || st == feedloopv1.Status_STATUS_UNSPECIFIED {
			return nil, invalid(fmt.Sprintf("statuses[%d]", i), fmt.Sprintf("unknown status %d", st))
		}
	}
	q := req.GetQuery()
	switch {
	case len(q) > readmodel.MaxQueryBytes:
		return nil, invalid("query", fmt.Sprintf("at most %d bytes, got %d", readmodel.MaxQueryBytes, len(q)))
	case !utf8.ValidString(q):
		return nil, invalid("query", "must be valid UTF-8")
	}
	items, total, err := s.d.Store.List(ctx, team, req.GetStatuses(), q, offset, size)
	if errors.Is(err, readmodel.ErrQueryTooBroad) {
		return nil, status.Errorf(codes.FailedPrecondition, "query: %v; ask for fewer statuses", err)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	resp := &feedloopv1.ListResponse{Items: items, Total: total}
	if next := offset + len(items); int64(next) < total && len(items) > 0 {
		resp.NextPageToken = strconv.Itoa(next)
	}
	return resp, nil
}

// Get returns an item routed to the caller's team with its whole timeline.
func (s *Server) Get(ctx context.Context, req *feedloopv1.GetRequest) (*feedloopv1.GetResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	item, err := s.item(ctx, req.GetFeedbackId())
	if err != nil {
		return nil, err
	}
	if assignment(item, p.Team) == nil {
		return nil, status.Errorf(codes.PermissionDenied, "feedback %s was not routed to team %s", item.GetFeedbackId(), p.Team)
	}
	history, err := s.d.Store.CustomerHistory(ctx, item, historyLimit)
	if err != nil {
		return nil, unavailable(err)
	}
	return &feedloopv1.GetResponse{Item: forTeams(item), CustomerHistory: history}, nil
}

// Stats returns the team's closed-loop figures over the period asked for:
// UTC days from since (unset: since the stream began) to until (unset:
// today), both included.
func (s *Server) Stats(ctx context.Context, req *feedloopv1.StatsRequest) (*feedloopv1.StatsResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	team, err := teamOf(p, req.GetTeam())
	if err != nil {
		return nil, err
	}
	day := func(t time.Time) time.Time {
		y, m, d := t.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	var since time.Time
	until := day(s.d.Now())
	if ts := req.GetUntil(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, invalid("until", err.Error())
		}
		until = day(ts.AsTime())
	}
	if ts := req.GetSince(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, invalid("since", err.Error())
		}
		since = day(ts.AsTime())
		if since.After(until) {
			return nil, invalid("since", fmt.Sprintf("must not be after until (%s), got %s", until.Format(time.DateOnly), since.Format(time.DateOnly)))
		}
		if n := int(until.Sub(since).Hours()/24) + 1; n > readmodel.MaxStatsDays {
			return nil, invalid("since", fmt.Sprintf("a period is at most %d days, got %d", readmodel.MaxStatsDays, n))
		}
	}
	st, err := s.d.Store.Stats(ctx, team, since, until)
	if err != nil {
		return nil, unavailable(err)
	}
	return st, nil
}

// Me tells who the caller's token belongs to, until when it is valid, and
// which teams exist (the routing tree's, sorted).
func (s *Server) Me(ctx context.Context, _ *feedloopv1.MeRequest) (*feedloopv1.MeResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	resp := &feedloopv1.MeResponse{Team: p.Team, Name: p.Name}
	if !p.Expires.IsZero() {
		resp.ExpiresAt = timestamppb.New(p.Expires)
	}
	if s.d.Teams != nil {
		// A copy: Teams may hand out the routing tree's own slice.
		resp.Teams = slices.Compact(slices.Sorted(slices.Values(s.d.Teams())))
	}
	return resp, nil
}

// Acknowledge says the team has seen the item.
func (s *Server) Acknowledge(ctx context.Context, req *feedloopv1.AcknowledgeRequest) (*feedloopv1.AcknowledgeResponse, error) {
	a, err := s.act(ctx, req.GetFeedbackId(), workflow.Command{Action: workflow.Acknowledge})
	return &feedloopv1.AcknowledgeResponse{Assignment: a}, err
}

// Plan promises the customer a date.
func (s *Server) Plan(ctx context.Context, req *feedloopv1.PlanRequest) (*feedloopv1.PlanResponse, error) {
	msg, err := words(customerMessage, req.GetCustomerMessage(), "message", req.GetMessage())
	if err != nil {
		return nil, err
	}
	cmd := workflow.Command{Action: workflow.Plan, Message: msg}
	if req.GetDueAt() != nil {
		if err := req.GetDueAt().CheckValid(); err != nil {
			return nil, invalid("due_at", err.Error())
		}
		cmd.DueAt = req.GetDueAt().AsTime()
	}
	a, err := s.act(ctx, req.GetFeedbackId(), cmd)
	return &feedloopv1.PlanResponse{Assignment: a}, err
}

// Resolve closes the team's share with a message.
func (s *Server) Resolve(ctx context.Context, req *feedloopv1.ResolveRequest) (*feedloopv1.ResolveResponse, error) {
	msg, err := words(customerMessage, req.GetCustomerMessage(), "message", req.GetMessage())
	if err != nil {
		return nil, err
	}
	a, err := s.act(ctx, req.GetFeedbackId(), workflow.Command{Action: workflow.Resolve, Message: msg})
	return &feedloopv1.ResolveResponse{Assignment: a}, err
}

// Decline closes the team's share with a reason.
func (s *Server) Decline(ctx context.Context, req *feedloopv1.DeclineRequest) (*feedloopv1.DeclineResponse, error) {
	msg, err := words(customerMessage, req.GetCustomerMessage(), "reason", req.GetReason())
	if err != nil {
		return nil, err
	}
	a, err := s.act(ctx, req.GetFeedbackId(), workflow.Command{Action: workflow.Decline, Message: msg})
	return &feedloopv1.DeclineResponse{Assignment: a}, err
}

// Reroute hands the team's share to another team.
func (s *Server) Reroute(ctx context.Context, req *feedloopv1.RerouteRequest) (*feedloopv1.RerouteResponse, error) {
	note, err := words(internalNote, req.GetInternalNote(), "reason", req.GetReason())
	if err != nil {
		return nil, err
	}
	a, err := s.act(ctx, req.GetFeedbackId(), workflow.Command{Action: workflow.Reroute, Message: note, RerouteTo: req.GetTeam()})
	return &feedloopv1.RerouteResponse{Assignment: a}, err
}

// Comment adds an internal note.
func (s *Server) Comment(ctx context.Context, req *feedloopv1.CommentRequest) (*feedloopv1.CommentResponse, error) {
	note, err := words(internalNote, req.GetInternalNote(), "text", req.GetText())
	if err != nil {
		return nil, err
	}
	var id string
	_, err = s.actWith(ctx, req.GetFeedbackId(), workflow.Command{Action: workflow.Comment, Message: note}, func(outs []workflow.Out) { id = outs[0].Event.GetId() })
	if err != nil {
		return nil, err
	}
	return &feedloopv1.CommentResponse{EventId: id}, nil
}

// The request fields of an action's words, named by who reads them; the
// workflow's field errors use the same names.
const (
	customerMessage = workflow.CustomerMessageField
	internalNote    = workflow.InternalNoteField
)

// words is the text of an action: the field named by its audience, or the
// deprecated field it replaced, which older clients still send. Both set
// and different is refused rather than guessed at: one of them would reach
// the wrong reader.
func words(field, v, oldField, old string) (string, error) {
	switch {
	case old == "" || old == v:
		return v, nil
	case v == "":
		return old, nil
	}
	return "", invalid(field, fmt.Sprintf("differs from %s, the deprecated field it replaces; send %s only", oldField, field))
}

func (s *Server) act(ctx context.Context, id string, cmd workflow.Command) (*feedloopv1.AssignmentState, error) {
	return s.actWith(ctx, id, cmd, nil)
}

// actWith runs one action as the caller's team (app.Team.Act) and returns
// the team's share as it now is; published is given the events.
func (s *Server) actWith(ctx context.Context, id string, cmd workflow.Command, published func([]workflow.Out)) (*feedloopv1.AssignmentState, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, invalid("feedback_id", "required")
	}
	cmd.Team, cmd.Actor = p.Team, p.Name
	done, err := s.d.Actions.Act(ctx, id, cmd)
	var refused *app.RefusedError
	switch {
	case err == nil:
	case errors.Is(err, itemlock.ErrBusy):
		return nil, status.Error(codes.Aborted, err.Error())
	case errors.Is(err, app.ErrNotFound):
		return nil, status.Errorf(codes.NotFound, "feedback %s not found", id)
	case errors.As(err, &refused):
		return nil, decideError(refused.Err)
	default:
		return nil, unavailable(err)
	}
	if published != nil {
		published(done.Events)
	}
	return done.Assignment, nil
}

func (s *Server) item(ctx context.Context, id string) (*feedloopv1.Item, error) {
	if id == "" {
		return nil, invalid("feedback_id", "required")
	}
	item, err := s.d.Store.Item(ctx, id)
	switch {
	case err == nil:
		return item, nil
	case s.d.NotFound(err):
		return nil, status.Errorf(codes.NotFound, "feedback %s not found", id)
	default:
		return nil, unavailable(err)
	}
}

// Watch streams items newly routed to the caller's team, from a durable
// consumer: what arrived while no one watched comes first. A message is
// acknowledged only after it was sent, so a client that drops mid-stream
// gets it again next time. A live watch reads an ordered consumer of its
// own instead: every open page sees every item, none is kept for later.
func (s *Server) Watch(req *feedloopv1.WatchRequest, stream feedloopv1.TeamService_WatchServer) error {
	ctx := stream.Context()
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	team, err := teamOf(p, req.GetTeam())
	if err != nil {
		return err
	}
	var cons jetstream.Consumer
	if req.GetLive() {
		cons, err = s.d.Bus.JetStream().OrderedConsumer(ctx, bus.StreamFeedback, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{bus.RoutedSubject(team)},
			DeliverPolicy:  jetstream.DeliverNewPolicy,
		})
	} else {
		cons, err = s.durableWatch(ctx, team)
	}
	if err != nil {
		return unavailable(err)
	}
	return s.stream(ctx, team, cons, !req.GetLive(), stream)
}

// durableWatch is the team's durable watch consumer.
func (s *Server) durableWatch(ctx context.Context, team string) (jetstream.Consumer, error) {
	return s.d.Bus.EnsureConsumer(ctx, bus.ConsumerConfig{
		Stream:         bus.StreamFeedback,
		Durable:        WatchDurable(team),
		FilterSubjects: []string{bus.RoutedSubject(team)},
		MaxDeliver:     -1,
		MaxAckPending:  256,
		// A team's first watch starts now, not with everything ever
		// routed to it (inbox list shows what is open); from then on the
		// durable keeps what arrives while no one watches.
		StartNew: true,
	})
}

// stream sends cons's routed items to the client until either ends; ack
// says whether the consumer wants acknowledgements (a durable's do).
func (s *Server) stream(ctx context.Context, team string, cons jetstream.Consumer, ack bool, stream feedloopv1.TeamService_WatchServer) error {
	it, err := cons.Messages()
	if err != nil {
		return unavailable(err)
	}
	// Headers say the watch is in place: a client that waits for them
	// knows that whatever is routed from then on reaches it.
	if err := stream.SendHeader(metadata.Pairs("feedloop-watch", "ready")); err != nil {
		it.Stop()
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	go func() {
		select {
		case <-s.done:
			it.Stop()
		case <-ctx.Done():
		}
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return unavailable(err)
		}
		resp, err := watchResponse(m.Data())
		if err != nil {
			// Never sendable: skip it rather than block the team's stream.
			s.d.Log.WarnContext(ctx, "grpcport: skipping undecodable routed message", "team", team, "err", err)
			if ack {
				_ = m.Term()
			}
			continue
		}
		// A client that hung up gets the item again next time. Its stream
		// still takes a Send (gRPC buffers it, and it would be acked) until
		// the iterator has stopped, so a message pulled after the hang-up
		// goes back.
		if ctx.Err() != nil {
			if ack {
				_ = m.Nak()
			}
			return nil
		}
		if err := stream.Send(resp); err != nil {
			if ack {
				_ = m.Nak()
			}
			return err
		}
		if !ack {
			continue
		}
		// Sent is sent: ack it even if the client hangs up right after.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = m.DoubleAck(actx)
		cancel()
		if err != nil {
			s.d.Log.WarnContext(ctx, "grpcport: watch ack failed; the item will be sent again", "team", team, "err", err)
		}
	}
}

func watchResponse(data []byte) (*feedloopv1.WatchResponse, error) {
	var ev feedloopv1.Event
	if err := proto.Unmarshal(data, &ev); err != nil {
		return nil, err
	}
	r := ev.GetRouted()
	if r == nil {
		return nil, fmt.Errorf("event %s is not Routed", ev.GetId())
	}
	r = proto.CloneOf(r)
	// Teams see the redacted text only.
	if red := r.GetClassification().GetRedactedText(); red != "" && r.Feedback != nil {
		r.Feedback.Text = red
	}
	return &feedloopv1.WatchResponse{EventId: ev.GetId(), Routed: r}, nil
}

// forTeams strips what teams must not see: the customer's status token.
func forTeams(item *feedloopv1.Item) *feedloopv1.Item {
	out := proto.CloneOf(item)
	out.StatusToken = ""
	return out
}

func assignment(item *feedloopv1.Item, team string) *feedloopv1.AssignmentState {
	for _, a := range item.GetAssignments() {
		if a.GetTeam() == team {
			return a
		}
	}
	return nil
}

func decideError(err error) error {
	var fe *workflow.FieldError
	switch {
	case errors.As(err, &fe):
		return invalid(fe.Field, fe.Rule)
	case errors.Is(err, workflow.ErrIllegal):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, workflow.ErrNotAssigned):
		return status.Error(codes.PermissionDenied, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

// invalid is InvalidArgument with a BadRequest field violation.
func invalid(field, rule string) error {
	st := status.New(codes.InvalidArgument, field+": "+rule)
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: rule}}}); err == nil {
		st = d
	}
	return st.Err()
}

func unavailable(err error) error { return status.Error(codes.Unavailable, err.Error()) }
