package stack_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/devmail"
	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/routing"
)

const examplesDir = "../../../../deploy/examples"

// exampleTeams are the teams of the example routes.
func exampleTeams(t *testing.T) []string {
	t.Helper()
	tree, err := routing.Load(filepath.Join(examplesDir, "routes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tree.Teams()
}

// Development tokens survive a restart on the same data directory: people
// keep the token they pasted. A team new to the routes gets one of its own
// without changing the others; the clear tokens stay private to the owner.
func TestDevTokensAreStable(t *testing.T) {
	data := t.TempDir()
	cfg := stack.DevConfig(examplesDir, data)
	first, err := stack.PrepareDev(&cfg, []string{"billing", "product"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Tokens["billing"] == "" || first.Tokens["billing"] == first.Tokens["product"] {
		t.Fatalf("tokens %v", first.Tokens)
	}
	info, err := os.Stat(first.TokensFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %o, want 600", first.TokensFile, perm)
	}

	cfg = stack.DevConfig(examplesDir, data)
	again, err := stack.PrepareDev(&cfg, []string{"billing", "product", "mobile"})
	if err != nil {
		t.Fatal(err)
	}
	for _, team := range []string{"billing", "product"} {
		if again.Tokens[team] != first.Tokens[team] {
			t.Errorf("%s's token changed across restarts", team)
		}
	}
	if tok := again.Tokens["mobile"]; tok == "" || tok == again.Tokens["billing"] {
		t.Errorf("the new team got token %q", tok)
	}
	hashes, err := os.ReadFile(cfg.Router.TeamTokensFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, team := range again.Teams {
		if !strings.Contains(string(hashes), "team: "+team+",") || strings.Contains(string(hashes), again.Tokens[team]) {
			t.Errorf("the router's tokens file lacks %s's hash, or holds its token in clear:\n%s", team, hashes)
		}
	}

	// A damaged file is an error that says what to do, never new tokens
	// behind people's backs.
	if err := os.WriteFile(first.TokensFile, []byte("tokens: [not, a, map]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = stack.DevConfig(examplesDir, data)
	if _, err := stack.PrepareDev(&cfg, []string{"billing"}); err == nil || !strings.Contains(err.Error(), "delete the file") {
		t.Errorf("damaged tokens file: %v", err)
	}
}

// In development every message the notifier sends lands in the dev
// mailbox through the real SMTP channel: the customer's acknowledgement
// and each routed team's alert, addressed to the team.
func TestDevMailboxGetsCustomerAndTeamMessages(t *testing.T) {
	cfg := stack.DevConfig(examplesDir, t.TempDir())
	cfg.Notifier.ConsoleOutput = io.Discard
	if _, err := stack.PrepareDev(&cfg, exampleTeams(t)); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s.Run)
	if s.Mailbox == nil {
		t.Fatal("PrepareDev did not turn the mailbox on")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	intake := intakeClient(t, s)
	if _, err := intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
		Source: "helpdesk", ExternalId: "mailbox-1", Channel: feedloopv1.Channel_CHANNEL_EMAIL,
		Customer: &feedloopv1.Customer{Name: "Ada", Email: "ada@example.com", Locale: "en", Consent: &feedloopv1.Consent{Contact: true}},
		Text:     "I was charged twice for my order.",
	}}); err != nil {
		t.Fatal(err)
	}
	var customer, team *devmail.Message
	testkit.Eventually(t, "the customer's and billing's messages in the mailbox", func() bool {
		customer, team = nil, nil
		for _, m := range s.Mailbox.Messages() {
			switch {
			case slices.Contains(m.To, "ada@example.com"):
				customer = &m
			case slices.Contains(m.To, stack.DevTeamAddress("billing")):
				team = &m
			}
		}
		return customer != nil && team != nil
	})
	if customer.From != stack.DevMailFrom || customer.Subject == "" || customer.Text == "" || customer.HTML == "" {
		t.Errorf("customer message: %+v", *customer)
	}
	if !strings.Contains(customer.Text, s.StatusURL+"/") {
		t.Errorf("customer message has no status link (%s/…):\n%s", s.StatusURL, customer.Text)
	}
	if !strings.Contains(team.Text, "charged twice") {
		t.Errorf("billing's alert lacks the feedback:\n%s", team.Text)
	}
}

// intakeClient is a gRPC client of s's intake.
func intakeClient(t *testing.T, s *stack.Stack) feedloopv1.IntakeServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(s.Intake.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return feedloopv1.NewIntakeServiceClient(conn)
}
