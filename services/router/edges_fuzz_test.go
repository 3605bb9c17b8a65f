package router_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/validate"
	"github.com/feedloop/feedloop/services/router/internal/app"
)

const (
	fuzzClosed      = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
	fuzzClosedToken = "000000000000000000000000000f0220"
	fuzzOpen        = "2d3e4f5a-6b7c-4d8e-9fa0-1b2c3d4e5f60"
	fuzzOpenToken   = "000000000000000000000000000f0221"
)

// FuzzEdges drives random survey and team-API input through the real
// status page and team API, with intake behind them on the same bus. Every
// input is either refused with a 4xx (InvalidArgument) naming a field, or
// accepted and then stored: a survey answer reaches intake and is not
// dead-lettered, a team note is in the item's timeline. Never a 5xx, never
// accepted and then dead-lettered. One stack serves every input.
func FuzzEdges(f *testing.F) {
	// The findings, and their neighbours.
	f.Add("5", "good\x00bad", false, uint8(0), "called the customer")
	f.Add("4", "", false, uint8(1), "refund\x00soon")
	f.Add("5", "\xff\xfe", false, uint8(2), "\x1b[31mnot ours")
	f.Add("5", "\x1b[31mred", true, uint8(3), "a delivery problem")
	f.Add("3", "fine, thanks\r\n\tbye", true, uint8(0), "line\r\nbreak")
	f.Add("9", "", false, uint8(1), "   ")
	f.Add("x", "ok", true, uint8(2), "")
	f.Add("2", strings.Repeat("é", 3000), false, uint8(3), strings.Repeat("x", 5000))
	f.Add("1", "  \u2028 ", true, uint8(0), "\u2029")
	f.Add("5", "all good", false, uint8(1), "Refund on its way")

	e := startEdges(f)
	e.closedItem(fuzzClosed, fuzzClosedToken)
	e.item(fuzzOpen, fuzzOpenToken)
	var plans atomic.Int32

	f.Fuzz(func(t *testing.T, csat, comment string, asJSON bool, action uint8, text string) {
		e.tb = t // failures are this input's
		fuzzSurvey(t, e, csat, comment, asJSON)
		fuzzTeamAPI(t, e, action, text, int(plans.Add(1)))
	})
}

func fuzzSurvey(t *testing.T, e *edges, csat, comment string, asJSON bool) {
	var r surveyResult
	var score int
	var sent string // the comment as the status page reads it
	if asJSON {
		c, _ := json.Marshal(comment) // as a browser would send it: valid JSON, invalid UTF-8 replaced
		body := `{"csat":` + csat + `,"comment":` + string(c) + `}`
		var ans struct {
			CSAT    int    `json:"csat"`
			Comment string `json:"comment"`
		}
		_ = json.NewDecoder(strings.NewReader(body)).Decode(&ans) // as the status page decodes
		score, sent = ans.CSAT, ans.Comment
		r = e.survey(fuzzClosedToken, nil, body, false)
	} else {
		score, _ = strconv.Atoi(csat)
		sent = comment
		r = e.survey(fuzzClosedToken, url.Values{"csat": {csat}, "comment": {comment}}, "", false)
	}
	switch {
	case r.code >= 500:
		t.Fatalf("survey answer (csat %q, comment %q): %d %s", csat, comment, r.code, r.body)
	case r.code == http.StatusOK:
		if !r.OK {
			t.Fatalf("200 without ok: %s", r.body)
		}
		// Accepted: intake must take it, not dead-letter it.
		ev := e.stored(app.AnswerID(fuzzClosed, int32(score), strings.TrimSpace(sent)))
		if fb := ev.GetReceived().GetFeedback(); fb.GetCsat() != int32(score) || fb.GetText() != strings.TrimSpace(sent) {
			t.Fatalf("intake received csat %d %q, want %d %q", fb.GetCsat(), fb.GetText(), score, strings.TrimSpace(sent))
		}
	case r.code >= 400:
		if r.OK || r.Field == "" || !strings.HasPrefix(r.Error, r.Field+": ") {
			t.Fatalf("refusal %d does not name a field: %s", r.code, r.body)
		}
		// Refused only for a reason: a score out of range or a comment
		// that breaks a rule.
		small := len(url.Values{"csat": {csat}, "comment": {comment}}.Encode()) < app.MaxCommentBytes
		if r.Field == "comment" && small && len(sent) <= app.MaxCommentBytes && validate.Text("comment", strings.TrimSpace(sent), validate.MaxTextBytes) == nil {
			t.Fatalf("comment %q refused though intake takes it: %s", sent, r.body)
		}
	default:
		t.Fatalf("survey answer: %d %s", r.code, r.body)
	}
}

// fuzzTeamAPI sends text as one action's free text: a note or a plan on the
// open item, a decline or reroute reason on the closed one (refused for the
// field, or else for the state: nothing changes).
func fuzzTeamAPI(t *testing.T, e *edges, action uint8, text string, n int) {
	// A gRPC client cannot send a string that is not UTF-8 (the proto
	// codec refuses to marshal it); the workflow tests cover that text.
	text = strings.ToValidUTF8(text, "\uFFFD")
	billing, ctx := e.teams["billing"], e.as("billing")
	field := "internal_note"
	var err error
	switch action % 4 {
	case 0:
		var res *feedloopv1.CommentResponse
		res, err = billing.Comment(ctx, &feedloopv1.CommentRequest{FeedbackId: fuzzOpen, InternalNote: text})
		if err == nil {
			got, gerr := billing.Get(ctx, &feedloopv1.GetRequest{FeedbackId: fuzzOpen})
			if gerr != nil {
				t.Fatal(gerr)
			}
			stored := false
			for _, en := range got.GetItem().GetTimeline() {
				stored = stored || en.GetEventId() == res.GetEventId() && en.GetText() == text
			}
			if !stored {
				t.Fatalf("note %q accepted but not in the timeline", text)
			}
		}
	case 1:
		field = "customer_message"
		// Each plan moves the date: planning the same date again is refused.
		due := time.Now().UTC().AddDate(0, 0, n)
		_, err = billing.Plan(ctx, &feedloopv1.PlanRequest{FeedbackId: fuzzOpen, CustomerMessage: text, DueAt: timestamppb.New(due)})
	case 2:
		field = "customer_message"
		_, err = billing.Decline(ctx, &feedloopv1.DeclineRequest{FeedbackId: fuzzClosed, CustomerMessage: text})
	case 3:
		field = "internal_note"
		_, err = billing.Reroute(ctx, &feedloopv1.RerouteRequest{FeedbackId: fuzzClosed, Team: "logistics", InternalNote: text})
	}
	bad := strings.TrimSpace(text) == "" || len([]rune(text)) > 4000 || validate.Text(field, text, validate.MaxTextBytes) != nil
	switch code := status.Code(err); {
	case code == codes.InvalidArgument:
		if v := fieldViolation(t, err); v.GetField() != field || v.GetDescription() == "" {
			t.Fatalf("%q refused on field %q (%s), want %s", text, v.GetField(), v.GetDescription(), field)
		}
		if !bad {
			t.Fatalf("%s %q refused though intake's rules take it: %v", field, text, err)
		}
	case bad:
		t.Fatalf("%s %q: %v, want InvalidArgument", field, text, err)
	case code == codes.OK && action%4 < 2, code == codes.FailedPrecondition && action%4 >= 2:
	default:
		t.Fatalf("%s %q: %v", field, text, err)
	}
}
