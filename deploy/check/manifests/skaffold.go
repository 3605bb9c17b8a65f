package manifests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// SkaffoldAPIVersion is the skaffold.yaml schema the project writes.
const SkaffoldAPIVersion = "skaffold/v4beta13"

// Skaffold is the part of skaffold.yaml the checks read (not strict:
// skaffold validates its own schema).
type Skaffold struct {
	APIVersion string `json:"apiVersion"`
	Build      struct {
		Artifacts []struct {
			Image string `json:"image"`
			Ko    *struct {
				Dir       string `json:"dir"`
				Main      string `json:"main"`
				FromImage string `json:"fromImage"`
			} `json:"ko"`
		} `json:"artifacts"`
	} `json:"build"`
	Manifests skaffoldManifests `json:"manifests"`
	Profiles  []struct {
		Name      string            `json:"name"`
		Manifests skaffoldManifests `json:"manifests"`
	} `json:"profiles"`
}

type skaffoldManifests struct {
	Kustomize *struct {
		Paths     []string `json:"paths"`
		BuildArgs []string `json:"buildArgs"`
	} `json:"kustomize"`
}

// ReadSkaffold reads root/skaffold.yaml.
func ReadSkaffold(root string) (*Skaffold, error) {
	b, err := os.ReadFile(filepath.Join(root, "skaffold.yaml"))
	if err != nil {
		return nil, err
	}
	var sk Skaffold
	if err := yaml.Unmarshal(b, &sk); err != nil {
		return nil, fmt.Errorf("skaffold.yaml: %w", err)
	}
	return &sk, nil
}

// Images are the images skaffold builds.
func (sk *Skaffold) Images() []string {
	var out []string
	for _, a := range sk.Build.Artifacts {
		out = append(out, a.Image)
	}
	return out
}

// Overlays are the kustomize paths skaffold deploys, by profile ("" is the
// default).
func (sk *Skaffold) Overlays() map[string][]string {
	out := map[string][]string{}
	if k := sk.Manifests.Kustomize; k != nil {
		out[""] = k.Paths
	}
	for _, p := range sk.Profiles {
		if k := p.Manifests.Kustomize; k != nil {
			out[p.Name] = k.Paths
		}
	}
	return out
}

// Check checks skaffold.yaml against the repository at root: the schema
// version, every artifact a ko build of an existing main package, and every
// kustomize deployment an existing overlay built with kustomize's default
// load restrictor, as kubectl apply -k builds it.
func (sk *Skaffold) Check(root string) error {
	var errs []error
	if sk.APIVersion != SkaffoldAPIVersion {
		errs = append(errs, fmt.Errorf("skaffold.yaml: apiVersion %q, want %q", sk.APIVersion, SkaffoldAPIVersion))
	}
	if len(sk.Build.Artifacts) == 0 {
		errs = append(errs, errors.New("skaffold.yaml: no artifacts"))
	}
	for _, a := range sk.Build.Artifacts {
		if a.Ko == nil || a.Ko.Main == "" {
			errs = append(errs, fmt.Errorf("skaffold.yaml: artifact %s: build it with ko and a main package", a.Image))
			continue
		}
		main := filepath.Join(root, a.Ko.Dir, a.Ko.Main, "main.go")
		if b, err := os.ReadFile(main); err != nil || !strings.Contains(string(b), "package main") {
			errs = append(errs, fmt.Errorf("skaffold.yaml: artifact %s: %s is not a main package", a.Image, main))
		}
	}
	if _, ok := sk.Overlays()[""]; !ok {
		errs = append(errs, errors.New("skaffold.yaml: no default kustomize deployment"))
	}
	checkManifests := func(where string, m skaffoldManifests) {
		if m.Kustomize == nil {
			return
		}
		if i := slices.IndexFunc(m.Kustomize.BuildArgs, func(a string) bool { return strings.Contains(a, "load-restrictor") }); i >= 0 {
			errs = append(errs, fmt.Errorf("skaffold.yaml: %s: kustomize buildArgs %q: the overlays must build as kubectl apply -k builds them", where, m.Kustomize.BuildArgs[i]))
		}
		for _, p := range m.Kustomize.Paths {
			if _, err := os.Stat(filepath.Join(root, p, "kustomization.yaml")); err != nil {
				errs = append(errs, fmt.Errorf("skaffold.yaml: %s: %s is not a kustomization", where, p))
			}
		}
	}
	checkManifests("manifests", sk.Manifests)
	for _, p := range sk.Profiles {
		checkManifests("profile "+p.Name, p.Manifests)
	}
	return errors.Join(errs...)
}
