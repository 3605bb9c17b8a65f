package manifests

import (
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// peer is one end of a connection as NetworkPolicy sees it.
type peer struct {
	namespace string
	labels    map[string]string
}

// allowed evaluates the set's NetworkPolicies for a TCP connection from
// one pod to another's port (number and name) as an enforcing CNI does:
// both the sender's egress and the receiver's ingress must admit it, and
// a pod no policy of that direction selects is open. ipBlock peers stand
// for addresses outside the cluster.
func allowed(s *Set, ns string, from, to peer, port int32, portName string) bool {
	dir := func(self, other peer, typ networkingv1.PolicyType) bool {
		selected, ok := false, false
		for _, np := range s.NetworkPolicies {
			if np.Namespace != self.namespace {
				continue
			}
			sel, err := metaSelector(&np.Spec.PodSelector)
			if err != nil || !sel.Matches(labels.Set(self.labels)) || !hasType(np, typ) {
				continue
			}
			selected = true
			var rules [][]networkingv1.NetworkPolicyPeer
			var ports [][]networkingv1.NetworkPolicyPort
			if typ == networkingv1.PolicyTypeIngress {
				for _, r := range np.Spec.Ingress {
					rules, ports = append(rules, r.From), append(ports, r.Ports)
				}
			} else {
				for _, r := range np.Spec.Egress {
					rules, ports = append(rules, r.To), append(ports, r.Ports)
				}
			}
			for i := range rules {
				ok = ok || (peersMatch(rules[i], np.Namespace, other) && portsMatch(ports[i], port, portName))
			}
		}
		return !selected || ok
	}
	return dir(from, to, networkingv1.PolicyTypeEgress) && dir(to, from, networkingv1.PolicyTypeIngress)
}

func hasType(np *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	for _, pt := range np.Spec.PolicyTypes {
		if pt == t {
			return true
		}
	}
	return false
}

func peersMatch(peers []networkingv1.NetworkPolicyPeer, policyNS string, p peer) bool {
	if len(peers) == 0 {
		return true
	}
	for _, pr := range peers {
		if pr.IPBlock != nil {
			continue
		}
		nsOK := p.namespace == policyNS
		if pr.NamespaceSelector != nil {
			sel, err := metaSelector(pr.NamespaceSelector)
			nsOK = err == nil && sel.Matches(labels.Set{"kubernetes.io/metadata.name": p.namespace})
		}
		podOK := true
		if pr.PodSelector != nil {
			sel, err := metaSelector(pr.PodSelector)
			podOK = err == nil && sel.Matches(labels.Set(p.labels))
		}
		if nsOK && podOK {
			return true
		}
	}
	return false
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, port int32, name string) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil || p.Port.String() == name || p.Port.String() == strconv.Itoa(int(port)) {
			return true
		}
	}
	return false
}

// TestConsoleNetworkPolicy: in prod the console reaches the router's team
// API and nothing of NATS or Redis, and only the ingress controller
// reaches its HTTP port.
func TestConsoleNetworkPolicy(t *testing.T) {
	set, err := Build(filesys.MakeFsOnDisk(), filepath.Join(root, "deploy/k8s/overlays/prod"))
	if err != nil {
		t.Fatal(err)
	}
	podLabels := func(name string) peer {
		for _, w := range set.Workloads() {
			if w.Name == name {
				return peer{"feedloop", w.Pod.Labels}
			}
		}
		t.Fatalf("no workload %s", name)
		return peer{}
	}
	console, router := podLabels("console"), podLabels("router")
	ingress := peer{"ingress-nginx", map[string]string{"app.kubernetes.io/name": "ingress-nginx"}}
	cases := []struct {
		what     string
		from, to peer
		port     int32
		name     string
		want     bool
	}{
		{"console → router team API", console, router, 7003, "grpc", true},
		{"console → router status pages", console, router, 7004, "http", false},
		{"console → NATS", console, podLabels("nats"), 4222, "client", false},
		{"console → Redis", console, podLabels("redis"), 6379, "redis", false},
		{"console → collector", console, podLabels("otel-collector"), 4317, "otlp-grpc", true},
		{"ingress controller → console", ingress, console, 7006, "http", true},
		{"router → console", router, console, 7006, "http", false},
		{"ingress controller → console metrics", ingress, console, 9464, "metrics", false},
		{"Prometheus → console metrics", podLabels("prometheus"), console, 9464, "metrics", true},
	}
	for _, c := range cases {
		if got := allowed(set, "feedloop", c.from, c.to, c.port, c.name); got != c.want {
			t.Errorf("%s: allowed = %v, want %v", c.what, got, c.want)
		}
	}
	// The console needs no NATS user: the NATS policy must not admit it
	// as a service either.
	if console.labels["app.kubernetes.io/component"] == "service" {
		t.Error("console pods are labelled component=service, which the NATS and Redis policies admit")
	}
}

// TestConsoleOIDCComponent: prod with single sign-on (the component
// console-oidc) builds, passes every check and opens HTTPS egress for the
// console only.
func TestConsoleOIDCComponent(t *testing.T) {
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
	b = []byte(strings.Replace(string(b), "  - ../../components/networkpolicies\n", "  - ../../components/networkpolicies\n  - ../../components/console-oidc\n", 1))
	if err := fsys.WriteFile(path, b); err != nil {
		t.Fatal(err)
	}
	set, err := Build(fsys, "/repo/deploy/k8s/overlays/prod")
	if err != nil {
		t.Fatal(err)
	}
	// The component mounts the Secret the operator creates for it.
	ext := maps.Clone(externalSecrets["prod"])
	ext["feedloop-console-oidc"] = []string{"client-secret", "team-tokens.yaml"}
	if err := Check(set, Options{Images: sk.Images(), ExternalSecrets: ext}); err != nil {
		t.Fatal(err)
	}
	// Single sign-on is on: the console's configuration has every
	// required CONSOLE_OIDC_* variable (Check validated it with
	// console.Config and found the files mounted).
	var cm *corev1.ConfigMap
	var files []string
	for _, d := range set.Deployments {
		if d.Name == "console" {
			for _, ef := range d.Spec.Template.Spec.Containers[0].EnvFrom {
				if ef.ConfigMapRef != nil && strings.HasPrefix(ef.ConfigMapRef.Name, "feedloop-console") {
					cm = set.ConfigMap(ef.ConfigMapRef.Name) // the generated, hashed name
				}
			}
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				if strings.HasPrefix(e.Name, "CONSOLE_OIDC_") {
					files = append(files, e.Name)
				}
			}
		}
	}
	if cm == nil || cm.Data["CONSOLE_OIDC_ISSUER"] == "" || cm.Data["CONSOLE_OIDC_CLIENT_ID"] == "" ||
		!slices.Equal(files, []string{"CONSOLE_OIDC_CLIENT_SECRET_FILE", "CONSOLE_OIDC_TEAM_TOKENS_FILE"}) {
		t.Errorf("single sign-on not configured: ConfigMap feedloop-console %v, console env %v", cm, files)
	}
	var found bool
	for _, np := range set.NetworkPolicies {
		if np.Name != "console-oidc-issuer" {
			continue
		}
		found = true
		if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "console" {
			t.Errorf("console-oidc-issuer selects %v, want the console's pods only", np.Spec.PodSelector)
		}
		if len(np.Spec.Egress) != 1 || len(np.Spec.Egress[0].Ports) != 1 || np.Spec.Egress[0].Ports[0].Port.IntValue() != 443 {
			t.Errorf("console-oidc-issuer egress = %+v, want port 443 only", np.Spec.Egress)
		}
	}
	if !found {
		t.Error("no NetworkPolicy console-oidc-issuer")
	}
}
