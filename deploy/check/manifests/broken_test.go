package manifests

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestBrokenManifestsFail breaks the real manifests one way at a time, in
// memory, and expects the check to name what broke: a check that passes
// everything would pass TestOverlays too.
func TestBrokenManifestsFail(t *testing.T) {
	sk, err := ReadSkaffold(root)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, overlay, file, old, new, want string
	}{
		{"unknown field", "dev", "base/router.yaml",
			"          readinessProbe:", "          readinesProbe:",
			`unknown field "spec.template.spec.containers[0].readinesProbe"`},
		{"unknown kind", "dev", "base/router.yaml",
			"kind: PodDisruptionBudget", "kind: PodDisruptionBudgett",
			"PodDisruptionBudgett"},
		{"image skaffold does not build", "dev", "base/intake.yaml",
			"image: feedloop-intake", "image: feedloop-intak",
			`image "feedloop-intak" is not built by skaffold.yaml`},
		{"unpinned image", "dev", "components/redis/redis.yaml",
			"image: redis:8.2.2-alpine", "image: redis",
			`image "redis" must be pinned`},
		{"misspelt variable", "dev", "base/router.yaml",
			"name: ROUTER_ROUTES_FILE,", "name: ROUTER_ROUTE_FILE,",
			"ROUTER_ROUTE_FILE is not a variable router reads"},
		{"required variable missing", "dev", "base/router.yaml",
			"            - {name: ROUTER_TEAM_TOKENS_FILE, value: /etc/feedloop/tokens/team-tokens.yaml}\n", "",
			"ROUTER_TEAM_TOKENS_FILE must be set"},
		{"invalid value", "dev", "overlays/dev/kustomization.yaml",
			"NATS_STREAM_REPLICAS=1", "NATS_STREAM_REPLICAS=2",
			"NATS_STREAM_REPLICAS: must be 1, 3 or 5"},
		{"file not mounted", "dev", "base/classifier.yaml",
			"value: /etc/feedloop/rules/rules.yaml", "value: /etc/feedloop/rules.yaml",
			"CLASSIFIER_RULES_FILE=/etc/feedloop/rules.yaml is not a file of any mounted ConfigMap"},
		{"template missing from the pod", "dev", "base/notifier.yaml",
			"                    - {key: survey.txt.tmpl, path: de/survey.txt.tmpl}\n", "",
			"lacks de/survey.txt.tmpl"},
		{"ConfigMap key missing", "dev", "base/kustomization.yaml",
			"      - examples/templates/fr/survey.txt.tmpl\n", "",
			`"feedloop-notifier-templates-fr`},
		// As `kubectl apply -k` would: a file outside the kustomization's
		// root (which this in-memory repository holds) is refused.
		{"file outside the kustomization", "dev", "base/kustomization.yaml",
			"      - examples/rules.yaml\n", "      - ../../examples/rules.yaml\n",
			"is not in or below"},
		{"console's team API on no Service port", "dev", "base/console.yaml",
			`value: "router:7003"`, `value: "router:7009"`,
			"CONSOLE_TEAM_API_ADDR=grpc://router:7009: Service/router has no port 7009"},
		{"console without its session key", "dev", "base/console.yaml",
			"            - {name: CONSOLE_SESSION_KEY_FILE, value: /etc/feedloop/console/session-key}\n", "",
			"CONSOLE_SESSION_KEY_FILE must be set"},
		{"console previews without a template", "dev", "base/console.yaml",
			"                    - {key: survey.txt.tmpl, path: fr/survey.txt.tmpl}\n", "",
			"CONSOLE_TEMPLATES_DIR=/etc/feedloop/templates lacks fr/survey.txt.tmpl"},
		{"Ingress host without TLS", "prod", "overlays/prod/console-ingress.yaml",
			"    - hosts: [console.acme.example]", "    - hosts: [www.acme.example]",
			`host "console.acme.example" is served without TLS`},
		{"Ingress to no Service port", "prod", "overlays/prod/console-ingress.yaml",
			"port: {name: http}", "port: {name: https}",
			"backend console port https is no port"},
		{"NATS URL to no Service", "dev", "base/kustomization.yaml",
			"NATS_URL=nats://nats:4222", "NATS_URL=nats://nats-client:4222",
			`no Service "nats-client"`},
		{"R1 streams on a cluster", "prod", "components/nats-cluster/kustomization.yaml",
			"      - NATS_STREAM_REPLICAS=3", "      - NATS_STREAM_REPLICAS=1",
			"NATS_STREAM_REPLICAS=1 on a 3-node NATS cluster"},
		{"KEDA consumer that does not exist", "prod", "components/autoscaling-keda/scaledobjects.yaml",
			"consumer: router-projector", "consumer: router-projecter",
			`router has no consumer "router-projecter"`},
		{"KEDA field misspelt", "prod", "components/autoscaling-keda/scaledobjects.yaml",
			"maxReplicaCount: 12", "maxReplicas: 12",
			`unknown field "maxReplicas"`},
		{"two autoscalers", "prod", "components/autoscaling-keda/kustomization.yaml",
			"  - intake-hpa.yaml", "  - intake-hpa.yaml\n  - consumers-hpa.yaml",
			"two autoscalers fight"},
		{"autoscaled Deployment with replicas", "prod", "overlays/prod/kustomization.yaml",
			"        path: /spec/replicas", "        path: /spec/revisionHistoryLimit",
			"sets replicas but"},
		{"Secret neither built nor external", "prod", "overlays/prod/notifier.yaml",
			"{name: feedloop-notifier, key: webhook-secret}", "{name: notifier-secrets, key: webhook-secret}",
			`Secret "notifier-secrets" is neither in the manifests nor a declared external Secret`},
		{"writable root filesystem", "dev", "components/nats/nats.yaml",
			"readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false",
			"StatefulSet/nats container nats: securityContext.readOnlyRootFilesystem must be true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fsys := repoInMemory(t)
			if err := fsys.WriteFile("/repo/deploy/examples/rules.yaml", []byte("rules: []\n")); err != nil {
				t.Fatal(err)
			}
			// For "two autoscalers": the CPU HPAs inside the KEDA component.
			hpa, err := fsys.ReadFile("/repo/deploy/k8s/components/autoscaling-cpu/consumers-hpa.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if err := fsys.WriteFile("/repo/deploy/k8s/components/autoscaling-keda/consumers-hpa.yaml", hpa); err != nil {
				t.Fatal(err)
			}
			path := "/repo/deploy/k8s/" + tc.file
			b, err := fsys.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.old) {
				t.Fatalf("%s does not contain %q: update the test", tc.file, tc.old)
			}
			if err := fsys.WriteFile(path, []byte(strings.Replace(string(b), tc.old, tc.new, 1))); err != nil {
				t.Fatal(err)
			}
			set, err := Build(fsys, "/repo/deploy/k8s/overlays/"+tc.overlay)
			if err == nil {
				err = Check(set, Options{
					Images:          sk.Images(),
					ExternalSecrets: externalSecrets[tc.overlay],
					Templates:       filepath.Join(root, "deploy/examples/templates"),
				})
			}
			if err == nil {
				t.Fatalf("the check passed; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not mention %q:\n%v", tc.want, err)
			}
		})
	}
}

// repoInMemory copies deploy/k8s into an in-memory file system under /repo:
// the overlays need nothing else (TestOverlays builds them with the default
// load restrictor).
func repoInMemory(t *testing.T) filesys.FileSystem {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	for _, dir := range []string{"deploy/k8s"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			return fsys.WriteFile("/repo/"+filepath.ToSlash(rel), b)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return fsys
}

// TestCPUAutoscalingAlternative: prod without KEDA (autoscaling-cpu in
// place of autoscaling-keda) is a valid deployment too.
func TestCPUAutoscalingAlternative(t *testing.T) {
	sk, err := ReadSkaffold(root)
	if err != nil {
		t.Fatal(err)
	}
	fsys := repoInMemory(t)
	path := "/repo/deploy/k8s/overlays/prod/kustomization.yaml"
	b, err := fsys.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "  - ../../components/autoscaling-keda", "  - ../../components/autoscaling-cpu", 1))
	if err := fsys.WriteFile(path, b); err != nil {
		t.Fatal(err)
	}
	set, err := Build(fsys, "/repo/deploy/k8s/overlays/prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.ScaledObjects) != 0 || len(set.HPAs) != 4 {
		t.Fatalf("got %d ScaledObjects and %d HPAs, want 0 and 4", len(set.ScaledObjects), len(set.HPAs))
	}
	if err := Check(set, Options{Images: sk.Images(), ExternalSecrets: externalSecrets["prod"]}); err != nil {
		t.Fatal(err)
	}
}
