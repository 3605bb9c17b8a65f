package manifests

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// natsTriggerKeys are the metadata KEDA's nats-jetstream scaler needs.
var natsTriggerKeys = []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"}

// checkAutoscaling: every HPA and ScaledObject targets a Deployment of the
// set, no Deployment has two autoscalers, an autoscaled Deployment sets no
// replicas (each apply would reset them), and every JetStream trigger
// names a consumer the target service really has, read from a monitoring
// endpoint KEDA can resolve from its own namespace.
func checkAutoscaling(s *Set, errs *errList) {
	scalers := map[string][]string{}
	for _, h := range s.HPAs {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" {
			errs.add(fmt.Errorf("HorizontalPodAutoscaler/%s: targets a %s, want a Deployment", h.Name, ref.Kind))
		}
		scalers[ref.Name] = append(scalers[ref.Name], "HorizontalPodAutoscaler/"+h.Name)
	}
	for _, so := range s.ScaledObjects {
		where := "ScaledObject/" + so.Name
		ref := so.Spec.ScaleTargetRef
		if ref.Kind != "" && ref.Kind != "Deployment" {
			errs.add(fmt.Errorf("%s: targets a %s, want a Deployment", where, ref.Kind))
		}
		scalers[ref.Name] = append(scalers[ref.Name], where)
		svc, isService := services[ref.Name]
		for i, t := range so.Spec.Triggers {
			if t.Type != "nats-jetstream" {
				continue
			}
			tw := fmt.Sprintf("%s trigger %d", where, i)
			for _, k := range natsTriggerKeys {
				if t.Metadata[k] == "" {
					errs.add(fmt.Errorf("%s: metadata.%s is required", tw, k))
				}
			}
			if !isService || !slices.Contains(svc.consumers[t.Metadata["stream"]], t.Metadata["consumer"]) {
				errs.add(fmt.Errorf("%s: %s has no consumer %q on stream %q", tw, ref.Name, t.Metadata["consumer"], t.Metadata["stream"]))
			}
			checkMonitoringEndpoint(s, tw, so.Namespace, t.Metadata["natsServerMonitoringEndpoint"], errs)
		}
	}
	for name, by := range scalers {
		var target *int32
		found := false
		for _, d := range s.Deployments {
			if d.Name == name {
				found, target = true, d.Spec.Replicas
			}
		}
		switch {
		case !found:
			errs.add(fmt.Errorf("%s: targets Deployment %q, which is not in the manifests", by[0], name))
		case len(by) > 1:
			errs.add(fmt.Errorf("Deployment/%s: scaled by %s: two autoscalers fight", name, strings.Join(by, " and ")))
		case target != nil:
			errs.add(fmt.Errorf("Deployment/%s: sets replicas but %s owns them: every apply would reset the count", name, by[0]))
		}
	}
}

// checkMonitoringEndpoint: KEDA runs in its own namespace, so the endpoint
// must be <service>.<namespace>.svc... of a Service with that port.
func checkMonitoringEndpoint(s *Set, where, ns, ep string, errs *errList) {
	host, port, ok := strings.Cut(ep, ":")
	parts := strings.Split(host, ".")
	if !ok || len(parts) < 3 || parts[1] != ns || parts[2] != "svc" {
		errs.add(fmt.Errorf("%s: natsServerMonitoringEndpoint %q must be <service>.%s.svc[.cluster.local]:<port>: KEDA resolves it from its own namespace", where, ep, ns))
		return
	}
	for _, svc := range s.Services {
		if svc.Name != parts[0] {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if fmt.Sprint(p.Port) == port {
				return
			}
		}
	}
	errs.add(fmt.Errorf("%s: natsServerMonitoringEndpoint %q: no Service %s with port %s", where, ep, parts[0], port))
}

func metaSelector(ls *metav1.LabelSelector) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(ls)
}
