package grpcport_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/feedloop/feedloop/services/intake/internal/app"
	"github.com/feedloop/feedloop/services/intake/internal/grpcport"
	"github.com/feedloop/feedloop/services/intake/validate"
)

func TestStatus(t *testing.T) {
	forbidden := &app.ForbiddenError{Violation: validate.Violation{Field: "feedback.source", Description: "not yours"}}
	for _, tc := range []struct {
		err   error
		code  codes.Code
		check func(t *testing.T, st *status.Status)
	}{
		{app.Invalid([]validate.Violation{{Field: "feedback.nps", Description: "too big"}}), codes.InvalidArgument, func(t *testing.T, st *status.Status) {
			if br, ok := st.Details()[0].(*errdetails.BadRequest); !ok || br.GetFieldViolations()[0].GetField() != "feedback.nps" {
				t.Errorf("details = %v", st.Details())
			}
		}},
		{fmt.Errorf("wrapped: %w", forbidden), codes.PermissionDenied, func(t *testing.T, st *status.Status) {
			if br, ok := st.Details()[0].(*errdetails.BadRequest); !ok || br.GetFieldViolations()[0].GetField() != "feedback.source" {
				t.Errorf("details = %v", st.Details())
			}
		}},
		{&app.LimitedError{Source: "crm", RetryAfter: 1500 * time.Millisecond, N: 1, Burst: 5}, codes.ResourceExhausted, func(t *testing.T, st *status.Status) {
			if ri, ok := st.Details()[0].(*errdetails.RetryInfo); !ok || ri.GetRetryDelay().AsDuration() != 1500*time.Millisecond {
				t.Errorf("details = %v, want RetryInfo of 1.5s", st.Details())
			}
		}},
		{&app.LimitedError{Source: "crm", N: 9, Burst: 5}, codes.ResourceExhausted, func(t *testing.T, st *status.Status) {
			if len(st.Details()) != 0 {
				t.Errorf("details = %v, want no RetryInfo: waiting cannot help", st.Details())
			}
		}},
		{fmt.Errorf("%w: nats down", app.ErrUnavailable), codes.Unavailable, nil},
	} {
		st := status.Convert(grpcport.Status(tc.err))
		if st.Code() != tc.code || st.Message() != tc.err.Error() {
			t.Errorf("Status(%v) = %s %q, want %s with the error's message", tc.err, st.Code(), st.Message(), tc.code)
			continue
		}
		if tc.check != nil {
			tc.check(t, st)
		}
	}
}
