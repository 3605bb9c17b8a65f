package natsauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

func TestMain(m *testing.M) {
	// A refused publish shows when the attempt times out: keep it short.
	bus.PublishAttemptTimeout = time.Second
	os.Exit(m.Run())
}

var spec = natsauth.Spec{Sources: []string{"helpdesk", "survey"}, ManageStreams: true}

// busAs connects as user and returns its Bus, the streams ensured (as every
// service does at start).
func busAs(t *testing.T, url string, users natsauth.Users, user string) *bus.Bus {
	t.Helper()
	b, err := bus.New(testkit.ConnectAs(t, url, users, user))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureStreams(ctxT(t, 10*time.Second), bus.StreamsConfig{}); err != nil {
		t.Fatalf("%s: ensure streams: %v", user, err)
	}
	return b
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// lastDenied waits for the server's permissions violation on nc naming subject.
func lastDenied(t *testing.T, nc *nats.Conn, subject string) {
	t.Helper()
	_ = nc.Flush()
	testkit.Eventually(t, "a permissions violation naming "+subject, func() bool {
		le := nc.LastError()
		return errors.Is(le, nats.ErrPermissionViolation) && strings.Contains(le.Error(), `"`+subject)
	})
}

func count(t *testing.T, admin *bus.Bus, stream, filter string) uint64 {
	t.Helper()
	st, err := admin.JetStream().Stream(ctxT(t, 5*time.Second), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctxT(t, 5*time.Second), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func event(id string) *feedloopv1.Event {
	return &feedloopv1.Event{Id: id, FeedbackId: "fb-" + id, Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{}}}
}

func TestNotifierCannotPublishReceived(t *testing.T) {
	url, users := testkit.SecureNATS(t, spec)
	admin := busAs(t, url, users, natsauth.Admin)
	notifier := busAs(t, url, users, natsauth.Notifier)

	_, err := notifier.Publish(ctxT(t, 10*time.Second), bus.SubjectReceived, event("forged-1"))
	if !errors.Is(err, bus.ErrPermissionDenied) || !bus.IsPermanent(err) {
		t.Fatalf("JetStream publish of feedback.received as notifier: err = %v, want a permanent ErrPermissionDenied", err)
	}
	nc := notifier.Conn()
	if err := nc.Publish(bus.SubjectReceived, []byte("forged core publish")); err != nil {
		t.Fatal(err)
	}
	lastDenied(t, nc, bus.SubjectReceived)
	if n := count(t, admin, bus.StreamFeedback, bus.SubjectReceived); n != 0 {
		t.Fatalf("%d messages on feedback.received, want none", n)
	}
	// What the notifier may publish is stored.
	if _, err := notifier.Publish(ctxT(t, 10*time.Second), bus.SubjectNotified, event("notified-1")); err != nil {
		t.Fatalf("notifier publishing feedback.notified: %v", err)
	}
	if _, err := notifier.Publish(ctxT(t, 10*time.Second), bus.DLQSubject("notifier"), event("dlq-1")); err != nil {
		t.Fatalf("notifier dead-lettering: %v", err)
	}
}

func TestIntakeCannotReadRouted(t *testing.T) {
	url, users := testkit.SecureNATS(t, spec)
	admin := busAs(t, url, users, natsauth.Admin)
	intake := busAs(t, url, users, natsauth.Intake)
	nc := intake.Conn()

	sub, err := nc.SubscribeSync("feedback.routed.>")
	if err != nil {
		t.Fatal(err)
	}
	lastDenied(t, nc, "feedback.routed.>")
	if _, err := admin.Publish(ctxT(t, 10*time.Second), bus.RoutedSubject("billing"), event("routed-1")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(time.Second); err == nil {
		t.Fatalf("intake received %s", m.Subject)
	}
	for _, cc := range []jetstream.ConsumerConfig{
		{Durable: "intake", FilterSubject: "feedback.routed.>"},
		{Durable: "spy", FilterSubject: "feedback.routed.>"},
		{Durable: "spy-multi", FilterSubjects: []string{"feedback.routed.>", "feedback.updated.>"}},
		{FilterSubject: "feedback.routed.>"}, // ephemeral
	} {
		_, err := intake.JetStream().CreateOrUpdateConsumer(ctxT(t, time.Second), bus.StreamFeedback, cc)
		if err == nil {
			t.Fatalf("intake created a consumer %+v on FEEDBACK", cc)
		}
		lastDenied(t, nc, "$JS.API.CONSUMER.CREATE.FEEDBACK.")
	}
	// Its rebuild's replay consumer is held to feedback.received.
	if _, err := intake.JetStream().CreateOrUpdateConsumer(ctxT(t, time.Second), bus.StreamFeedback,
		jetstream.ConsumerConfig{Name: "intake-rebuild", FilterSubject: "feedback.routed.>", AckPolicy: jetstream.AckNonePolicy}); err == nil {
		t.Fatal("intake created its replay consumer on feedback.routed.>")
	}
	if _, err := admin.Publish(ctxT(t, 10*time.Second), bus.SubjectReceived, event("received-1")); err != nil {
		t.Fatal(err)
	}
	var replayed []string
	n, err := rebuild.Replay(ctxT(t, 10*time.Second), intake.JetStream(), bus.StreamFeedback, "intake-rebuild", bus.SubjectReceived,
		func(_ context.Context, m jetstream.Msg) error { replayed = append(replayed, m.Subject()); return nil })
	if err != nil || n != 1 || len(replayed) != 1 || replayed[0] != bus.SubjectReceived {
		t.Fatalf("intake replaying feedback.received: n=%d %v err=%v", n, replayed, err)
	}
	// Its own consumer works.
	if _, err := intake.EnsureConsumer(ctxT(t, 10*time.Second), bus.ConsumerConfig{
		Stream: bus.StreamSubmit, Durable: "intake", FilterSubjects: []string{bus.AllSubmit},
	}); err != nil {
		t.Fatalf("intake's own consumer: %v", err)
	}
}

func TestSourceSubmitsForItselfOnly(t *testing.T) {
	url, users := testkit.SecureNATS(t, spec)
	admin := busAs(t, url, users, natsauth.Admin)
	src, err := bus.New(testkit.ConnectAs(t, url, users, natsauth.SourceUser("helpdesk")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.PublishData(ctxT(t, 10*time.Second), bus.SubmitSubject("helpdesk"), "hd-1", []byte("x"), nil); err != nil {
		t.Fatalf("helpdesk submitting for helpdesk: %v", err)
	}
	_, err = src.PublishData(ctxT(t, 10*time.Second), bus.SubmitSubject("survey"), "sv-1", []byte("x"), nil)
	if !errors.Is(err, bus.ErrPermissionDenied) {
		t.Fatalf("helpdesk submitting for survey: err = %v, want ErrPermissionDenied", err)
	}
	if n := count(t, admin, bus.StreamSubmit, bus.SubmitSubject("survey")); n != 0 {
		t.Fatalf("%d messages on feedback.submit.survey, want none", n)
	}
	// Nor can it read another user's replies.
	if _, err := src.Conn().SubscribeSync(natsauth.InboxPrefix(natsauth.Intake) + ".>"); err == nil {
		_ = src.Conn().Flush()
	}
	lastDenied(t, src.Conn(), natsauth.InboxPrefix(natsauth.Intake))
}

func TestWrongSeedIsRefused(t *testing.T) {
	url, _ := testkit.SecureNATS(t, spec)
	other, err := natsauth.Generate(t.TempDir(), spec) // keys the server does not know
	if err != nil {
		t.Fatal(err)
	}
	u, _ := other.Get(natsauth.Intake)
	opts, err := u.Options()
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(url, opts...); err == nil {
		nc.Close()
		t.Fatal("connected with an unknown key")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("err = %v, want an authorization violation", err)
	}
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
}

func TestGenerateIsIdempotentAndTheConfigParses(t *testing.T) {
	dir := t.TempDir()
	first, err := natsauth.Generate(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range first {
		fi, err := os.Stat(u.SeedFile)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", u.SeedFile, fi.Mode().Perm())
		}
	}
	conf, err := os.ReadFile(filepath.Join(dir, natsauth.ServerConfigName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(conf), `"SU`) {
		t.Fatal("the server config holds a seed")
	}

	more := spec
	more.Sources = append(slices.Clone(spec.Sources), "crm")
	again, err := natsauth.Generate(dir, more)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range first {
		if v, _ := again.Get(u.Name); v.PublicKey != u.PublicKey {
			t.Errorf("%s: key changed on regeneration", u.Name)
		}
	}
	if _, ok := again.Get(natsauth.SourceUser("crm")); !ok {
		t.Fatal("added source has no user")
	}

	// The file included from a server config gives the same users.
	main := filepath.Join(dir, "nats-server.conf")
	if err := os.WriteFile(main, []byte("port: -1\ninclude auth.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(main)
	if err != nil {
		t.Fatalf("server rejects the generated config: %v", err)
	}
	want := again.NkeyUsers()
	if len(opts.Nkeys) != len(want) {
		t.Fatalf("config has %d users, want %d", len(opts.Nkeys), len(want))
	}
	for i, u := range opts.Nkeys {
		w := want[i]
		if u.Nkey != w.Nkey || !slices.Equal(u.Permissions.Publish.Allow, w.Permissions.Publish.Allow) ||
			!slices.Equal(u.Permissions.Subscribe.Allow, w.Permissions.Subscribe.Allow) {
			t.Errorf("user %d: config %+v / %+v, want %+v / %+v", i, u.Permissions.Publish, u.Permissions.Subscribe, w.Permissions.Publish, w.Permissions.Subscribe)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	err := natsauth.Spec{Sources: []string{"help desk", "a", "a"}, Teams: []string{"Billing"}}.Validate()
	for _, want := range []string{`source "help desk"`, `source "a": given twice`, `team "Billing"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %s", err, want)
		}
	}
}

// The router's live team watch is an ordered consumer on one team's routed
// subject: allowed, and it receives what is routed there, also when the
// router's durable watch consumers are limited to the known teams.
func TestRouterOpensALiveWatch(t *testing.T) {
	teams := spec
	teams.Teams = []string{"billing"}
	url, users := testkit.SecureNATS(t, teams)
	admin := busAs(t, url, users, natsauth.Admin)
	router := busAs(t, url, users, natsauth.Router)
	cons, err := router.JetStream().OrderedConsumer(ctxT(t, 10*time.Second), bus.StreamFeedback, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.RoutedSubject("billing")}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Messages creates the consumer at once (Next would only on fetch).
	it, err := cons.Messages()
	if err != nil {
		t.Fatalf("router creating a live watch: %v (connection: %v)", err, router.Conn().LastError())
	}
	defer it.Stop()
	if _, err := admin.Publish(ctxT(t, 10*time.Second), bus.RoutedSubject("billing"), event("live-1")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		if m, err := it.Next(); err == nil {
			got <- m.Subject()
		}
		close(got)
	}()
	select {
	case subj := <-got:
		if subj != bus.RoutedSubject("billing") {
			t.Fatalf("live watch got %q (connection: %v)", subj, router.Conn().LastError())
		}
	case <-ctxT(t, 10*time.Second).Done():
		t.Fatalf("live watch got nothing (connection: %v)", router.Conn().LastError())
	}
}
