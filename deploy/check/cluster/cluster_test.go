// Package cluster tests that the services run unchanged on a 3-node NATS
// JetStream cluster with R3 streams, the production shape of
// deploy/k8s/overlays/prod, and lose nothing when a node goes away.
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
)

const examples = "../../examples"

// items is how many feedback items go through; half before the node stops.
const items = 12

// TestThreeNodeClusterLosesNothing starts three clustered nats-servers,
// creates the streams R3, runs the four services against the cluster (as
// the prod overlay does, NATS_URL listing the nodes), submits feedback,
// stops the FEEDBACK stream's leader half-way, and checks every item went
// through every step exactly once.
func TestThreeNodeClusterLosesNothing(t *testing.T) {
	nodes := startCluster(t, 3)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.ClientURL())
	}
	natsURL := strings.Join(urls, ",")
	redisURL := testkit.Redis(t)

	common := lifecycle.MustDefaults[lifecycle.Common]()
	common.NATSURL, common.RedisURL, common.StreamReplicas = natsURL, redisURL, 3
	if err := common.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("service logs:\n%s", logs.String())
		}
	})

	// The test's own view of the bus; creating the streams R3 also waits
	// for the cluster to elect its meta leader.
	check := connect(t, "test", natsURL, logs)
	testkit.Eventually(t, "the R3 streams to be created on the cluster", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return check.Bus.EnsureStreams(ctx, common.Streams()) == nil
	})
	for _, name := range []string{bus.StreamFeedback, bus.StreamSubmit, bus.StreamDLQ} {
		if r := streamInfo(t, check.Bus, name).Config.Replicas; r != 3 {
			t.Fatalf("stream %s has %d replicas, want 3", name, r)
		}
	}

	// Each service gets its own connection and ensures the streams itself,
	// as its binary does (lifecycle.Connect), and runs under a supervisor
	// that restarts it when it fails, as the kubelet restarts its pod: on a
	// cluster under load, creating an R3 consumer may outlast the client's
	// API timeout, and the service then exits at start.
	intakeAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	supervise(t, "intake", infra(t, "intake", common, logs), func(in *lifecycle.Infra) (runner, error) {
		cfg := intake.DefaultConfig()
		cfg.Common, cfg.GRPCAddr, cfg.HTTPAddr = common, intakeAddr, "127.0.0.1:0"
		cfg.RateLimit = access.Rate{} // one source sends the whole load
		return intake.New(cfg, in)
	})
	supervise(t, "classifier", infra(t, "classifier", common, logs), func(in *lifecycle.Infra) (runner, error) {
		cc := classifier.DefaultConfig()
		cc.Common = common
		cc.RulesFile = filepath.Join(examples, "rules.yaml")
		cc.Languages = nil // the customer's locale decides: no language models to load
		return classifier.New(cc, in)
	})
	routerGRPC := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	supervise(t, "router", infra(t, "router", common, logs), func(in *lifecycle.Infra) (runner, error) {
		cfg := router.DefaultConfig()
		cfg.Common, cfg.RoutesFile = common, filepath.Join(examples, "routes.yaml")
		cfg.GRPCAddr, cfg.HTTPAddr = routerGRPC, "127.0.0.1:0"
		cfg.SLAWarnAt = 0 // as before: no warning events
		return router.New(cfg, in)
	})
	supervise(t, "notifier", infra(t, "notifier", common, logs), func(in *lifecycle.Infra) (runner, error) {
		cfg := notifier.DefaultConfig()
		cfg.Common, cfg.TemplatesDir = common, filepath.Join(examples, "templates")
		cfg.ConsoleOutput, cfg.StatusURL = &testkit.SyncBuffer{}, "http://127.0.0.1:7004/status"
		cfg.CustomerDailyCap = 0 // as before: every message sent
		return notifier.New(cfg, in)
	})
	// The services create their R3 consumers at start; the node stops only
	// once they exist (creating one while the cluster re-elects its leaders
	// may time out, and then the service exits for its pod to restart).
	for stream, durables := range map[string][]string{
		bus.StreamSubmit:   {"intake"},
		bus.StreamFeedback: {classifier.Durable, "router", router.ProjectorDurable, notifier.Durable},
	} {
		for _, d := range durables {
			testkit.Eventually(t, "consumer "+d+" on "+stream, func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_, err := check.Bus.JetStream().Consumer(ctx, stream, d)
				return err == nil
			})
		}
	}

	conn, err := grpc.NewClient(intakeAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := feedloopv1.NewIntakeServiceClient(conn)
	template := exampleFeedback(t)

	ids := map[string]string{} // feedback id → external id
	submit := func(i int) {
		fb := proto.Clone(template).(*feedloopv1.Feedback)
		fb.ExternalId = fmt.Sprintf("cluster-%03d", i)
		// A submission that fails while the cluster elects new leaders is
		// retried, as a company system would: (source, external_id) makes
		// the retry safe.
		var id string
		testkit.Eventually(t, "intake to accept "+fb.ExternalId, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := client.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: fb})
			if err != nil {
				return false
			}
			id = res.GetFeedbackId()
			return true
		})
		ids[id] = fb.ExternalId
	}

	for i := range items / 2 {
		submit(i)
	}
	t.Logf("submitted %d items; stopping FEEDBACK's leader", items/2)
	// Stop the node leading FEEDBACK, the record, while the first half is
	// still flowing through the services.
	leader := streamInfo(t, check.Bus, bus.StreamFeedback).Cluster.Leader
	var stopped bool
	for _, n := range nodes {
		if n.Name() == leader {
			n.Shutdown()
			n.WaitForShutdown()
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("FEEDBACK's leader %q is none of the nodes", leader)
	}
	for i := items / 2; i < items; i++ {
		submit(i)
	}
	t.Logf("stopped %s; submitted the other %d items", leader, items-items/2)
	if len(ids) != items {
		t.Fatalf("intake gave %d distinct ids to %d items", len(ids), items)
	}

	// Every item goes all the way: received, classified, routed to its
	// teams, and the customer and each team told. Consumers whose leader
	// was on the stopped node resume once their pull requests expire, so
	// this may take longer than testkit's usual wait.
	waitLong(t, "every item to complete the pipeline", func() bool {
		for _, p := range progress(t, check.Bus) {
			if !p.complete() {
				return false
			}
		}
		return len(progress(t, check.Bus)) == items
	})
	t.Log("every item completed the pipeline")
	if r := streamInfo(t, check.Bus, bus.StreamFeedback).Cluster.Leader; r == leader || r == "" {
		t.Fatalf("FEEDBACK's leader is %q after %q stopped", r, leader)
	}

	// Exactly once, per step: a second copy of any event would have a
	// different event id (redelivery derives the same one, which the
	// duplicate window drops), so count events per item and kind.
	perItem := map[string]map[string]int{}
	for _, m := range testkit.Messages(t, check.Bus, bus.StreamFeedback, bus.AllFeedback) {
		id := m.Header.Get(bus.HeaderFeedbackID)
		if _, ours := ids[id]; !ours {
			t.Errorf("%s for unknown feedback %q", m.Subject, id)
			continue
		}
		key := m.Subject
		if m.Subject == bus.SubjectNotified {
			var ev feedloopv1.Event
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				t.Fatalf("decode %s: %v", m.Subject, err)
			}
			n := ev.GetNotified()
			key = fmt.Sprintf("%s %s/%s/%s/%s", m.Subject, n.GetCauseEventId(), n.GetAudience(), n.GetChannel(), n.GetRecipient())
		}
		if perItem[id] == nil {
			perItem[id] = map[string]int{}
		}
		perItem[id][key]++
	}
	for id, ext := range ids {
		kinds := perItem[id]
		for _, must := range []string{bus.SubjectReceived, bus.SubjectClassified} {
			if kinds[must] != 1 {
				t.Errorf("item %s: %d %s events, want 1", ext, kinds[must], must)
			}
		}
		routed := 0
		for key, n := range kinds {
			if n != 1 {
				t.Errorf("item %s: %s %d times, want once", ext, key, n)
			}
			if strings.HasPrefix(key, "feedback.routed.") {
				routed++
			}
		}
		if routed == 0 {
			t.Errorf("item %s was routed to no team", ext)
		}
	}
	if dead := testkit.Messages(t, check.Bus, bus.StreamDLQ, bus.AllDLQ); len(dead) > 0 {
		t.Errorf("%d dead letters, first on %s: %s", len(dead), dead[0].Subject, dead[0].Header.Get("Feedloop-Dlq-Error"))
	}
}

// startCluster starts n nats-servers with JetStream, clustered over
// loopback on free ports, each with its own store in a temp dir.
func startCluster(t *testing.T, n int) []*server.Server {
	t.Helper()
	var routes []*url.URL
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testkit.FreePort(t)
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	nodes := make([]*server.Server, n)
	for i := range nodes {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "feedloop", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
			NoSigs:     true,
			NoLog:      true,
		})
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		go ns.Start()
		t.Cleanup(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready", i+1)
		}
		nodes[i] = ns
	}
	return nodes
}

// connect builds the Infra a service's binary would (lifecycle.Connect,
// without the process-wide telemetry): its own NATS connection to every
// node and its own Redis client.
func connect(t *testing.T, name, natsURL string, logs *testkit.SyncBuffer) *lifecycle.Infra {
	t.Helper()
	nc, err := bus.Connect(natsURL, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("service", name)
	b, err := bus.New(nc, bus.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return &lifecycle.Infra{Bus: b, Log: log}
}

func infra(t *testing.T, name string, c lifecycle.Common, logs *testkit.SyncBuffer) *lifecycle.Infra {
	t.Helper()
	in := connect(t, name, c.NATSURL, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Bus.EnsureStreams(ctx, c.Streams()); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	rdb, err := redisx.Connect(ctx, c.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	in.Redis = rdb
	return in
}

type runner interface{ Run(context.Context) error }

// supervise builds and runs a service until the test ends, building and
// running it again (after a pause, as a crash-looping pod) whenever Run
// fails; at the end it cancels it and expects a graceful stop within the
// services' drain time (a message in hand may take its AckWait, 30s).
func supervise(t *testing.T, name string, in *lifecycle.Infra, build func(*lifecycle.Infra) (runner, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for {
			svc, err := build(in)
			if err == nil {
				err = svc.Run(ctx)
			}
			if ctx.Err() != nil {
				done <- err
				return
			}
			in.Log.Warn("test: service failed, restarting it", "err", err)
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-time.After(time.Second):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run returned %v after cancel, want nil", name, err)
			}
		case <-time.After(45 * time.Second):
			t.Errorf("%s: Run did not return within 45s of cancel", name)
		}
	})
}

func streamInfo(t *testing.T, b *bus.Bus, name string) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	testkit.Eventually(t, "info of stream "+name, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := b.JetStream().Stream(ctx, name)
		if err != nil {
			return false
		}
		info, err = s.Info(ctx)
		return err == nil && info.Cluster != nil && info.Cluster.Leader != ""
	})
	return info
}

// itemProgress is how far one item got.
type itemProgress struct {
	received, classified bool
	routed               map[string]bool // teams
	customerTold         bool
	teamsTold            map[string]bool
}

func (p *itemProgress) complete() bool {
	if !p.received || !p.classified || len(p.routed) == 0 || !p.customerTold {
		return false
	}
	for team := range p.routed {
		if !p.teamsTold[team] {
			return false
		}
	}
	return true
}

// progress reads the FEEDBACK stream into each item's progress.
func progress(t *testing.T, b *bus.Bus) map[string]*itemProgress {
	t.Helper()
	out := map[string]*itemProgress{}
	for _, m := range testkit.Messages(t, b, bus.StreamFeedback, bus.AllFeedback) {
		id := m.Header.Get(bus.HeaderFeedbackID)
		p := out[id]
		if p == nil {
			p = &itemProgress{routed: map[string]bool{}, teamsTold: map[string]bool{}}
			out[id] = p
		}
		switch {
		case m.Subject == bus.SubjectReceived:
			p.received = true
		case m.Subject == bus.SubjectClassified:
			p.classified = true
		case strings.HasPrefix(m.Subject, "feedback.routed."):
			p.routed[strings.TrimPrefix(m.Subject, "feedback.routed.")] = true
		case m.Subject == bus.SubjectNotified:
			var ev feedloopv1.Event
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				t.Fatalf("decode %s: %v", m.Subject, err)
			}
			n := ev.GetNotified()
			switch {
			case n.GetStep() == feedloopv1.Step_STEP_RECEIVED && n.GetAudience() == "customer":
				p.customerTold = true
			case n.GetStep() == feedloopv1.Step_STEP_ROUTED && n.GetAudience() == "team":
				p.teamsTold[n.GetTeam()] = true
			}
		}
	}
	return out
}

// waitLong is testkit.Eventually with room for JetStream to move its
// consumer leaders and for the clients' pull requests to expire (30s).
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	const timeout = 2 * time.Minute
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exampleFeedback(t *testing.T) *feedloopv1.Feedback {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examples, "feedback.json"))
	if err != nil {
		t.Fatal(err)
	}
	fb := &feedloopv1.Feedback{}
	if err := protojson.Unmarshal(b, fb); err != nil {
		t.Fatalf("feedback.json: %v", err)
	}
	return fb
}
