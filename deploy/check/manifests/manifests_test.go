package manifests

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// root is the repository root, from deploy/check/manifests.
const root = "../../.."

// externalSecrets are the Secrets the operator creates for prod
// (overlays/prod/kustomization.yaml and README.md "Running on Kubernetes" lists them).
var externalSecrets = map[string]map[string][]string{
	"dev": {},
	"prod": {
		"feedloop-team-tokens": {"team-tokens.yaml"},
		"feedloop-intake-keys": {"intake-keys.yaml"},
		"feedloop-notifier":    {"webhook-secret", "smtp-password"},
		"feedloop-console":     {"session-key"},
		"grafana-admin":        {"password"},
		// feedloop nats-config's output.
		"nats-auth":                {"auth.conf"},
		"feedloop-nats-intake":     {"seed"},
		"feedloop-nats-classifier": {"seed"},
		"feedloop-nats-router":     {"seed"},
		"feedloop-nats-notifier":   {"seed"},
	},
}

// TestOverlays is `make deploy-check`: every overlay skaffold deploys
// builds, decodes strictly and passes every check.
func TestOverlays(t *testing.T) {
	sk, err := ReadSkaffold(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.Check(root); err != nil {
		t.Error(err)
	}
	overlays := sk.Overlays()
	var paths []string
	for _, ps := range overlays {
		paths = append(paths, ps...)
	}
	slices.Sort(paths)
	if want := []string{"deploy/k8s/overlays/dev", "deploy/k8s/overlays/prod"}; !slices.Equal(paths, want) {
		t.Errorf("skaffold deploys %v, want %v", paths, want)
	}
	for _, p := range paths {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			set, err := Build(filesys.MakeFsOnDisk(), filepath.Join(root, p))
			if err != nil {
				t.Fatal(err)
			}
			ext, ok := externalSecrets[name]
			if !ok {
				t.Fatalf("no external Secrets declared for overlay %s in this test", name)
			}
			err = Check(set, Options{
				Images:          sk.Images(),
				ExternalSecrets: ext,
				Templates:       filepath.Join(root, "deploy/examples/templates"),
			})
			if err != nil {
				t.Errorf("overlay %s:\n%v", name, err)
			}
		})
	}
}

// TestProdShape pins what the issue asks of prod beyond the generic checks.
func TestProdShape(t *testing.T) {
	set, err := Build(filesys.MakeFsOnDisk(), filepath.Join(root, "deploy/k8s/overlays/prod"))
	if err != nil {
		t.Fatal(err)
	}
	var natsNodes int32
	for _, st := range set.StatefulSets {
		if st.Name == "nats" {
			natsNodes = *st.Spec.Replicas
			if st.Spec.Template.Spec.Affinity == nil || st.Spec.Template.Spec.Affinity.PodAntiAffinity == nil ||
				len(st.Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
				t.Error("StatefulSet/nats: want required pod anti-affinity (one node per machine)")
			}
			if len(st.Spec.VolumeClaimTemplates) == 0 {
				t.Error("StatefulSet/nats: want JetStream on a PersistentVolumeClaim")
			}
		}
	}
	if natsNodes != 3 {
		t.Errorf("StatefulSet/nats has %d replicas, want 3", natsNodes)
	}
	conf := set.Generated("nats-config")
	if conf == nil {
		t.Fatal("no ConfigMap nats-config")
	}
	c := conf.Data["nats.conf"]
	if !strings.Contains(c, "sync_interval: always") {
		t.Error("nats.conf: want sync_interval: always (see README.md, Running on Kubernetes)")
	}
	if n := strings.Count(c, ".nats-headless:6222"); n != 3 {
		t.Errorf("nats.conf: %d cluster routes, want 3", n)
	}
	if got := set.Generated("feedloop-common").Data["NATS_STREAM_REPLICAS"]; got != "3" {
		t.Errorf("NATS_STREAM_REPLICAS = %q, want 3", got)
	}
	scaled := map[string]bool{}
	for _, so := range set.ScaledObjects {
		scaled[so.Spec.ScaleTargetRef.Name] = true
	}
	for _, s := range []string{"classifier", "router", "notifier"} {
		if !scaled[s] {
			t.Errorf("no KEDA ScaledObject scales %s on its consumer lag", s)
		}
	}
	if len(set.NetworkPolicies) == 0 {
		t.Error("prod has no NetworkPolicies")
	}
	// Intake authenticates submissions in prod (without the file it accepts
	// anyone, which only feedloop dev and the dev overlay may).
	keysFile := false
	for _, w := range set.Workloads() {
		for _, c := range w.Pod.Spec.Containers {
			for _, e := range c.Env {
				keysFile = keysFile || (c.Name == "intake" && e.Name == "INTAKE_API_KEYS_FILE" && e.Value != "")
			}
		}
	}
	if !keysFile {
		t.Error("intake in prod: want INTAKE_API_KEYS_FILE set (from the Secret feedloop-intake-keys)")
	}
}
