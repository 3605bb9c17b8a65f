package manifests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
)

// The services run here on a NATS without authorization, each on its own
// named connection, while the server's JetStream API audit advisories
// record every API call and who made it. Then every call a service made,
// and every consumer left on the streams, is checked against the
// permissions pkg/natsauth gives that service's user: a consumer a service
// creates that its user may not create, read or acknowledge fails here,
// not in a cluster with authorization on. The durables are also checked
// against this package's table of the services' consumers (services.go),
// which the autoscaling checks use.
func TestServicesStayWithinTheirNATSPermissions(t *testing.T) {
	url := testkit.NATS(t)
	redisURL := testkit.Redis(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	admin := testkit.BusAt(t, url)
	audits := &auditLog{}
	sub, err := admin.Conn().Subscribe("$JS.EVENT.ADVISORY.API", audits.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := admin.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	// A stream with something in it, so that the rebuilds at start create
	// their replay consumers rather than returning early.
	if _, err := admin.Publish(ctx, bus.SubjectReceived, &feedloopv1.Event{
		Id: "perm-1", FeedbackId: "fb-perm-1",
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: &feedloopv1.Feedback{
			Id: "fb-perm-1", Source: "helpdesk", ExternalId: "perm-1", Text: "I was charged twice.",
		}}},
	}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	const team, token = "billing", "perm-test-billing-token"
	sum := sha256.Sum256([]byte(token))
	tokens := filepath.Join(dir, "team-tokens.yaml")
	if err := os.WriteFile(tokens, fmt.Appendf(nil, "tokens:\n  - {team: %s, sha256: %s}\n", team, hex.EncodeToString(sum[:])), 0o600); err != nil {
		t.Fatal(err)
	}
	common := map[string]string{"NATS_URL": url, "REDIS_URL": redisURL, "NATS_STREAM_REPLICAS": "1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	infra := func(user string) *lifecycle.Infra {
		nc, err := bus.Connect(url, connName(user))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		b, err := bus.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		rdb, err := redisx.Connect(ctx, redisURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rdb.Close() })
		return &lifecycle.Infra{Bus: b, Redis: rdb, Log: slog.New(slog.DiscardHandler).With("service", user)}
	}

	in, err := intake.New(parseEnv[intake.Config](t, with("INTAKE_GRPC_ADDR", "127.0.0.1:0", "INTAKE_HTTP_ADDR", "127.0.0.1:0")), infra(natsauth.Intake))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := classifier.New(parseEnv[classifier.Config](t, with("CLASSIFIER_RULES_FILE", filepath.Join(root, "deploy/examples/rules.yaml"))), infra(natsauth.Classifier))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := router.New(parseEnv[router.Config](t, with(
		"ROUTER_ROUTES_FILE", filepath.Join(root, "deploy/examples/routes.yaml"), "ROUTER_TEAM_TOKENS_FILE", tokens,
		"ROUTER_GRPC_ADDR", "127.0.0.1:0", "ROUTER_HTTP_ADDR", "127.0.0.1:0")), infra(natsauth.Router))
	if err != nil {
		t.Fatal(err)
	}
	nt, err := notifier.New(parseEnv[notifier.Config](t, with(
		"NOTIFIER_TEMPLATES_DIR", filepath.Join(root, "deploy/examples/templates"), "NOTIFIER_STATUS_URL", "http://127.0.0.1:1/status")), infra(natsauth.Notifier))
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []func(context.Context) error{in.Run, cl.Run, rt.Run, nt.Run} {
		testkit.Run(t, run)
	}

	// A team watching its inbox: the router keeps the team's watch durable.
	cc, err := grpc.NewClient(rt.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	wctx, stopWatch := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token))
	defer stopWatch()
	// Both kinds: the team's durable, and a live stream's ordered consumer.
	for _, live := range []bool{false, true} {
		if _, err := feedloopv1.NewTeamServiceClient(cc).Watch(wctx, &feedloopv1.WatchRequest{Team: team, Live: live}); err != nil {
			t.Fatal(err)
		}
	}

	// Wait for every durable of the table, the watch durable, and both
	// rebuilds' replay consumers come and gone.
	want := map[string][]string{}
	for _, svc := range services {
		for stream, names := range svc.consumers {
			want[stream] = append(want[stream], names...)
		}
	}
	want[bus.StreamFeedback] = append(want[bus.StreamFeedback], bus.WatchConsumer(team))
	// Not met in time is reported, then the checks below say what differs.
	started := waitFor(20*time.Second, func() bool {
		have := consumersOn(t, ctx, admin.JetStream())
		for stream, names := range want {
			for _, n := range names {
				if _, ok := have[stream][n]; !ok {
					return false
				}
			}
		}
		// A rebuild deletes its replay consumer before creating it too (one
		// left by a rebuilder that died), so a DELETE audit alone does not
		// say it has come and gone: its CREATE audit and its absence do.
		for _, name := range []string{bus.ConsumerIntakeReplay, bus.ConsumerNotifierReplay} {
			if _, there := have[bus.StreamFeedback][name]; there || !audits.created(bus.StreamFeedback, name) {
				return false
			}
		}
		return true
	})
	if !started {
		t.Errorf("after 20s not every consumer of %v is there, or a rebuild's replay consumer was not deleted", want)
	}
	// The advisories of calls made so far are in once a later one is. The
	// consumers are listed before that call, so that one created meanwhile
	// (a live watch's ordered consumer renews itself) is not checked
	// against audits that cannot hold its creation yet.
	consumers := consumersOn(t, ctx, admin.JetStream())
	if _, err := admin.JetStream().AccountInfo(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the audit of the test's own last call", func() bool { return audits.has("$JS.API.INFO") })

	// With the teams named, the router's watch permissions are exact ones,
	// not "any consumer on feedback.routed.*", which would let a renamed
	// router consumer pass.
	spec := natsauth.Spec{Sources: []string{"helpdesk"}, Teams: []string{team}, ManageStreams: true}
	perms := map[string]natsauth.Permissions{}
	for _, user := range natsauth.Services {
		perms[connName(user)], _ = spec.Permissions(user)
	}
	userOf := func(conn string) string { return strings.TrimPrefix(conn, connPrefix) }

	// Every API call each service made is one its user may make.
	calls := audits.all()
	reported := map[audit]bool{}
	for _, a := range calls {
		p, ok := perms[a.client]
		if ok && !mayPublish(p.Publish, a.subject) && !reported[a] {
			reported[a] = true
			t.Errorf("%s called %s, which NATS user %q may not publish to (pkg/natsauth)", userOf(a.client), a.subject, userOf(a.client))
		}
	}
	// Every consumer on the streams was created by a service whose user
	// may create it, read its info, pull from it and acknowledge its
	// messages.
	durables := map[string]map[string][]string{} // user → stream → durable names
	for stream, cons := range consumers {
		for name, info := range cons {
			creator := ""
			for _, a := range calls {
				if isCreate(a.subject, stream, name) {
					creator = a.client
				}
			}
			p, ok := perms[creator]
			if !ok {
				t.Errorf("consumer %s on %s: created by %q, not by a service", name, stream, creator)
				continue
			}
			user := userOf(creator)
			need := []string{
				"$JS.API.CONSUMER.INFO." + stream + "." + name,
				"$JS.API.CONSUMER.MSG.NEXT." + stream + "." + name,
			}
			if info.Config.AckPolicy != jetstream.AckNonePolicy {
				need = append(need, "$JS.ACK."+stream+"."+name+".1.1.1.1.0")
			}
			for _, s := range need {
				if !mayPublish(p.Publish, s) {
					t.Errorf("consumer %s on %s (the %s service's): its NATS user may not publish to %s (pkg/natsauth)", name, stream, user, s)
				}
			}
			// The table lists the durables each service always has.
			if info.Config.Durable != "" && !strings.HasPrefix(name, bus.WatchConsumer("")) {
				if durables[user] == nil {
					durables[user] = map[string][]string{}
				}
				durables[user][stream] = append(durables[user][stream], name)
			}
		}
	}
	for _, user := range natsauth.Services {
		got := durables[user]
		for _, names := range got {
			sort.Strings(names)
		}
		wantCons := map[string][]string{}
		for stream, names := range services[user].consumers {
			wantCons[stream] = slices.Sorted(slices.Values(names))
		}
		if fmt.Sprint(got) != fmt.Sprint(wantCons) {
			t.Errorf("%s's durable consumers are %v; services.go lists %v", user, got, wantCons)
		}
	}
}

// connPrefix names the services' connections in the audit advisories.
const connPrefix = "natsperms-"

func connName(user string) string { return connPrefix + user }

// waitFor polls cond until it holds or d has passed, and reports which.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// parseEnv builds a service's Config from env the way the binary does.
func parseEnv[T interface{ Validate() error }](t *testing.T, m map[string]string) T {
	t.Helper()
	cfg, err := env.ParseAsWithOptions[T](env.Options{Environment: m})
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// consumersOn lists the consumers of every stream, by stream and name.
func consumersOn(t *testing.T, ctx context.Context, js jetstream.JetStream) map[string]map[string]*jetstream.ConsumerInfo {
	t.Helper()
	out := map[string]map[string]*jetstream.ConsumerInfo{}
	for _, sc := range bus.StreamConfigs(bus.StreamsConfig{}) {
		st, err := js.Stream(ctx, sc.Name)
		if err != nil {
			t.Fatal(err)
		}
		out[sc.Name] = map[string]*jetstream.ConsumerInfo{}
		l := st.ListConsumers(ctx)
		for info := range l.Info() {
			out[sc.Name][info.Name] = info
		}
		if err := l.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// isCreate reports whether subject is an API call creating consumer name on
// stream (with or without a filter subject, or the older durable form).
func isCreate(subject, stream, name string) bool {
	for _, p := range []string{"$JS.API.CONSUMER.CREATE.", "$JS.API.CONSUMER.DURABLE.CREATE."} {
		base := p + stream + "." + name
		if subject == base || strings.HasPrefix(subject, base+".") {
			return true
		}
	}
	return false
}

// mayPublish reports whether a publish to subject is allowed by allow, as the
// server decides it (a literal subject against wildcard permissions).
func mayPublish(allow []string, subject string) bool {
	return slices.ContainsFunc(allow, func(p string) bool { return testkit.SubjectMatches(p, subject) })
}

type audit struct{ client, subject string }

// auditLog collects the JetStream API audit advisories.
type auditLog struct {
	mu sync.Mutex
	a  []audit
}

func (l *auditLog) add(m *nats.Msg) {
	var adv server.JSAPIAudit
	if json.Unmarshal(m.Data, &adv) != nil || adv.Client == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.a = append(l.a, audit{client: adv.Client.Name, subject: adv.Subject})
}

func (l *auditLog) all() []audit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.a)
}

// created reports whether a call creating consumer name on stream was audited.
func (l *auditLog) created(stream, name string) bool {
	return slices.ContainsFunc(l.all(), func(a audit) bool { return isCreate(a.subject, stream, name) })
}

func (l *auditLog) has(subject string) bool {
	return slices.ContainsFunc(l.all(), func(a audit) bool { return a.subject == subject })
}
