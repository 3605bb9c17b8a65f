// Package grpcport serves feedloop.v1.IntakeService over gRPC and maps the
// use case's errors to status codes: InvalidArgument with a BadRequest
// detail naming each field, Unavailable when the bus or Redis is down.
package grpcport

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/internal/accept"
	"github.com/feedloop/feedloop/services/intake/internal/validate"
)

// MaxBatch is the most items one SubmitBatch may carry (the contract's limit).
const MaxBatch = 500

// batchParallelism bounds the items of one batch in flight at once: enough
// to overlap PubAck round trips, few enough not to starve other callers.
const batchParallelism = 16

// Server implements feedloopv1.IntakeServiceServer.
type Server struct {
	feedloopv1.UnimplementedIntakeServiceServer
	acc *accept.Acceptor
}

// New returns a Server on acc.
func New(acc *accept.Acceptor) *Server { return &Server{acc: acc} }

// Submit accepts one item.
func (s *Server) Submit(ctx context.Context, req *feedloopv1.SubmitRequest) (*feedloopv1.SubmitResponse, error) {
	res, err := s.acc.Submit(ctx, req.GetFeedback())
	if err != nil {
		return nil, Status(err)
	}
	return &feedloopv1.SubmitResponse{FeedbackId: res.FeedbackID, Duplicate: res.Duplicate}, nil
}

// SubmitBatch accepts each item on its own: a bad item gets its violations
// in its result and does not reject the others.
func (s *Server) SubmitBatch(ctx context.Context, req *feedloopv1.SubmitBatchRequest) (*feedloopv1.SubmitBatchResponse, error) {
	items := req.GetItems()
	if len(items) > MaxBatch {
		return nil, Status(accept.Invalid([]validate.Violation{{
			Field:       "items",
			Description: fmt.Sprintf("must have at most %d items, got %d", MaxBatch, len(items)),
		}}))
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
	case errors.Is(err, accept.ErrInvalid):
		vs := accept.Violations(err)
		out := make([]*feedloopv1.FieldViolation, len(vs))
		for i, v := range vs {
			out[i] = &feedloopv1.FieldViolation{Field: v.Field, Description: v.Description}
		}
		return &feedloopv1.SubmitResult{Violations: out}
	default:
		return &feedloopv1.SubmitResult{Error: err.Error()}
	}
}

// Status maps a use-case error to a gRPC status error.
func Status(err error) error {
	switch {
	case errors.Is(err, accept.ErrInvalid):
		vs := accept.Violations(err)
		br := &errdetails.BadRequest{}
		for _, v := range vs {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		st, derr := status.New(codes.InvalidArgument, err.Error()).WithDetails(br)
		if derr != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		return st.Err()
	case errors.Is(err, accept.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}
