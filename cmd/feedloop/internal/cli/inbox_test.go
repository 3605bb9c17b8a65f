package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/cmd/feedloop/internal/teamtoken"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// inboxEnv is a whole feedloop (embedded NATS, real Redis) whose router
// admits tokens made by `feedloop inbox token`.
type inboxEnv struct {
	s      *stack.Stack
	tokens map[string]string // team → token
	server string            // the router's team API
	intake string
}

// newInboxEnv makes a token per team with the token command, writes the
// printed lines into the router's tokens file and starts the stack.
func newInboxEnv(t *testing.T, teams ...string) *inboxEnv {
	t.Helper()
	e := &inboxEnv{tokens: map[string]string{}}
	file := "tokens:\n"
	for _, team := range teams {
		// --expires: the router reads the line with its expiry.
		code, stdout, stderr := run(t, "inbox", "token", "--team", team, "--name", team+"-lead", "--expires", "30d", "--json")
		if code != 0 {
			t.Fatalf("inbox token: exit %d: %s", code, stderr)
		}
		var out struct{ Token, Line string }
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("inbox token --json: %v: %q", err, stdout)
		}
		e.tokens[team] = out.Token
		file += "  " + out.Line + "\n"
	}
	tokensFile := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tokensFile, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := stack.DevConfig(examples, t.TempDir())
	cfg.RedisURL = testkit.Redis(t)
	cfg.Router.TeamTokensFile = tokensFile
	cfg.Notifier.ConsoleOutput = &testkit.SyncBuffer{}
	s, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s.Run)
	e.s, e.server, e.intake = s, s.Router.GRPCAddr(), s.Intake.GRPCAddr()
	return e
}

// inbox runs `feedloop inbox ARGS --server …` as team (FEEDLOOP_TOKEN).
func (e *inboxEnv) inbox(t *testing.T, team string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv(envToken, e.tokens[team])
	return run(t, append(append([]string{"inbox"}, args...), "--server", e.server)...)
}

// ok runs an inbox command that must succeed.
func (e *inboxEnv) ok(t *testing.T, team string, args ...string) string {
	t.Helper()
	code, stdout, stderr := e.inbox(t, team, args...)
	if code != 0 {
		t.Fatalf("inbox %v as %s: exit %d: %s", args, team, code, stderr)
	}
	return stdout
}

// fails runs an inbox command that must fail with exit code want and a
// stderr containing every one of msgs.
func (e *inboxEnv) fails(t *testing.T, team string, want int, msgs []string, args ...string) string {
	t.Helper()
	code, _, stderr := e.inbox(t, team, args...)
	if code != want {
		t.Fatalf("inbox %v as %s: exit %d, want %d: %s", args, team, code, want, stderr)
	}
	for _, m := range msgs {
		if !strings.Contains(stderr, m) {
			t.Errorf("inbox %v as %s: stderr lacks %q: %s", args, team, m, stderr)
		}
	}
	return stderr
}

// submit sends an item through intake with the submit command.
func (e *inboxEnv) submit(t *testing.T, externalID, text string) string {
	t.Helper()
	code, stdout, stderr := run(t, "submit", "--server", e.intake, "--source", "helpdesk", "--external-id", externalID,
		"--customer-id", "c-ada", "--email", "ada@example.com", "--name", "Ada", "--consent", "--text", text)
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	return strings.TrimSpace(stdout)
}

// get is `inbox show --json` decoded.
func (e *inboxEnv) get(t *testing.T, team, id string) *feedloopv1.GetResponse {
	t.Helper()
	var resp feedloopv1.GetResponse
	if err := protojson.Unmarshal([]byte(e.ok(t, team, "show", id, "--json")), &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

func (e *inboxEnv) list(t *testing.T, team string, args ...string) *feedloopv1.ListResponse {
	t.Helper()
	var resp feedloopv1.ListResponse
	if err := protojson.Unmarshal([]byte(e.ok(t, team, append([]string{"list", "--json"}, args...)...)), &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

func (e *inboxEnv) stats(t *testing.T, team string) *feedloopv1.StatsResponse {
	t.Helper()
	var resp feedloopv1.StatsResponse
	if err := protojson.Unmarshal([]byte(e.ok(t, team, "stats", "--json")), &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

// idle waits until every durable consumer of FEEDBACK but the watchers'
// has nothing pending: no event is still on its way into the read model.
func (e *inboxEnv) idle(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, "the pipeline to settle", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stream, err := e.s.Bus.JetStream().Stream(ctx, bus.StreamFeedback)
		if err != nil {
			return false
		}
		names := stream.ConsumerNames(ctx)
		for name := range names.Name() {
			if strings.HasPrefix(name, "watch-") {
				continue
			}
			c, err := stream.Consumer(ctx, name)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return names.Err() == nil
	})
}

func statusOf(list *feedloopv1.ListResponse, id string) feedloopv1.Status {
	for _, it := range list.GetItems() {
		if it.GetFeedbackId() == id {
			return it.GetAssignment().GetStatus()
		}
	}
	return feedloopv1.Status_STATUS_UNSPECIFIED
}

// Every inbox command against a real router: what a team does by hand,
// what a script reads with --json, and what is refused.
func TestInbox(t *testing.T) {
	e := newInboxEnv(t, "billing", "product", "accounts")

	// A watcher started before anything is routed sees billing's items (a
	// team's first watch starts with what is routed from then on).
	var watchOut, watchErr testkit.SyncBuffer
	t.Setenv(envToken, e.tokens["billing"])
	ctx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan int, 1)
	go func() {
		watchDone <- Main(ctx, []string{"inbox", "watch", "--json", "--server", e.server}, &watchOut, &watchErr)
	}()
	defer stopWatch()
	// A team's first watch starts when its durable consumer exists.
	testkit.Eventually(t, "the watcher's consumer", func() bool {
		_, err := e.s.Bus.JetStream().Consumer(context.Background(), bus.StreamFeedback, "watch-billing")
		return err == nil
	})

	a := e.submit(t, "A-1", "I was charged twice for my subscription.")
	b := e.submit(t, "B-1", "I was charged twice and the app crashes when I open the invoice.")

	t.Run("watch prints each newly routed item as one protojson line", func(t *testing.T) {
		testkit.Eventually(t, "both items watched", func() bool {
			return strings.Contains(watchOut.String(), a) && strings.Contains(watchOut.String(), b)
		})
		stopWatch()
		if code := <-watchDone; code != 0 {
			t.Fatalf("watch exited %d after Ctrl-C: %s", code, watchErr.String())
		}
		lines := strings.Split(strings.TrimSpace(watchOut.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines, want one per routed item:\n%s", len(lines), watchOut.String())
		}
		for _, l := range lines {
			var w feedloopv1.WatchResponse
			if err := protojson.Unmarshal([]byte(l), &w); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			if w.GetRouted().GetAssignment().GetTeam() != "billing" || w.GetEventId() == "" {
				t.Errorf("watched %v", &w)
			}
		}
	})

	t.Run("list shows the team's open items, soonest due first", func(t *testing.T) {
		testkit.Eventually(t, "both items listed", func() bool { return len(e.list(t, "billing").GetItems()) == 2 })
		l := e.list(t, "billing")
		if l.GetTotal() != 2 || statusOf(l, a) != feedloopv1.Status_STATUS_ROUTED || statusOf(l, b) != feedloopv1.Status_STATUS_ROUTED {
			t.Fatalf("list = %v", l)
		}
		human := e.ok(t, "billing", "list")
		for _, want := range []string{"ID", "STATUS", "DUE", "PRIORITY", "TOPICS", "EXCERPT", a, b, "routed", "normal", "billing", "I was charged twice for my subscription."} {
			if !strings.Contains(human, want) {
				t.Errorf("list lacks %q:\n%s", want, human)
			}
		}
		if p := e.list(t, "product"); len(p.GetItems()) != 1 || p.GetItems()[0].GetFeedbackId() != b {
			t.Errorf("product lists %v, want only %s", p.GetItems(), b)
		}
	})

	t.Run("refused calls name the code and change nothing", func(t *testing.T) {
		t.Setenv(envToken, "")
		code, _, stderr := run(t, "inbox", "list", "--server", e.server)
		if code != 2 || !strings.Contains(stderr, envToken) {
			t.Errorf("no token: exit %d, %q", code, stderr)
		}
		e.tokens["intruder"] = "not-a-configured-token-0123456789"
		stderr = e.fails(t, "intruder", 1, []string{"Unauthenticated", "unknown team token", envToken}, "ack", a)
		if strings.Contains(stderr, e.tokens["intruder"]) {
			t.Errorf("the token was printed: %s", stderr)
		}
		e.fails(t, "product", 1, []string{"PermissionDenied", "not routed to team product"}, "show", a)
		e.fails(t, "product", 1, []string{"PermissionDenied"}, "ack", a)
		e.fails(t, "billing", 1, []string{"PermissionDenied", "product"}, "list", "--team", "product")
		e.fails(t, "billing", 1, []string{"NotFound"}, "show", "0badc0de-0000-0000-0000-000000000000")
		// An id may be shortened to a unique prefix of an item of the team's.
		e.fails(t, "billing", 2, []string{"at least 4 characters"}, "show", a[:3])
		e.fails(t, "billing", 1, []string{"no item of your team's starts with"}, "show", "ffffffff")
		e.fails(t, "product", 1, []string{"no item of your team's starts with"}, "ack", a[:8])
		// The old flag still works, with a warning naming the new one.
		e.fails(t, "billing", 1, []string{"FailedPrecondition", "routed", "use --customer-message"}, "resolve", a, "--message", "done")
		e.fails(t, "billing", 2, []string{"--status", "pending"}, "list", "--status", "pending")
		e.fails(t, "billing", 2, []string{"want one feedback id"}, "ack")
		e.fails(t, "billing", 2, []string{"unknown flag"}, "ack", a, "--frobnicate")
		code, _, stderr = run(t, "inbox", "list", "--server", "127.0.0.1:1")
		if code != 1 || !strings.Contains(stderr, "Unavailable") || !strings.Contains(stderr, "--server") {
			t.Errorf("unreachable server: exit %d, %q", code, stderr)
		}
		// watch reports what is wrong at the start instead of waiting.
		e.fails(t, "intruder", 1, []string{"Unauthenticated"}, "watch")
		e.fails(t, "billing", 1, []string{"PermissionDenied"}, "watch", "--team", "product")
		code, _, stderr = run(t, "inbox", "watch", "--server", "127.0.0.1:1")
		if code != 1 || !strings.Contains(stderr, "Unavailable") {
			t.Errorf("watch on an unreachable server: exit %d, %q", code, stderr)
		}
		if st := statusOf(e.list(t, "billing"), a); st != feedloopv1.Status_STATUS_ROUTED {
			t.Errorf("after refused calls %s is %s", a, st)
		}
	})

	t.Run("billing works A through ack, plan, comment and resolve", func(t *testing.T) {
		if out := e.ok(t, "billing", "ack", a); !strings.Contains(out, a+": billing is now acknowledged") {
			t.Errorf("ack printed %q", out)
		}
		e.fails(t, "billing", 1, []string{"FailedPrecondition", "acknowledged"}, "ack", a)
		e.fails(t, "billing", 2, []string{"--due", "YYYY-MM-DD"}, "plan", a, "--due", "next week", "--customer-message", "soon")
		yesterday := time.Now().UTC().AddDate(0, 0, -2).Format(time.DateOnly)
		e.fails(t, "billing", 2, []string{"InvalidArgument", "due_at", "past"}, "plan", a[:8], "--due", yesterday, "--customer-message", "soon")
		e.fails(t, "billing", 2, []string{"InvalidArgument", "customer_message: required"}, "plan", a, "--due", "2099-01-01")

		due := time.Now().UTC().AddDate(0, 0, 30).Format(time.DateOnly)
		var plan feedloopv1.PlanResponse
		out := e.ok(t, "billing", "plan", a[:8], "--due", due, "--customer-message", "We will refund the second charge.", "--json")
		if err := protojson.Unmarshal([]byte(out), &plan); err != nil {
			t.Fatal(err)
		}
		got := plan.GetAssignment().GetPlannedDueAt().AsTime()
		if plan.GetAssignment().GetStatus() != feedloopv1.Status_STATUS_PLANNED || got.Format(time.DateOnly) != due || got.Hour() != 0 || got.Location() != time.UTC {
			t.Errorf("plan = %v, want planned for %s 00:00 UTC", &plan, due)
		}

		out = e.ok(t, "billing", "comment", a, "--internal-note", "Refund ticket FIN-42 opened.")
		if !regexp.MustCompile(a + `: internal note added \(event \S+\)`).MatchString(out) {
			t.Errorf("comment printed %q", out)
		}
		if out := e.ok(t, "billing", "resolve", a, "--customer-message", "Refunded; sorry for the trouble."); !strings.Contains(out, "billing is now resolved") {
			t.Errorf("resolve printed %q", out)
		}

		item := e.get(t, "billing", a).GetItem()
		var changes []string
		for _, en := range item.GetTimeline() {
			if en.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED {
				changes = append(changes, en.GetTo().String()+" by "+en.GetActor())
			}
		}
		want := []string{"STATUS_ACKNOWLEDGED by billing-lead", "STATUS_PLANNED by billing-lead", "STATUS_RESOLVED by billing-lead"}
		if strings.Join(changes, ",") != strings.Join(want, ",") {
			t.Errorf("status changes %v, want %v", changes, want)
		}

		human := e.ok(t, "billing", "show", a)
		for _, want := range []string{
			"Feedback", a, "Ada <ada@example.com>", "I was charged twice for my subscription.",
			"Teams", "billing", "resolved", "Timeline", "received", "routed to billing",
			"billing: routed → acknowledged by billing-lead",
			"billing: acknowledged → planned, due " + due + " by billing-lead",
			`to the customer: "We will refund the second charge."`,
			"billing: comment by billing-lead [internal]", `"Refund ticket FIN-42 opened."`,
			"billing: planned → resolved by billing-lead",
		} {
			if !strings.Contains(human, want) {
				t.Errorf("show lacks %q:\n%s", want, human)
			}
		}
	})

	t.Run("B: billing reroutes its share, product declines its own", func(t *testing.T) {
		e.fails(t, "billing", 1, []string{"FailedPrecondition", "product"}, "reroute", b, "--to", "product", "--reason", "app bug")
		if out := e.ok(t, "billing", "reroute", b, "--to", "accounts", "--internal-note", "a subscription question"); !strings.Contains(out, "billing is now rerouted (to accounts)") {
			t.Errorf("reroute printed %q", out)
		}
		testkit.Eventually(t, "accounts gets B", func() bool { return statusOf(e.list(t, "accounts"), b) == feedloopv1.Status_STATUS_ROUTED })
		if out := e.ok(t, "product", "decline", b, "--customer-message", "The crash is fixed in 4.2."); !strings.Contains(out, "product is now declined") {
			t.Errorf("decline printed %q", out)
		}
		// The customer's history breaks the silo: product sees A, which
		// only billing worked on, as Ada's other feedback.
		resp := e.get(t, "product", b)
		var hist []string
		for _, h := range resp.GetCustomerHistory() {
			hist = append(hist, h.GetFeedbackId())
		}
		if len(hist) != 1 || hist[0] != a {
			t.Errorf("customer history of %s = %v, want [%s]", b, hist, a)
		}
		if human := e.ok(t, "product", "show", b); !strings.Contains(human, "The customer's other feedback") || !strings.Contains(human, a) {
			t.Errorf("show lacks the customer's history:\n%s", human)
		}
	})

	t.Run("list filters by status and pages", func(t *testing.T) {
		if l := e.list(t, "billing"); len(l.GetItems()) != 0 {
			t.Errorf("billing still has open items: %v", l.GetItems())
		}
		if out := e.ok(t, "billing", "list"); strings.TrimSpace(out) != "no items" {
			t.Errorf("empty list printed %q", out)
		}
		one := e.list(t, "billing", "--status", "closed", "--page-size", "1")
		if len(one.GetItems()) != 1 || one.GetTotal() != 2 || one.GetNextPageToken() == "" {
			t.Fatalf("page of one = %v", one)
		}
		human := e.ok(t, "billing", "list", "--status", "resolved,rerouted", "--page-size", "1")
		if !strings.Contains(human, "1 of 2 items; next page: --page-token "+one.GetNextPageToken()) {
			t.Errorf("paged list lacks the next page:\n%s", human)
		}
		all := e.list(t, "billing", "--status", "all", "--page-size", "1", "--all")
		if len(all.GetItems()) != 2 || all.GetNextPageToken() != "" || statusOf(all, a) != feedloopv1.Status_STATUS_RESOLVED || statusOf(all, b) != feedloopv1.Status_STATUS_REROUTED {
			t.Errorf("--all = %v", all)
		}
		if l := e.list(t, "billing", "--status", "resolved"); len(l.GetItems()) != 1 || l.GetItems()[0].GetFeedbackId() != a {
			t.Errorf("--status resolved = %v", l.GetItems())
		}
	})

	t.Run("stats count what the team did", func(t *testing.T) {
		st := e.stats(t, "billing")
		if st.GetTeam() != "billing" || st.GetRouted() != 2 || st.GetAcknowledged() != 1 || st.GetResolved() != 1 || st.GetReroutedOut() != 1 || st.GetOpen() != 0 {
			t.Errorf("billing stats = %v", st)
		}
		human := e.ok(t, "billing", "stats")
		for _, want := range []string{"billing", "2 routed, 0 open, 1 acknowledged, 1 resolved", "1 rerouted out"} {
			if !strings.Contains(human, want) {
				t.Errorf("stats lacks %q:\n%s", want, human)
			}
		}
		e.fails(t, "billing", 1, []string{"PermissionDenied"}, "stats", "--team", "product")
	})

	t.Run("watch prints what arrived while no one watched, one line per item", func(t *testing.T) {
		c := e.submit(t, "C-1", "Please send my invoice as a PDF, I was charged twice.")
		testkit.Eventually(t, "C routed", func() bool { return statusOf(e.list(t, "billing"), c) == feedloopv1.Status_STATUS_ROUTED })
		var out, errb testkit.SyncBuffer
		t.Setenv(envToken, e.tokens["billing"])
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() { done <- Main(ctx, []string{"inbox", "watch", "--server", e.server}, &out, &errb) }()
		line := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d  ` + c + `  billing  normal  ack by \d{4}-\d\d-\d\d \d\d:\d\d  billing  Please send my invoice as a PDF, I was charged twice\.$`)
		testkit.Eventually(t, "C watched", func() bool { return line.MatchString(out.String()) })
		stop()
		if code := <-done; code != 0 || !strings.Contains(errb.String(), "Ctrl-C to stop") {
			t.Fatalf("watch: exit %d, %s", code, errb.String())
		}
		if strings.Count(out.String(), "\n") != 1 {
			t.Errorf("watch printed items seen before:\n%s", out.String())
		}
	})

	// Redis lost: the router rebuilds the read model from the stream by
	// itself (answering Unavailable, never "not found", meanwhile), and
	// `feedloop rebuild` forces the same; every answer is as before.
	t.Run("rebuild restores the read model from the stream", func(t *testing.T) {
		e.idle(t)
		snapshot := func() map[string]proto.Message {
			return map[string]proto.Message{
				"show a billing": e.get(t, "billing", a),
				"show b product": e.get(t, "product", b),
				"list billing":   e.list(t, "billing", "--status", "all"),
				"list accounts":  e.list(t, "accounts"),
				"stats billing":  e.stats(t, "billing"),
				"stats product":  e.stats(t, "product"),
				"stats accounts": e.stats(t, "accounts"),
			}
		}
		same := func(what string, before, after map[string]proto.Message) {
			t.Helper()
			for k, want := range before {
				if !proto.Equal(want, after[k]) {
					t.Errorf("%s after %s differs:\nbefore %v\nafter  %v", k, what, want, after[k])
				}
			}
		}
		before := snapshot()
		if err := e.s.Redis.FlushAll(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, "the router rebuilt the read model", func() bool {
			code, _, stderr := e.inbox(t, "billing", "show", a)
			if code != 0 && !strings.Contains(stderr, "Unavailable") {
				t.Fatalf("show while rebuilding: exit %d: %s", code, stderr)
			}
			return code == 0
		})
		same("the router's rebuild", before, snapshot())

		t.Setenv("NATS_URL", e.s.NATS.ClientURL())
		t.Setenv("REDIS_URL", e.s.RedisURL)
		code, _, stderr := run(t, "rebuild")
		if code == 0 || !strings.Contains(stderr, "Authorization Violation") {
			t.Fatalf("rebuild without credentials: exit %d: %s", code, stderr)
		}
		routerUser, _ := e.s.NATSUsers.Get(natsauth.Router)
		t.Setenv("NATS_NKEY_SEED_FILE", routerUser.SeedFile)
		code, stdout, stderr := run(t, "rebuild")
		m := regexp.MustCompile(`^rebuilt the read model from (\d+) events\n$`).FindStringSubmatch(stdout)
		if code != 0 || m == nil {
			t.Fatalf("rebuild: exit %d, %q, %s", code, stdout, stderr)
		}
		stored := len(testkit.Messages(t, e.s.Bus, bus.StreamFeedback, bus.AllFeedback))
		if m[1] != strconv.Itoa(stored) {
			t.Errorf("rebuild replayed %s events, the stream holds %d", m[1], stored)
		}
		same("feedloop rebuild", before, snapshot())
	})
}

// The token command prints a token and the tokens-file line with its hash.
func TestInboxToken(t *testing.T) {
	code, stdout, stderr := run(t, "inbox", "token", "--team", "billing", "--name", "alice")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m := regexp.MustCompile(`(?m)^export FEEDLOOP_TOKEN=(\S+)$`).FindStringSubmatch(stdout)
	l := regexp.MustCompile(`(?m)^  - \{team: billing, name: "alice", sha256: ([0-9a-f]{64})\}$`).FindStringSubmatch(stdout)
	if m == nil || l == nil {
		t.Fatalf("output lacks the token or the line:\n%s", stdout)
	}
	sum := sha256.Sum256([]byte(m[1]))
	if hex.EncodeToString(sum[:]) != l[1] {
		t.Fatalf("the line's hash is not the token's SHA-256:\n%s", stdout)
	}
	_, again, _ := run(t, "inbox", "token", "--team", "billing")
	if strings.Contains(again, m[1]) || !strings.Contains(again, "- {team: billing, sha256: ") || strings.Contains(again, "expires") {
		t.Fatalf("second token:\n%s", again)
	}
	_, expiring, _ := run(t, "inbox", "token", "--team", "billing", "--expires", "90d")
	l = regexp.MustCompile(`(?m)^  - \{team: billing, sha256: [0-9a-f]{64}, expires: "(\S+)"\}$`).FindStringSubmatch(expiring)
	if l == nil {
		t.Fatalf("--expires: the line lacks the expiry:\n%s", expiring)
	}
	if at, err := time.Parse(time.RFC3339, l[1]); err != nil || at.Sub(time.Now()) < 89*24*time.Hour || at.Sub(time.Now()) > 91*24*time.Hour {
		t.Fatalf("--expires 90d: expires %s, %v", l[1], err)
	}
	for _, args := range [][]string{{"--team", "Billing!"}, {}, {"--team", "billing", "--name", "a\nb"}, {"--team", "billing", "--expires", "soon"}, {"--team", "billing", "--expires", "2020-01-01T00:00:00Z"}} {
		if code, _, stderr := run(t, append([]string{"inbox", "token"}, args...)...); code != 2 || !strings.Contains(stderr, "--") {
			t.Errorf("%q: exit %d, %q", args, code, stderr)
		}
	}
}

func TestParseDueIsTheUTCDay(t *testing.T) {
	ts, err := parseDue("2026-11-30")
	if err != nil || !ts.AsTime().Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("parseDue = %v, %v", ts, err)
	}
	// +Nd is N days from today (UTC), so examples never rot with the calendar.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if ts, err := parseDue("+14d"); err != nil || !ts.AsTime().Equal(today.AddDate(0, 0, 14)) {
		t.Fatalf("parseDue(+14d) = %v, %v; want %s", ts, err, today.AddDate(0, 0, 14))
	}
	for _, bad := range []string{"30.11.2026", "2026-11-31", "2026-11-30T10:00:00Z", "+14", "+d", "+-1d", "+99999d"} {
		if _, err := parseDue(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The example tokens file is what the router reads, and each hash is of the
// fake token its comment shows; a revoked one is refused as revoked.
func TestExampleTeamTokens(t *testing.T) {
	path := filepath.Join(examples, "team-tokens.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pairs := regexp.MustCompile(`(?m)^  # (example-\S+NOT-A-REAL-TOKEN).*\n  - \{team: ([a-z-]+),.* sha256: ([0-9a-f]{64})(, expires: "[^"]+")?(, revoked: true)?\}$`).FindAllStringSubmatch(string(data), -1)
	if len(pairs) != strings.Count(string(data), "\n  - {") || len(pairs) == 0 {
		t.Fatalf("%d commented entries of %d", len(pairs), strings.Count(string(data), "\n  - {"))
	}
	e := &inboxEnv{tokens: map[string]string{}}
	for _, p := range pairs {
		if teamtoken.Hash(p[1]) != p[3] {
			t.Errorf("the hash of team %s is not that of %q", p[2], p[1])
		}
		e.tokens[p[1]] = p[1]
	}
	cfg := stack.DevConfig(examples, t.TempDir())
	cfg.RedisURL = testkit.Redis(t)
	cfg.Router.TeamTokensFile = path
	cfg.Notifier.ConsoleOutput = &testkit.SyncBuffer{}
	s, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s.Run)
	e.server = s.Router.GRPCAddr()
	for _, p := range pairs {
		if p[5] != "" {
			e.fails(t, p[1], 1, []string{"Unauthenticated", "team token revoked; ask for a new one"}, "stats")
			continue
		}
		var st feedloopv1.StatsResponse
		if err := protojson.Unmarshal([]byte(e.ok(t, p[1], "stats", "--json")), &st); err != nil || st.GetTeam() != p[2] {
			t.Errorf("token %s acts for %q (%v), want %s", p[1], st.GetTeam(), err, p[2])
		}
	}
}
