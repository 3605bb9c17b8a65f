package manifests

import (
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/feedloop/feedloop/services/classifier/rules"
	"github.com/feedloop/feedloop/services/router/routing"
)

// Options are what the checks compare the manifests with.
type Options struct {
	// Images are the images skaffold builds (its artifacts' image names).
	Images []string
	// ExternalSecrets are Secrets the operator creates beside the
	// manifests, with their keys; any other Secret must be in the build.
	ExternalSecrets map[string][]string
	// Templates is the notifier's template directory on disk
	// (deploy/examples/templates): the pod must see exactly these files.
	Templates string
}

// externalPlaceholder stands for an external Secret's value when a
// service's configuration is validated: long enough for a webhook secret.
const externalPlaceholder = "external-secret-value-placeholder"

// Check runs every check on s and returns them all failed, joined.
func Check(s *Set, o Options) error {
	var errs errList
	checkImages(s, o, &errs)
	checkHardening(s, &errs)
	checkServicesAndProbes(s, &errs)
	checkIngresses(s, &errs)
	for _, w := range s.Workloads() {
		files := podFiles(s, o, w, &errs)
		for _, c := range w.Pod.Spec.Containers {
			if svc, ok := services[c.Name]; ok && w.Kind == "Deployment" {
				checkServiceEnv(s, o, w, c, svc, files, &errs)
			}
		}
	}
	checkAutoscaling(s, &errs)
	return errs.join()
}

// --- images -----------------------------------------------------------------

var pinned = regexp.MustCompile(`^[^:@]+(:[^:@/]+|@sha256:[0-9a-f]{64})$`)

// checkImages: a feedloop image must be one skaffold builds (skaffold
// replaces the bare name with the built tag); any other image must be
// pinned to a version, never latest. Every skaffold image must be used.
func checkImages(s *Set, o Options, errs *errList) {
	used := map[string]bool{}
	for _, w := range s.Workloads() {
		for _, c := range allContainers(w.Pod) {
			where := fmt.Sprintf("%s/%s container %s", w.Kind, w.Name, c.Name)
			switch {
			case slices.Contains(o.Images, c.Image):
				used[c.Image] = true
			case strings.HasPrefix(c.Image, "feedloop"):
				errs.add(fmt.Errorf("%s: image %q is not built by skaffold.yaml (it builds %s)", where, c.Image, strings.Join(o.Images, ", ")))
			case !pinned.MatchString(c.Image) || strings.HasSuffix(c.Image, ":latest"):
				errs.add(fmt.Errorf("%s: image %q must be pinned to a version tag or digest", where, c.Image))
			}
		}
	}
	for _, img := range o.Images {
		if !used[img] {
			errs.add(fmt.Errorf("skaffold builds %q but no workload runs it", img))
		}
	}
}

func allContainers(p *corev1.PodTemplateSpec) []corev1.Container {
	return append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...)
}

// --- hardening --------------------------------------------------------------

// checkHardening: every container runs non-root on a read-only root
// filesystem without privilege escalation, with CPU and memory requests and
// a memory limit; every service Deployment has a PodDisruptionBudget.
func checkHardening(s *Set, errs *errList) {
	for _, w := range s.Workloads() {
		ps := w.Pod.Spec.SecurityContext
		podNonRoot := ps != nil && ps.RunAsNonRoot != nil && *ps.RunAsNonRoot
		for _, c := range allContainers(w.Pod) {
			where := fmt.Sprintf("%s/%s container %s", w.Kind, w.Name, c.Name)
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				errs.add(fmt.Errorf("%s: securityContext.readOnlyRootFilesystem must be true", where))
			}
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				errs.add(fmt.Errorf("%s: securityContext.allowPrivilegeEscalation must be false", where))
			}
			if !podNonRoot && (sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
				errs.add(fmt.Errorf("%s: must run as non-root (runAsNonRoot)", where))
			}
			r := c.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() {
				errs.add(fmt.Errorf("%s: resources.requests needs cpu and memory", where))
			}
			if r.Limits.Memory().IsZero() {
				errs.add(fmt.Errorf("%s: resources.limits needs memory", where))
			}
		}
	}
	for _, d := range s.Deployments {
		if _, ok := services[d.Name]; !ok {
			continue
		}
		found := false
		for _, p := range s.PDBs {
			if sel, err := metaSelector(p.Spec.Selector); err == nil && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				found = true
			}
		}
		if !found {
			errs.add(fmt.Errorf("Deployment/%s: no PodDisruptionBudget selects its pods", d.Name))
		}
	}
}

// --- services and probes ----------------------------------------------------

// checkServicesAndProbes: every Service selects some pods and its target
// ports exist on them; probes use declared ports.
func checkServicesAndProbes(s *Set, errs *errList) {
	for _, svc := range s.Services {
		var pods []Workload
		for _, w := range s.Workloads() {
			if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.Pod.Labels)) {
				pods = append(pods, w)
			}
		}
		if len(pods) == 0 {
			errs.add(fmt.Errorf("Service/%s: its selector %v matches no pod", svc.Name, svc.Spec.Selector))
			continue
		}
		for _, p := range svc.Spec.Ports {
			for _, w := range pods {
				if !hasPort(w.Pod, p.TargetPort.String()) {
					errs.add(fmt.Errorf("Service/%s port %s: %s/%s has no container port %s", svc.Name, p.Name, w.Kind, w.Name, p.TargetPort.String()))
				}
			}
		}
	}
	for _, w := range s.Workloads() {
		for _, c := range w.Pod.Spec.Containers {
			for kind, pr := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if pr == nil {
					continue
				}
				var port string
				switch {
				case pr.GRPC != nil:
					port = strconv.Itoa(int(pr.GRPC.Port))
				case pr.HTTPGet != nil:
					port = pr.HTTPGet.Port.String()
				case pr.TCPSocket != nil:
					port = pr.TCPSocket.Port.String()
				default:
					continue
				}
				if !hasPort(w.Pod, port) {
					errs.add(fmt.Errorf("%s/%s container %s: %s probe uses port %s, which no container declares", w.Kind, w.Name, c.Name, kind, port))
				}
			}
		}
	}
}

// checkIngresses: every Ingress serves TLS for each of its hosts and its
// backends are ports of Services of the set.
func checkIngresses(s *Set, errs *errList) {
	for _, in := range s.Ingresses {
		where := "Ingress/" + in.Name
		tlsHosts := map[string]bool{}
		for _, t := range in.Spec.TLS {
			if t.SecretName == "" {
				errs.add(fmt.Errorf("%s: a tls entry has no secretName", where))
			}
			for _, h := range t.Hosts {
				tlsHosts[h] = true
			}
		}
		var backends []*networkingv1.IngressServiceBackend
		if b := in.Spec.DefaultBackend; b != nil && b.Service != nil {
			backends = append(backends, b.Service)
		}
		for _, r := range in.Spec.Rules {
			if !tlsHosts[r.Host] {
				errs.add(fmt.Errorf("%s: host %q is served without TLS", where, r.Host))
			}
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				if p.Backend.Service != nil {
					backends = append(backends, p.Backend.Service)
				}
			}
		}
		for _, b := range backends {
			found := false
			for _, svc := range s.Services {
				if svc.Name != b.Name {
					continue
				}
				for _, p := range svc.Spec.Ports {
					found = found || (b.Port.Name != "" && p.Name == b.Port.Name) || (b.Port.Number != 0 && p.Port == b.Port.Number)
				}
			}
			if !found {
				port := b.Port.Name
				if port == "" {
					port = strconv.Itoa(int(b.Port.Number))
				}
				errs.add(fmt.Errorf("%s: backend %s port %s is no port of a Service of the manifests", where, b.Name, port))
			}
		}
	}
}

func hasPort(p *corev1.PodTemplateSpec, port string) bool {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == port || strconv.Itoa(int(cp.ContainerPort)) == port {
				return true
			}
		}
	}
	return false
}

// --- files ------------------------------------------------------------------

// podFiles lays out what a pod's containers see of its ConfigMap and Secret
// volumes: container name → path → content. Every referenced ConfigMap,
// Secret and key must exist (external Secrets' values are placeholders).
func podFiles(s *Set, o Options, w Workload, errs *errList) map[string]map[string]string {
	where := fmt.Sprintf("%s/%s", w.Kind, w.Name)
	vols := map[string]map[string]string{} // volume → relative path → content
	for _, v := range w.Pod.Spec.Volumes {
		files := map[string]string{}
		switch {
		case v.ConfigMap != nil:
			project(s, o, where, "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, files, errs)
		case v.Secret != nil:
			project(s, o, where, "Secret", v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, files, errs)
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil {
					project(s, o, where, "ConfigMap", src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, files, errs)
				}
				if src.Secret != nil {
					project(s, o, where, "Secret", src.Secret.Name, src.Secret.Items, src.Secret.Optional, files, errs)
				}
			}
		}
		vols[v.Name] = files
	}
	for _, pvc := range w.PVCs {
		vols[pvc] = map[string]string{}
	}
	out := map[string]map[string]string{}
	for _, c := range allContainers(w.Pod) {
		seen := map[string]string{}
		for _, m := range c.VolumeMounts {
			files, ok := vols[m.Name]
			if !ok {
				errs.add(fmt.Errorf("%s container %s: volumeMount %s names no volume", where, c.Name, m.Name))
				continue
			}
			for rel, content := range files {
				if m.SubPath != "" {
					if rel != m.SubPath {
						continue
					}
					rel = ""
				}
				seen[path.Join(m.MountPath, rel)] = content
			}
		}
		out[c.Name] = seen
	}
	return out
}

// project adds the keys of one ConfigMap or Secret to files, as the
// kubelet would (items pick and rename keys).
func project(s *Set, o Options, where, kind, name string, items []corev1.KeyToPath, optional *bool, files map[string]string, errs *errList) {
	data, ok := sourceData(s, o, kind, name)
	if !ok {
		if optional == nil || !*optional {
			errs.add(fmt.Errorf("%s: %s %q is neither in the manifests nor a declared external Secret", where, kind, name))
		}
		return
	}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = v
		}
		return
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			errs.add(fmt.Errorf("%s: %s %q has no key %q", where, kind, name, it.Key))
			continue
		}
		files[it.Path] = v
	}
}

// sourceData returns the keys of a ConfigMap or Secret of the set, or of a
// declared external Secret (placeholder values).
func sourceData(s *Set, o Options, kind, name string) (map[string]string, bool) {
	data := map[string]string{}
	switch kind {
	case "ConfigMap":
		cm := s.ConfigMap(name)
		if cm == nil {
			return nil, false
		}
		for k, v := range cm.Data {
			data[k] = v
		}
		for k, v := range cm.BinaryData {
			data[k] = string(v)
		}
	case "Secret":
		if sec := s.Secret(name); sec != nil {
			for k, v := range sec.Data {
				data[k] = string(v)
			}
			for k, v := range sec.StringData {
				data[k] = v
			}
		} else if keys, ok := o.ExternalSecrets[name]; ok {
			for _, k := range keys {
				data[k] = externalPlaceholder
			}
		} else {
			return nil, false
		}
	}
	return data, true
}

// --- service environment ----------------------------------------------------

// checkServiceEnv resolves a service container's environment as the
// kubelet would and checks it against the service: no unknown variable,
// every required one set, the configuration valid, every *_FILE and *_DIR
// path mounted, NATS and Redis URLs pointing at Services of the set, and
// the stream replicas matching the NATS cluster.
func checkServiceEnv(s *Set, o Options, w Workload, c corev1.Container, svc service, files map[string]map[string]string, errs *errList) {
	where := fmt.Sprintf("%s/%s container %s", w.Kind, w.Name, c.Name)
	envs := map[string]string{}
	for _, ef := range c.EnvFrom {
		kind, name, optional := "ConfigMap", "", (*bool)(nil)
		if ef.ConfigMapRef != nil {
			name, optional = ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional
		} else if ef.SecretRef != nil {
			kind, name, optional = "Secret", ef.SecretRef.Name, ef.SecretRef.Optional
		}
		data, ok := sourceData(s, o, kind, name)
		if !ok {
			if optional == nil || !*optional {
				errs.add(fmt.Errorf("%s: envFrom %s %q is neither in the manifests nor a declared external Secret", where, kind, name))
			}
			continue
		}
		for k, v := range data {
			envs[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			envs[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil || e.ValueFrom.SecretKeyRef != nil:
			kind, name, key, optional := "ConfigMap", "", "", (*bool)(nil)
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				name, key, optional = r.Name, r.Key, r.Optional
			} else {
				r := e.ValueFrom.SecretKeyRef
				kind, name, key, optional = "Secret", r.Name, r.Key, r.Optional
			}
			data, ok := sourceData(s, o, kind, name)
			if !ok {
				errs.add(fmt.Errorf("%s: env %s: %s %q is neither in the manifests nor a declared external Secret", where, e.Name, kind, name))
				continue
			}
			v, ok := data[key]
			if !ok && optional != nil && *optional {
				continue // the kubelet leaves the variable unset
			}
			if !ok {
				errs.add(fmt.Errorf("%s: env %s: %s %q has no key %q", where, e.Name, kind, name, key))
				continue
			}
			envs[e.Name] = v
		default:
			envs[e.Name] = "1" // field and resource references: set by the kubelet
		}
	}

	names := slices.Sorted(maps.Keys(envs))
	for _, k := range names {
		if !svc.vars[k] && !runtimeVar(k) {
			errs.add(fmt.Errorf("%s: %s is not a variable %s reads (typo? see README Configuration)", where, k, svc.name))
		}
	}
	for _, k := range svc.required {
		if _, ok := envs[k]; !ok {
			errs.add(fmt.Errorf("%s: %s must be set", where, k))
		}
	}
	if err := svc.validate(envs); err != nil {
		errs.add(fmt.Errorf("%s: %s rejects its configuration: %w", where, svc.name, err))
	}

	mounted := files[c.Name]
	for _, k := range names {
		v := envs[k]
		switch {
		case strings.HasSuffix(k, "_FILE") && v != "":
			content, ok := mounted[v]
			if !ok {
				errs.add(fmt.Errorf("%s: %s=%s is not a file of any mounted ConfigMap or Secret", where, k, v))
				continue
			}
			checkContent(where, k, v, content, errs)
		case strings.HasSuffix(k, "_DIR") && v != "":
			if !hasDir(mounted, v) {
				errs.add(fmt.Errorf("%s: %s=%s is not a directory of any mounted ConfigMap or Secret", where, k, v))
			} else if (k == "NOTIFIER_TEMPLATES_DIR" || k == "CONSOLE_TEMPLATES_DIR") && o.Templates != "" {
				checkTree(where, k, v, mounted, o.Templates, errs)
			}
		}
	}
	checkEndpoints(s, where, envs, errs)
}

func hasDir(files map[string]string, dir string) bool {
	for p := range files {
		if strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") {
			return true
		}
	}
	return false
}

// checkContent parses the files whose format this module can read with the
// services' own parsers: what the pod gets must load.
func checkContent(where, k, p, content string, errs *errList) {
	var err error
	switch k {
	case "CLASSIFIER_RULES_FILE":
		_, err = rules.Parse([]byte(content))
	case "ROUTER_ROUTES_FILE":
		_, err = routing.Parse([]byte(content))
	}
	if err != nil {
		errs.add(fmt.Errorf("%s: %s=%s does not load: %w", where, k, p, err))
	}
}

// checkTree: the files under dir in the pod are exactly those under local.
func checkTree(where, k, dir string, mounted map[string]string, local string, errs *errList) {
	want := map[string]string{}
	err := filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(local, p)
		want[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		errs.add(fmt.Errorf("%s: %s: read %s: %w", where, k, local, err))
		return
	}
	got := map[string]string{}
	for p, c := range mounted {
		if rel, ok := strings.CutPrefix(p, strings.TrimSuffix(dir, "/")+"/"); ok {
			got[rel] = c
		}
	}
	var missing, extra, differ []string
	for rel, c := range want {
		g, ok := got[rel]
		switch {
		case !ok:
			missing = append(missing, rel)
		case g != c:
			differ = append(differ, rel)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			extra = append(extra, rel)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(differ)
	if len(missing) > 0 {
		errs.add(fmt.Errorf("%s: %s=%s lacks %s of %s (add them to the ConfigMaps and the projected volume)", where, k, dir, strings.Join(missing, ", "), local))
	}
	if len(extra) > 0 {
		errs.add(fmt.Errorf("%s: %s=%s has %s, which %s does not", where, k, dir, strings.Join(extra, ", "), local))
	}
	if len(differ) > 0 {
		errs.add(fmt.Errorf("%s: %s=%s: %s differ from %s", where, k, dir, strings.Join(differ, ", "), local))
	}
}

// checkEndpoints: NATS_URL, REDIS_URL and the console's team API address
// name Services of the set on the right ports, and NATS_STREAM_REPLICAS matches the NATS StatefulSet.
func checkEndpoints(s *Set, where string, envs map[string]string, errs *errList) {
	for _, u := range strings.Split(envs["NATS_URL"], ",") {
		checkServiceURL(s, where, "NATS_URL", u, errs)
	}
	checkServiceURL(s, where, "REDIS_URL", envs["REDIS_URL"], errs)
	if a := envs["CONSOLE_TEAM_API_ADDR"]; a != "" {
		checkServiceURL(s, where, "CONSOLE_TEAM_API_ADDR", "grpc://"+a, errs)
	}
	want, err := strconv.Atoi(envs["NATS_STREAM_REPLICAS"])
	if err != nil {
		return // reported by the service's validation
	}
	for _, st := range s.StatefulSets {
		if st.Name != "nats" {
			continue
		}
		n := int32(1)
		if st.Spec.Replicas != nil {
			n = *st.Spec.Replicas
		}
		if int(n) < want {
			errs.add(fmt.Errorf("%s: NATS_STREAM_REPLICAS=%d but StatefulSet/nats has %d node(s): the streams cannot be created", where, want, n))
		}
		if n > 1 && want == 1 {
			errs.add(fmt.Errorf("%s: NATS_STREAM_REPLICAS=1 on a %d-node NATS cluster: one node's loss loses the streams", where, n))
		}
	}
}

func checkServiceURL(s *Set, where, k, raw string, errs *errList) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return // reported by the service's validation
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		errs.add(fmt.Errorf("%s: %s=%s needs a port", where, k, raw))
		return
	}
	name, _, _ := strings.Cut(host, ".")
	for _, svc := range s.Services {
		if svc.Name != name {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if strconv.Itoa(int(p.Port)) == port {
				return
			}
		}
		errs.add(fmt.Errorf("%s: %s=%s: Service/%s has no port %s", where, k, raw, name, port))
		return
	}
	errs.add(fmt.Errorf("%s: %s=%s: no Service %q in the manifests", where, k, raw, name))
}
