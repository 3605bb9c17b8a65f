package stack_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/pkg/testkit/smtptest"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/webhooksig"
)

// canaries are the secrets a leak test hands the stack, by what they are.
// Each is distinctive, so finding it anywhere is a leak, never chance. To
// cover a new kind of secret, add it here and give it to the stack in
// leakSession (intake API keys, NATS credentials…).
type canaries map[string]string

// forms are the ways a secret may travel besides its clear text: AUTH
// PLAIN sends user and password base64-encoded.
func (c canaries) forms() map[string]string {
	out := map[string]string{}
	for what, v := range c {
		out[what] = v
	}
	out["smtp password (AUTH PLAIN)"] = base64.StdEncoding.EncodeToString([]byte("\x00" + leakSMTPUser + "\x00" + c["smtp password"]))
	return out
}

const (
	leakSMTPUser = "notifier-smtp-user"
	// leakCustomerEmail is personal data: never in a log line or a span.
	leakCustomerEmail = "leak.canary.customer@example.org"
)

func leakCanaries() canaries {
	return canaries{
		"team token (valid)":                  "tok-LEAKCANARY-valid-7f3a91c2",
		"team token (valid, revoked mid-run)": "tok-LEAKCANARY-revoked-2b8e44d1",
		"team token (expired)":                "tok-LEAKCANARY-expired-99c0d5e7",
		"team token (wrong)":                  "tok-LEAKCANARY-wrong-0a1b2c3d",
		"team token (pasted as its own hash)": "tok-LEAKCANARY-pasted-5e6f7a8b",
		"webhook secret":                      "whsec-LEAKCANARY-current-4f2d8c1a9e",
		"webhook secret (previous)":           "whsec-LEAKCANARY-previous-6b3e0f7d2c",
		"smtp password":                       "smtppw-LEAKCANARY-8d1c4e7b",
		"redis password":                      "redispw-LEAKCANARY-3a9f6c2e",
		"webhook url query token":             "urlq-LEAKCANARY-5c7e9a1b",
		"webhook url user info":               "urlui-LEAKCANARY-1d3f5b7c",
		"intake api key (valid)":              "ik-LEAKCANARY-valid-6e2a90f1",
		"intake api key (wrong)":              "ik-LEAKCANARY-wrong-3c7d1b5a",
		"intake api key (expired)":            "ik-LEAKCANARY-expired-8f4e2c6d",
		"intake api key (revoked)":            "ik-LEAKCANARY-revoked-1a9b7e3f",
	}
}

// leakRecord is everything a run emitted that someone other than the
// stack could read: logs (ops), spans (ops, Tempo), and what callers got
// back (gRPC errors, HTTP bodies).
type leakRecord struct {
	logs *testkit.SyncBuffer

	mu      sync.Mutex
	replies []string // "what: text"
}

func (r *leakRecord) reply(what, text string) {
	r.mu.Lock()
	r.replies = append(r.replies, what+": "+text)
	r.mu.Unlock()
}

// grpcErr records a call's error: its message and details, as the caller sees them.
func (r *leakRecord) grpcErr(what string, err error) {
	if err == nil {
		return
	}
	st := status.Convert(err)
	text := st.Code().String() + " " + st.Message()
	for _, d := range st.Details() {
		text += fmt.Sprintf(" %v", d)
	}
	r.reply(what, text)
}

// httpDo makes a request and records the response body.
func (r *leakRecord) httpDo(t *testing.T, what string, req *http.Request) (int, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	r.reply(what, string(body))
	return res.StatusCode, string(body)
}

// leaks scans the record and the spans for the secrets and, in logs and
// spans, the customer's email address (replies may echo what the caller
// sent).
func (r *leakRecord) leaks(secrets canaries, spans []span) []string {
	var found []string
	look := func(where, text string) {
		for what, v := range secrets.forms() {
			if strings.Contains(text, v) {
				found = append(found, fmt.Sprintf("%s in %s: %.300s", what, where, text))
			}
		}
	}
	for i, line := range strings.Split(r.logs.String(), "\n") {
		look(fmt.Sprintf("log line %d", i+1), line)
		if strings.Contains(line, leakCustomerEmail) {
			found = append(found, fmt.Sprintf("the customer's email in log line %d: %.300s", i+1, line))
		}
	}
	r.mu.Lock()
	for _, rep := range r.replies {
		look("a reply to a caller", rep)
	}
	r.mu.Unlock()
	for _, s := range spans {
		look("span "+s.Service+"/"+s.Name, s.Raw)
		if strings.Contains(s.Raw, leakCustomerEmail) {
			found = append(found, fmt.Sprintf("the customer's email in span %s/%s: %.300s", s.Service, s.Name, s.Raw))
		}
	}
	return found
}

// A whole session, failures included, with known secrets: nothing the
// stack logs, exports as spans or answers contains one, and no log line
// or span carries the customer's email address.
func TestSecretsNeverLeak(t *testing.T) {
	secrets := leakCanaries()
	rec := leakSession(t, secrets)
	spans := received(t)
	if found := rec.leaks(secrets, spans); len(found) > 0 {
		t.Fatalf("%d leaks:\n%s", len(found), strings.Join(found, "\n"))
	}
	// The spans were there to scan: the guessed status page's server span,
	// its token replaced.
	var statusSpan bool
	for _, s := range spans {
		statusSpan = statusSpan || (s.Kind == tracepb.Span_SPAN_KIND_SERVER && s.Attrs["url.path"] == "/status/{token}")
	}
	if !statusSpan {
		t.Error("no status page span with url.path /status/{token}")
	}
}

// The scan finds a secret however it was logged, replied or exported, and
// an email address in a span: the test above cannot pass by looking in
// the wrong place.
func TestSecretsScanFindsLeaks(t *testing.T) {
	secrets := leakCanaries()
	rec := &leakRecord{logs: &testkit.SyncBuffer{}}
	slog.New(slog.NewJSONHandler(rec.logs, nil)).Info("deliberately careless", "password", secrets["smtp password"])
	rec.grpcErr("careless reply", status.Error(codes.Unauthenticated, "unknown token "+secrets["team token (wrong)"]))
	spans := []span{
		{Service: "s", Name: "careless", Raw: `{"attributes":[{"key":"k","value":{"stringValue":"Bearer ` + secrets["team token (valid)"] + `"}}]}`},
		{Service: "s", Name: "personal", Raw: `{"events":[{"attributes":[{"key":"to","value":{"stringValue":"` + leakCustomerEmail + `"}}]}]}`},
		{Service: "s", Name: "auth plain", Raw: secrets.forms()["smtp password (AUTH PLAIN)"]},
	}
	found := strings.Join(rec.leaks(secrets, spans), "\n")
	for _, want := range []string{
		"smtp password in log line 1",
		"team token (wrong) in a reply to a caller",
		"team token (valid) in span s/careless",
		"the customer's email in span s/personal",
		"smtp password (AUTH PLAIN) in span s/auth plain",
	} {
		if !strings.Contains(found, want) {
			t.Errorf("the scan missed %q; found:\n%s", want, found)
		}
	}
}

// leakSession runs the stack with secrets through a realistic session and
// its failing paths, and returns what it emitted.
func leakSession(t *testing.T, secrets canaries) *leakRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	rec := &leakRecord{logs: &testkit.SyncBuffer{}}
	// Everything at debug, JSON as in production; the default logger too,
	// for any library that logs through it.
	log := slog.New(slog.NewJSONHandler(rec.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	slog.SetDefault(log)
	t.Cleanup(func() { slog.SetDefault(prev) })

	// The customer's receiver: fails the first attempt of each delivery
	// with a 500, then verifies like a receiver that has not yet switched
	// to the new secret (the rotation's previous one).
	var customerOK, customerRefused atomic.Int32
	seen := sync.Map{}
	customer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, again := seen.LoadOrStore(r.Header.Get("Idempotency-Key"), true); !again {
			http.Error(w, "receiver down for maintenance", http.StatusInternalServerError)
			return
		}
		if err := webhooksig.Verify([]byte(secrets["webhook secret (previous)"]), r.Header.Get(webhooksig.Header), body); err != nil {
			customerRefused.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		customerOK.Add(1)
	}))
	t.Cleanup(customer.Close)
	var teamAlerts atomic.Int32
	teamHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhooksig.Verify([]byte(secrets["webhook secret"]), r.Header.Get(webhooksig.Header), body) == nil {
			teamAlerts.Add(1)
		}
	}))
	t.Cleanup(teamHook.Close)

	// SMTP refuses the notifier's credentials: every email fails auth.
	var smtpTried atomic.Bool
	smtp := smtptest.Start(t, smtptest.Options{Auth: true, CheckAuth: func(user, pass string) bool {
		smtpTried.Store(user == leakSMTPUser && pass == secrets["smtp password"])
		return false
	}})

	dir := t.TempDir()
	teamsFile := filepath.Join(dir, "teams.yaml")
	teamURL := strings.Replace(teamHook.URL, "http://", "http://alerts:"+secrets["webhook url user info"]+"@", 1) + "/hooks?token=" + secrets["webhook url query token"]
	if err := os.WriteFile(teamsFile, []byte("teams:\n  default:\n    - type: webhook\n      url: "+teamURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokensFile := filepath.Join(dir, "team-tokens.yaml")
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tokens := func(revokeBob bool) string {
		return fmt.Sprintf("tokens:\n"+
			"  - {team: billing, name: alice, sha256: %s}\n"+
			"  - {team: billing, name: bob, sha256: %s, revoked: %t}\n"+
			"  - {team: billing, name: eve, sha256: %s, expires: %q}\n",
			apikey.Hash(secrets["team token (valid)"]), apikey.Hash(secrets["team token (valid, revoked mid-run)"]), revokeBob,
			apikey.Hash(secrets["team token (expired)"]), past)
	}
	writeTokens := func(content string) {
		if err := os.WriteFile(tokensFile+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tokensFile+".tmp", tokensFile); err != nil {
			t.Fatal(err)
		}
	}
	writeTokens(tokens(false))

	keysFile := filepath.Join(dir, "intake-keys.yaml")
	if err := os.WriteFile(keysFile, []byte(fmt.Sprintf("keys:\n"+
		"  - {source: helpdesk, name: zendesk, sha256: %s}\n"+
		"  - {source: helpdesk, name: zendesk-old, sha256: %s, expires: %q}\n"+
		"  - {source: helpdesk, name: zendesk-2025, sha256: %s, revoked: true}\n",
		apikey.Hash(secrets["intake api key (valid)"]), apikey.Hash(secrets["intake api key (expired)"]), past,
		apikey.Hash(secrets["intake api key (revoked)"]))), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := stack.DevConfig("../../../../deploy/examples", filepath.Join(dir, "js"))
	cfg.Log = log
	// The services' NATS seeds are secrets too: generate them first (the
	// stack keeps existing seeds) so the scan knows them.
	spec := cfg.NATSAuth
	spec.ManageStreams = true
	users, err := natsauth.Generate(cfg.NATSAuthDir, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		seed, err := os.ReadFile(u.SeedFile)
		if err != nil {
			t.Fatal(err)
		}
		secrets["nats seed ("+u.Name+")"] = strings.TrimSpace(string(seed))
	}
	cfg.Intake.APIKeysFile = keysFile
	cfg.RedisURL = testkit.RedisWithPassword(t, secrets["redis password"])
	cfg.Router.TeamTokensFile = tokensFile
	cfg.Router.ReloadInterval = 100 * time.Millisecond
	cfg.Notifier.CustomerWebhookURL = customer.URL + "/customers?api_key=" + secrets["webhook url query token"]
	cfg.Notifier.WebhookSecret = secrets["webhook secret"]
	cfg.Notifier.WebhookSecretPrevious = secrets["webhook secret (previous)"]
	cfg.Notifier.WebhookAttempts = 3
	cfg.Notifier.TeamsFile = teamsFile
	cfg.Notifier.SMTPAddr = smtp.Addr
	cfg.Notifier.SMTPFrom = "Acme Support <support@acme.example>"
	cfg.Notifier.SMTPUsername = leakSMTPUser
	cfg.Notifier.SMTPPassword = secrets["smtp password"]
	cfg.Notifier.ConsoleOutput = io.Discard
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tracked(t, s)
	stop := testkit.Run(t, s.Run)

	// Submissions: gRPC, HTTP, and an invalid one.
	ic, err := grpc.NewClient(s.Intake.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	intake := feedloopv1.NewIntakeServiceClient(ic)
	withKey := func(what string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secrets[what])
	}
	item := func(source, id string) *feedloopv1.SubmitRequest {
		return &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{Source: source, ExternalId: id, Text: "The app crashes."}}
	}
	for what, call := range map[string]func() error{
		"intake without a key": func() error { _, err := intake.Submit(ctx, item("helpdesk", "leak-k1")); return err },
		"intake with a wrong key": func() error {
			_, err := intake.Submit(withKey("intake api key (wrong)"), item("helpdesk", "leak-k2"))
			return err
		},
		"intake with an expired key": func() error {
			_, err := intake.Submit(withKey("intake api key (expired)"), item("helpdesk", "leak-k3"))
			return err
		},
		"intake with a revoked key": func() error {
			_, err := intake.Submit(withKey("intake api key (revoked)"), item("helpdesk", "leak-k4"))
			return err
		},
		"intake key of another source": func() error {
			_, err := intake.Submit(withKey("intake api key (valid)"), item("crm", "leak-k5"))
			return err
		},
	} {
		err := call()
		if err == nil {
			t.Fatalf("%s: accepted", what)
		}
		rec.grpcErr(what, err)
	}
	sub, err := intake.Submit(withKey("intake api key (valid)"), &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
		Source: "helpdesk", ExternalId: "leak-1", Channel: feedloopv1.Channel_CHANNEL_EMAIL,
		Customer: &feedloopv1.Customer{Id: "cust-leak", Name: "Canary", Email: leakCustomerEmail, Locale: "en", Consent: &feedloopv1.Consent{Contact: true, Survey: true}},
		Text:     "You charged me twice for my subscription, I want a refund.",
	}})
	if err != nil {
		t.Fatal(err)
	}
	fid := sub.GetFeedbackId()
	_, err = intake.Submit(withKey("intake api key (valid)"), &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{Source: "helpdesk", Customer: &feedloopv1.Customer{Email: "not an address"}}})
	rec.grpcErr("invalid submission", err)
	base := "http://" + s.Intake.HTTPAddr() + "/v1/feedback"
	for what, body := range map[string]string{
		"http submission":         `{"source":"helpdesk","externalId":"leak-2","customer":{"email":"` + leakCustomerEmail + `","consent":{"contact":true}},"text":"The invoice is wrong."}`,
		"invalid http submission": `{"source":"helpdesk","customer":{"email":"` + leakCustomerEmail + `x"},"text":""}`,
		"malformed http body":     `{"source":`,
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secrets["intake api key (valid)"])
		rec.httpDo(t, what, req)
	}
	for what, key := range map[string]string{"http with a wrong key": "intake api key (wrong)", "http with an expired key": "intake api key (expired)"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base, strings.NewReader(`{"source":"helpdesk","externalId":"leak-3","text":"x"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secrets[key])
		if code, _ := rec.httpDo(t, what, req); code != http.StatusUnauthorized {
			t.Fatalf("%s: %d, want 401", what, code)
		}
	}

	// The team API with every kind of token.
	rc, err := grpc.NewClient(s.Router.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	team := feedloopv1.NewTeamServiceClient(rc)
	as := func(auth string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", auth)
	}
	valid := as("Bearer " + secrets["team token (valid)"])
	testkit.Eventually(t, "the item in billing's inbox", func() bool {
		_, err := team.Get(valid, &feedloopv1.GetRequest{FeedbackId: fid})
		return err == nil
	})
	for what, auth := range map[string]string{
		"wrong token":               "Bearer " + secrets["team token (wrong)"],
		"expired token":             "Bearer " + secrets["team token (expired)"],
		"token without the scheme":  secrets["team token (wrong)"],
		"token as basic auth":       "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+secrets["team token (wrong)"])),
		"token of another team":     "Bearer " + secrets["team token (valid)"],
		"unknown item, valid token": "Bearer " + secrets["team token (valid)"],
	} {
		var err error
		switch what {
		case "token of another team":
			_, err = team.List(as(auth), &feedloopv1.ListRequest{Team: "logistics"})
		case "unknown item, valid token":
			_, err = team.Get(as(auth), &feedloopv1.GetRequest{FeedbackId: "no-such-item"})
		default:
			_, err = team.Acknowledge(as(auth), &feedloopv1.AcknowledgeRequest{FeedbackId: fid})
		}
		if err == nil {
			t.Fatalf("%s: accepted", what)
		}
		rec.grpcErr(what, err)
	}
	got, err := team.Get(valid, &feedloopv1.GetRequest{FeedbackId: fid})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := protojson.Marshal(got); err == nil {
		rec.reply("get", string(b))
	}
	if _, err := team.Acknowledge(valid, &feedloopv1.AcknowledgeRequest{FeedbackId: fid}); err != nil {
		t.Fatal(err)
	}

	// bob watches; a broken tokens file (a token pasted where its hash
	// belongs) is refused and logged; then bob's token is revoked and his
	// watch ends.
	ws, err := team.Watch(as("Bearer "+secrets["team token (valid, revoked mid-run)"]), &feedloopv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "bob's watch consumer", func() bool {
		_, err := s.Bus.JetStream().Consumer(ctx, bus.StreamFeedback, "watch-billing")
		return err == nil
	})
	writeTokens(tokens(false) + "  - {team: billing, name: mallory, sha256: " + secrets["team token (pasted as its own hash)"] + "}\n")
	testkit.Eventually(t, "the broken tokens file to be refused", func() bool { return strings.Contains(rec.logs.String(), "team tokens file invalid") })
	writeTokens(tokens(true))
	for {
		if _, err := ws.Recv(); err != nil {
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("bob's watch ended with %v", err)
			}
			rec.grpcErr("watch of a revoked token", err)
			break
		}
	}
	_, err = team.List(as("Bearer "+secrets["team token (valid, revoked mid-run)"]), &feedloopv1.ListRequest{})
	rec.grpcErr("revoked token", err)

	// The customer's status page, and a guessed one.
	for _, m := range testkit.Messages(t, s.Bus, bus.StreamFeedback, bus.SubjectReceived) {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data, ev); err == nil && ev.GetFeedbackId() == fid && ev.GetReceived().GetStatusToken() != "" {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.StatusURL+"/"+ev.GetReceived().GetStatusToken(), nil)
			rec.httpDo(t, "status page", req)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.StatusURL+"/"+secrets["team token (wrong)"], nil)
	rec.httpDo(t, "guessed status page", req)

	// Let the failing paths happen: the customer webhook's 500 then
	// success, the SMTP auth failure, the team alert.
	testkit.Eventually(t, "the customer webhook to succeed after a 500", func() bool { return customerOK.Load() >= 1 })
	testkit.Eventually(t, "the SMTP server to refuse the password", smtpTried.Load)
	testkit.Eventually(t, "the team alert", func() bool { return teamAlerts.Load() >= 1 })
	testkit.Eventually(t, "the SMTP failure to be logged", func() bool { return strings.Contains(rec.logs.String(), "535") })
	if n := customerRefused.Load(); n != 0 {
		t.Errorf("a receiver holding only the previous secret refused %d deliveries during the rotation", n)
	}
	stop()
	return rec
}
