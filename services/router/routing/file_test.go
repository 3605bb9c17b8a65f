package routing_test

// The routes file as the router keeps it (filewatch.Watcher of Parse):
// errors name the file and the bad node, and a bad file keeps the tree in
// force.

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/filewatch"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/router/routing"
)

const (
	treeA = "route:\n  team: triage\n  routes:\n    - team: billing\n      matchers: ['topic=\"billing\"']\n"
	treeB = "route:\n  team: triage\n  routes:\n    - team: finance\n      matchers: ['topic=\"billing\"']\n"
	bad   = "route:\n  team: triage\n  routes:\n    - team: Finance!\n"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	// Write and rename, as editors and ConfigMap updates do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func billingTeam(tr *routing.Tree) string {
	return tr.MatchLabels(routing.LabelSet{"topic": {"billing"}})[0].Team
}

// openFile opens path as the router does.
func openFile(path string, log *slog.Logger) (*filewatch.Watcher[*routing.Tree], error) {
	return filewatch.Open(path, "routes", routing.Parse, log)
}

func open(t *testing.T) (*filewatch.Watcher[*routing.Tree], string, *testkit.SyncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routes.yaml")
	write(t, path, treeA)
	logs := &testkit.SyncBuffer{}
	w, err := openFile(path, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return w, path, logs
}

func TestOpenRejectsInvalidAndMissingFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if _, err := openFile(path, slog.Default()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
	write(t, path, bad)
	_, err := openFile(path, slog.Default())
	if !errors.Is(err, routing.ErrInvalid) || !strings.Contains(err.Error(), path+": ") || !strings.Contains(err.Error(), "route.routes[0]: team") {
		t.Errorf("invalid file: err = %v, want the file and node paths", err)
	}
}

func TestReload(t *testing.T) {
	ctx := context.Background()
	w, path, logs := open(t)
	if got := billingTeam(w.Get()); got != "billing" {
		t.Fatalf("initial tree routes billing to %s", got)
	}

	if changed, err := w.Reload(ctx); changed || err != nil {
		t.Errorf("unchanged file: changed=%v err=%v", changed, err)
	}

	write(t, path, treeB)
	if changed, err := w.Reload(ctx); !changed || err != nil {
		t.Fatalf("new valid file: changed=%v err=%v", changed, err)
	}
	if got := billingTeam(w.Get()); got != "finance" {
		t.Errorf("after reload billing goes to %s, want finance", got)
	}

	write(t, path, bad)
	changed, err := w.Reload(ctx)
	if changed || !errors.Is(err, routing.ErrInvalid) {
		t.Fatalf("invalid file: changed=%v err=%v", changed, err)
	}
	if got := billingTeam(w.Get()); got != "finance" {
		t.Errorf("invalid file replaced the tree: billing goes to %s", got)
	}
	if l := logs.String(); !strings.Contains(l, "routes file invalid") || !strings.Contains(l, path) || !strings.Contains(l, `route.routes[0]: team \"Finance!\"`) {
		t.Errorf("log does not name the file and the bad node:\n%s", l)
	}
	// The same broken content is reported once, not at every poll.
	before := strings.Count(logs.String(), "routes file invalid")
	if _, err := w.Reload(ctx); err != nil {
		t.Errorf("same broken content again: err = %v", err)
	}
	if n := strings.Count(logs.String(), "routes file invalid"); n != before {
		t.Errorf("broken file logged %d times, want %d", n, before)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reload(ctx); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removed file: err = %v", err)
	}
	if got := billingTeam(w.Get()); got != "finance" {
		t.Errorf("removed file replaced the tree: billing goes to %s", got)
	}

	write(t, path, treeA)
	if changed, err := w.Reload(ctx); !changed || err != nil {
		t.Fatalf("fixed file: changed=%v err=%v", changed, err)
	}
	if got := billingTeam(w.Get()); got != "billing" {
		t.Errorf("fixed file: billing goes to %s", got)
	}
}

func TestRunPollsUntilCancelled(t *testing.T) {
	w, path, _ := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, 10*time.Millisecond); close(done) }()

	write(t, path, treeB)
	deadline := time.Now().Add(10 * time.Second)
	for billingTeam(w.Get()) != "finance" {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the new file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
