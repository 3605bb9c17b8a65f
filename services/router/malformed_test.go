package router_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// rawFrame is a client codec that puts pre-encoded bytes on the wire, so a
// test can send what a well-behaved client never would.
type rawFrame struct{}

func (rawFrame) Name() string { return "proto" }
func (rawFrame) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawFrame) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// A team API request that does not decode is InvalidArgument naming the
// field, as intake's are (grpcserver's codec), not grpc-go's Internal; it
// is refused before authentication, and changes nothing.
func TestTeamAPIMalformedRequestIsInvalidArgument(t *testing.T) {
	e := startEdges(t)
	e.item(teamItem, "00000000000000000000000000000def")
	// CommentRequest{feedback_id: teamItem, text: invalid UTF-8}.
	frame := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), teamItem)
	frame = protowire.AppendBytes(protowire.AppendTag(frame, 2, protowire.BytesType), []byte("called \xff\xfe"))
	truncated := frame[:len(frame)-3]

	cc, err := grpc.NewClient(e.router.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	invoke := func(ctx context.Context, req []byte) error {
		var out []byte
		return cc.Invoke(ctx, "/feedloop.v1.TeamService/Comment", &req, &out, grpc.ForceCodecV2(rawFrame{}))
	}
	if v := fieldViolation(t, invoke(e.as("billing"), frame)); v.GetField() != "text" || v.GetDescription() != "must be valid UTF-8" {
		t.Fatalf("invalid UTF-8 in text: %v", v)
	}
	if v := fieldViolation(t, invoke(context.Background(), frame)); v.GetField() != "text" {
		t.Fatalf("without a token: %v (a malformed request is refused before authentication)", v)
	}
	if v := fieldViolation(t, invoke(e.as("billing"), truncated)); v.GetField() != "payload" {
		t.Fatalf("truncated request: %v", v)
	}
	// Nothing was recorded.
	got, err := e.teams["billing"].Get(e.as("billing"), &feedloopv1.GetRequest{FeedbackId: teamItem})
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range got.GetItem().GetTimeline() {
		if en.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_COMMENT {
			t.Fatalf("a refused comment was recorded: %v", en)
		}
	}
}
