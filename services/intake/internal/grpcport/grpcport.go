// Package grpcport serves feedloop.v1.IntakeService over gRPC and maps the
// use case's errors to status codes: InvalidArgument with a BadRequest
// detail naming each field, PermissionDenied (with a BadRequest naming
// feedback.source) for another source's item, ResourceExhausted with
// RetryInfo over the rate limit, Unavailable when the bus or Redis is down.
package grpcport

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/internal/app"
	"github.com/feedloop/feedloop/services/intake/validate"
)

// MaxBatch is the most items one SubmitBatch may carry (the contract's limit).
const MaxBatch = 500

// batchParallelism bounds the items of one batch in flight at once: enough
// to overlap PubAck round trips, few enough not to starve other callers.
const batchParallelism = 16

// Server implements feedloopv1.IntakeServiceServer.
type Server struct {
	feedloopv1.UnimplementedIntakeServiceServer
	acc *app.Acceptor
}

// New returns a Server on acc.
func New(acc *app.Acceptor) *Server { return &Server{acc: acc} }

// Submit accepts one item.
func (s *Server) Submit(ctx context.Context, req *feedloopv1.SubmitRequest) (*feedloopv1.SubmitResponse, error) {
	res, err := s.acc.AdmitSubmit(ctx, req.GetFeedback())
	if err != nil {
		return nil, Status(err)
	}
	return &feedloopv1.SubmitResponse{FeedbackId: res.FeedbackID, Duplicate: res.Duplicate}, nil
}

// SubmitBatch accepts each item on its own: a bad item, or one for another
// source than the caller's key, gets its violations in its result and does
// not reject the others. The rate limit is the exception: the batch takes
// one unit per item up front, and over the limit the whole call fails with
// ResourceExhausted and its retry delay, before any item is published, since
// only the call's status can carry the delay to wait.
func (s *Server) SubmitBatch(ctx context.Context, req *feedloopv1.SubmitBatchRequest) (*feedloopv1.SubmitBatchResponse, error) {
	items := req.GetItems()
	if len(items) > MaxBatch {
		return nil, Status(app.Invalid([]validate.Violation{{
			Field:       "items",
			Description: fmt.Sprintf("must have at most %d items, got %d", MaxBatch, len(items)),
		}}))
	}
	perSource := map[string]int{}
	for _, fb := range items {
		perSource[app.Budget(ctx, fb.GetSource())]++
	}
	sources := make([]string, 0, len(perSource))
	for src := range perSource {
		sources = append(sources, src)
	}
	sort.Strings(sources)
	for _, src := range sources {
		if err := s.acc.Admit(ctx, src, perSource[src]); err != nil {
			return nil, Status(err)
		}
	}
	results := make([]*feedloopv1.SubmitResult, len(items))
	sem := make(chan struct{}, batchParallelism)
	var wg sync.WaitGroup
	for i, fb := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = s.result(ctx, fb)
		})
	}
	wg.Wait()
	return &feedloopv1.SubmitBatchResponse{Results: results}, nil
}

func (s *Server) result(ctx context.Context, fb *feedloopv1.Feedback) *feedloopv1.SubmitResult {
	res, err := s.acc.Submit(ctx, fb)
	switch {
	case err == nil:
		return &feedloopv1.SubmitResult{FeedbackId: res.FeedbackID, Duplicate: res.Duplicate}
	case errors.Is(err, app.ErrInvalid):
		vs := app.Violations(err)
		out := make([]*feedloopv1.FieldViolation, len(vs))
		for i, v := range vs {
			out[i] = &feedloopv1.FieldViolation{Field: v.Field, Description: v.Description}
		}
		return &feedloopv1.SubmitResult{Violations: out}
	case errors.Is(err, app.ErrForbidden):
		v, _ := app.Forbidden(err)
		return &feedloopv1.SubmitResult{Violations: []*feedloopv1.FieldViolation{{Field: v.Field, Description: v.Description}}}
	default:
		return &feedloopv1.SubmitResult{Error: err.Error()}
	}
}

// Status maps a use-case error to a gRPC status error.
func Status(err error) error {
	switch {
	case errors.Is(err, app.ErrInvalid):
		vs := app.Violations(err)
		br := &errdetails.BadRequest{}
		for _, v := range vs {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		st, derr := status.New(codes.InvalidArgument, err.Error()).WithDetails(br)
		if derr != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		return st.Err()
	case errors.Is(err, app.ErrForbidden):
		v, _ := app.Forbidden(err)
		return withDetails(codes.PermissionDenied, err.Error(), &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: v.Field, Description: v.Description}},
		})
	case errors.Is(err, app.ErrLimited):
		if d, _ := app.RetryAfter(err); d > 0 {
			return withDetails(codes.ResourceExhausted, err.Error(), &errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		}
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, app.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func withDetails(code codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st, err := status.New(code, msg).WithDetails(details...)
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}
