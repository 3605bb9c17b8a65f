package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopiesInSync: what the overlays build from is what deploy/examples
// and deploy/grafana hold.
func TestCopiesInSync(t *testing.T) {
	if err := CheckCopies(root); err != nil {
		t.Fatal(err)
	}
}

// TestCopiesDrift: an edited source, a stale copy and a stray file in a
// copied directory are each reported, and SyncCopies repairs them.
func TestCopiesDrift(t *testing.T) {
	dir := t.TempDir()
	for _, c := range Copies {
		for _, p := range []string{c.Src, c.Dst} {
			files, err := readTree(filepath.Join(root, p))
			if err != nil {
				t.Fatal(err)
			}
			for rel, b := range files {
				q := filepath.Join(dir, p)
				if rel != "." {
					q = filepath.Join(q, rel)
				}
				if err := os.MkdirAll(filepath.Dir(q), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(q, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := CheckCopies(dir); err != nil {
		t.Fatalf("a faithful copy of the repository fails: %v", err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("deploy/examples/routes.yaml", "# edited\n")
	write("deploy/k8s/components/observability/grafana/pipeline.json", "{}")
	write("deploy/k8s/base/examples/templates/stray.txt.tmpl", "x")
	err := CheckCopies(dir)
	for _, want := range []string{
		"deploy/k8s/base/examples/routes.yaml is not a copy of deploy/examples/routes.yaml (. differs)",
		"deploy/k8s/components/observability/grafana/pipeline.json is not a copy",
		"stray.txt.tmpl is not in the source",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error containing %q, got %v", want, err)
		}
	}
	if err := SyncCopies(dir); err != nil {
		t.Fatal(err)
	}
	if err := CheckCopies(dir); err != nil {
		t.Fatalf("after SyncCopies: %v", err)
	}
}
