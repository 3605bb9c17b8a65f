package stack_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// The stack runs like a deployment: every service on its own NKey (the
// other end-to-end tests run the pipeline so), and a source system's user
// submits for its own source only.
func TestEveryServiceOnItsOwnCredentials(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cz, err := e.s.NATS.Connz(&server.ConnzOptions{Username: true})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{} // connection name → nkey
	for _, c := range cz.Conns {
		keys[c.Name] = c.AuthorizedUser
	}
	for _, name := range append(natsauth.Services, natsauth.Admin) {
		u, _ := e.s.NATSUsers.Get(name)
		if got := keys["feedloop-dev-"+name]; got == "" || got != u.PublicKey {
			t.Errorf("%s connected with nkey %q, want its own %q (connections: %v)", name, got, u.PublicKey, keys)
		}
	}

	src, err := bus.New(testkit.ConnectAs(t, e.s.NATS.ClientURL(), e.s.NATSUsers, natsauth.SourceUser("appstore")))
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(&feedloopv1.Feedback{
		ExternalId: "review-9", Channel: feedloopv1.Channel_CHANNEL_APP_REVIEW,
		Text: "The app crashes every time I open it on my iPhone.",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.PublishData(ctx, bus.SubmitSubject("appstore"), "appstore-review-9", data, nil); err != nil {
		t.Fatalf("appstore submitting: %v", err)
	}
	if _, err := src.PublishData(ctx, bus.SubmitSubject("helpdesk"), "helpdesk-forged", data, nil); !errors.Is(err, bus.ErrPermissionDenied) {
		t.Fatalf("appstore submitting as helpdesk: err = %v, want ErrPermissionDenied", err)
	}
	var fid string
	testkit.Eventually(t, "the appstore review received", func() bool {
		for _, ev := range e.events(t, bus.SubjectReceived, "")[bus.SubjectReceived] {
			if f := ev.GetReceived().GetFeedback(); f.GetSource() == "appstore" && f.GetExternalId() == "review-9" {
				fid = ev.GetFeedbackId()
				return true
			}
		}
		return false
	})
	testkit.Eventually(t, "classified, routed to mobile and notified", func() bool {
		evs := e.events(t, bus.AllFeedback, fid)
		return len(evs[bus.SubjectClassified]) == 1 && len(evs[bus.RoutedSubject("mobile")]) == 1 && len(evs[bus.SubjectNotified]) > 0
	})
	e.idle(t)
	info, err := e.s.Bus.JetStream().Stream(ctx, bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("%d dead letters: a service lacks a permission", n)
	}
}
