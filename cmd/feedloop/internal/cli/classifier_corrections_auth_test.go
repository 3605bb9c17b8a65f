package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// With NATS authorization, corrections reads the routed events as the
// tools user, which is allowed exactly that.
func TestClassifierCorrectionsAsToolsUser(t *testing.T) {
	url, users := testkit.SecureNATS(t, natsauth.Spec{ManageStreams: true})
	admin, err := bus.New(testkit.ConnectAs(t, url, users, natsauth.Admin))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := admin.EnsureStreams(ctx, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, ev := range []*feedloopv1.Event{
		routedEvent("fb-1", "Where is my parcel?", "", "billing", "", t0, "billing"),
		routedEvent("fb-1", "Where is my parcel?", "", "logistics", "billing", t0.Add(time.Hour), "billing"),
	} {
		if _, err := admin.Publish(ctx, bus.RoutedSubject(ev.GetRouted().GetAssignment().GetTeam()), ev); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "corrections.csv")
	args := []string{"classifier", "corrections", "--out", out, "--server", url, "--timeout", "2s"}
	if code, _, _ := run(t, args...); code == 0 {
		t.Fatal("corrections without credentials succeeded")
	}
	tools, _ := users.Get(natsauth.Tools)
	t.Setenv("NATS_NKEY_SEED_FILE", tools.SeedFile)
	code, stdout, stderr := run(t, args...)
	if code != 0 || !strings.Contains(stdout, "1 corrections from 2 routed events") {
		t.Fatalf("as tools: exit %d: %s%s", code, stdout, stderr)
	}
}
