package manifests

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// A Copy is a file or directory of deploy/examples or deploy/grafana that a
// kustomization needs inside its own root: kustomize's default load
// restrictor (kubectl apply -k, Argo CD, Flux) refuses files outside it, and
// refuses symlinks that lead outside it too. The source stays the one to
// edit; `go run ./deploy/check/cmd/deploy-copies` refreshes the copies and
// `make deploy-check` fails while a copy differs.
type Copy struct{ Src, Dst string }

// Copies are every copy, relative to the repository root.
var Copies = []Copy{
	{"deploy/examples/rules.yaml", "deploy/k8s/base/examples/rules.yaml"},
	{"deploy/examples/routes.yaml", "deploy/k8s/base/examples/routes.yaml"},
	{"deploy/examples/templates", "deploy/k8s/base/examples/templates"},
	{"deploy/examples/team-tokens.yaml", "deploy/k8s/overlays/dev/examples/team-tokens.yaml"},
	{"deploy/examples/nats/auth.conf", "deploy/k8s/overlays/dev/examples/nats/auth.conf"},
	{"deploy/examples/nats/intake.nk", "deploy/k8s/overlays/dev/examples/nats/intake.nk"},
	{"deploy/examples/nats/classifier.nk", "deploy/k8s/overlays/dev/examples/nats/classifier.nk"},
	{"deploy/examples/nats/router.nk", "deploy/k8s/overlays/dev/examples/nats/router.nk"},
	{"deploy/examples/nats/notifier.nk", "deploy/k8s/overlays/dev/examples/nats/notifier.nk"},
	{"deploy/examples/teams.yaml", "deploy/k8s/overlays/prod/examples/teams.yaml"},
	{"deploy/grafana/pipeline.json", "deploy/k8s/components/observability/grafana/pipeline.json"},
	{"deploy/grafana/closed-loop.json", "deploy/k8s/components/observability/grafana/closed-loop.json"},
	{"deploy/grafana/provisioning/datasources/feedloop.yaml", "deploy/k8s/components/observability/grafana/datasources.yaml"},
}

// readTree returns the files under p (or p itself) by path relative to p.
func readTree(p string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(q)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(p, q)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	return out, err
}

// CheckCopies reports every copy under root that is missing, differs from
// its source or has a file its source has not.
func CheckCopies(root string) error {
	var errs errList
	for _, c := range Copies {
		src, err := readTree(filepath.Join(root, c.Src))
		if err != nil {
			errs.add(fmt.Errorf("%s: %w", c.Src, err))
			continue
		}
		dst, err := readTree(filepath.Join(root, c.Dst))
		if err != nil && !os.IsNotExist(err) {
			errs.add(fmt.Errorf("%s: %w", c.Dst, err))
			continue
		}
		var bad []string
		for rel, b := range src {
			if d, ok := dst[rel]; !ok {
				bad = append(bad, rel+" missing")
			} else if !bytes.Equal(d, b) {
				bad = append(bad, rel+" differs")
			}
		}
		for rel := range dst {
			if _, ok := src[rel]; !ok {
				bad = append(bad, rel+" is not in the source")
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			errs.add(fmt.Errorf("%s is not a copy of %s (%s): edit the source and run `go run ./deploy/check/cmd/deploy-copies`",
				c.Dst, c.Src, strings.Join(bad, ", ")))
		}
	}
	return errs.join()
}

// SyncCopies replaces every copy under root with its source.
func SyncCopies(root string) error {
	for _, c := range Copies {
		src, err := readTree(filepath.Join(root, c.Src))
		if err != nil {
			return err
		}
		dst := filepath.Join(root, c.Dst)
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		for rel, b := range src {
			p := dst
			if rel != "." {
				p = filepath.Join(dst, filepath.FromSlash(rel))
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
