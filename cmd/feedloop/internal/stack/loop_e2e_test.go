package stack_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

var loopTokens = map[string]string{
	"logistics":        "e2e-logistics-token-4c1d",
	"customer-success": "e2e-cs-token-9a77",
}

// startLoop is start with team tokens for the team API.
func startLoop(t *testing.T) *env {
	t.Helper()
	var b strings.Builder
	b.WriteString("tokens:\n")
	for team, tok := range loopTokens {
		sum := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&b, "  - {team: %s, name: %s-agent, sha256: %s}\n", team, team, hex.EncodeToString(sum[:]))
	}
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tokens, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return startWith(t, func(cfg *stack.Config) { cfg.Router.TeamTokensFile = tokens })
}

type team struct {
	c   feedloopv1.TeamServiceClient
	tok string
}

func (tm team) ctx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tm.tok)
}

// The whole loop through the public APIs: a detractor fans out to two
// teams; logistics acknowledges, plans and resolves, customer success
// declines; the customer gets exactly the acknowledgement, the plan, the
// resolution, the decline and one survey; the survey answer (CSAT 1, on
// the status page) comes back through intake and reopens the item for both
// teams; the teams' figures show it all.
func TestClosedLoop(t *testing.T) {
	e := startLoop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cc, err := grpc.NewClient(e.s.Router.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	api := feedloopv1.NewTeamServiceClient(cc)
	logistics := team{api, loopTokens["logistics"]}
	cs := team{api, loopTokens["customer-success"]}

	const email = "grace@example.com"
	fb := &feedloopv1.Feedback{
		Source: "survey-tool", ExternalId: "loop-1", Channel: feedloopv1.Channel_CHANNEL_SURVEY,
		Customer: &feedloopv1.Customer{Id: "c-loop", Name: "Grace", Email: email, Locale: "en",
			Consent: &feedloopv1.Consent{Contact: true, Survey: true}},
		Subject: "Late parcel",
		Text:    "My parcel arrived late again, the delivery took two weeks.",
		Nps:     int32p(1),
	}
	resp, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	fid := resp.GetFeedbackId()
	testkit.Eventually(t, "both teams see the item", func() bool {
		_, err1 := logistics.c.Get(logistics.ctx(ctx), &feedloopv1.GetRequest{FeedbackId: fid})
		_, err2 := cs.c.Get(cs.ctx(ctx), &feedloopv1.GetRequest{FeedbackId: fid})
		return err1 == nil && err2 == nil
	})

	if _, err := logistics.c.Acknowledge(logistics.ctx(ctx), &feedloopv1.AcknowledgeRequest{FeedbackId: fid}); err != nil {
		t.Fatal(err)
	}
	due := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 5)
	if _, err := logistics.c.Plan(logistics.ctx(ctx), &feedloopv1.PlanRequest{FeedbackId: fid, CustomerMessage: "We are sending a replacement parcel by express.", DueAt: timestamppb.New(due)}); err != nil {
		t.Fatal(err)
	}
	if _, err := logistics.c.Resolve(logistics.ctx(ctx), &feedloopv1.ResolveRequest{FeedbackId: fid, CustomerMessage: "The replacement was delivered today."}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.c.Decline(cs.ctx(ctx), &feedloopv1.DeclineRequest{FeedbackId: fid, CustomerMessage: "Logistics has already made this right; we will not call you as well."}); err != nil {
		t.Fatal(err)
	}

	// Exactly one message per step to the customer, by email (and webhook).
	want := map[string]string{
		"We got your feedback: Late parcel": "",
		"We have a plan: Late parcel":       "We are sending a replacement parcel by express.",
		"Resolved: Late parcel":             "The replacement was delivered today.",
		"About your feedback: Late parcel":  "we will not call you as well",
		"How did we do? (Late parcel)":      "/survey?csat=1",
	}
	testkit.Eventually(t, "five customer emails", func() bool { return len(e.smtp.To(email)) >= len(want) })
	e.idle(t)
	mails := e.smtp.To(email)
	got := map[string]int{}
	var survey string
	for _, m := range mails {
		subj := m.Subject()
		got[subj]++
		body := m.Text()
		if w, ok := want[subj]; ok && w != "" && !strings.Contains(body, w) {
			t.Errorf("email %q lacks %q:\n%s", subj, w, body)
		}
		if strings.HasPrefix(subj, "How did we do?") {
			survey = body
		}
	}
	for subj := range want {
		if got[subj] != 1 {
			t.Errorf("email %q sent %d times", subj, got[subj])
		}
	}
	if len(mails) != len(want) {
		t.Errorf("customer got %d emails, want %d: %v", len(mails), len(want), got)
	}
	for _, step := range []string{"received", "planned", "resolved", "declined", "survey"} {
		if n := len(e.customer.find(fid, step)); n != 1 {
			t.Errorf("customer webhook %s: %d calls, want 1", step, n)
		}
	}

	// The survey link leads to the status page, which shows the customer's
	// timeline; the answer goes through intake and reopens the item.
	link := regexp.MustCompile(`http://\S+/status/([0-9a-f]{32})/survey\?csat=1`).FindStringSubmatch(survey)
	if link == nil {
		t.Fatalf("survey email has no link:\n%s", survey)
	}
	page, err := http.Get(strings.TrimSuffix(link[0], "/survey?csat=1"))
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != http.StatusOK {
		t.Fatalf("status page: %s", page.Status)
	}
	answer, err := http.PostForm(strings.TrimSuffix(link[0], "?csat=1"), url.Values{"csat": {"1"}, "comment": {"Two weeks late, twice."}})
	if err != nil {
		t.Fatal(err)
	}
	answer.Body.Close()
	if answer.StatusCode != http.StatusOK {
		t.Fatalf("survey answer: %s", answer.Status)
	}
	testkit.Eventually(t, "both teams reopened", func() bool {
		r, err := logistics.c.Get(logistics.ctx(ctx), &feedloopv1.GetRequest{FeedbackId: fid})
		if err != nil {
			return false
		}
		n := 0
		for _, a := range r.GetItem().GetAssignments() {
			if a.GetStatus() == feedloopv1.Status_STATUS_REOPENED {
				n++
			}
		}
		return n == 2
	})
	// Both teams are alerted of the reopen; no second survey, no
	// acknowledgement of the answer itself.
	testkit.Eventually(t, "reopen alerts", func() bool { return len(e.teams.find(fid, "reopened")) == 2 })
	e.idle(t)
	if n := len(e.smtp.To(email)); n != len(want) {
		t.Errorf("after the answer the customer has %d emails, want %d", n, len(want))
	}
	if n := len(e.events(t, bus.AllRouted, "")); n != 2 {
		t.Errorf("%d routed events in all, want 2 (the answer is not new feedback)", n)
	}

	// Figures per team.
	for tm, check := range map[team]func(*feedloopv1.StatsResponse) bool{
		logistics: func(s *feedloopv1.StatsResponse) bool {
			return s.GetAcknowledged() == 1 && s.GetResolved() == 1 && s.GetMeanTimeToAcknowledge() != nil && s.GetMeanTimeToClose() != nil
		},
		cs: func(s *feedloopv1.StatsResponse) bool {
			return s.GetDeclined() == 1 && s.GetMeanTimeToClose() != nil && s.GetAcknowledged() == 0
		},
	} {
		st, err := tm.c.Stats(tm.ctx(ctx), &feedloopv1.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !check(st) || st.GetCsatResponses() != 1 || st.GetCsatMean() != 1 || st.GetReopened() != 1 || st.GetClosedLoopRate() != 1 {
			t.Errorf("stats of %s = %v", st.GetTeam(), st)
		}
	}
}
