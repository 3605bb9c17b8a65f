// Package manifests builds the kustomize overlays of deploy/k8s with the
// kustomize library, decodes every object strictly into the Kubernetes API
// types, and checks what a cluster would only find out at run time: images
// skaffold does not build, missing ConfigMap files and keys, service
// environment that is missing, unknown or invalid. `make deploy-check` runs
// it over every overlay, offline.
package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Set is one built overlay, every object decoded into its API type.
type Set struct {
	Namespaces      []*corev1.Namespace
	ConfigMaps      []*corev1.ConfigMap
	Secrets         []*corev1.Secret
	Services        []*corev1.Service
	ServiceAccounts []*corev1.ServiceAccount
	Deployments     []*appsv1.Deployment
	StatefulSets    []*appsv1.StatefulSet
	PDBs            []*policyv1.PodDisruptionBudget
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	NetworkPolicies []*networkingv1.NetworkPolicy
	Ingresses       []*networkingv1.Ingress
	RBAC            []runtime.Object
	ScaledObjects   []*ScaledObject
}

// scheme knows every API type the manifests may use; anything else (a typo
// in a kind or apiVersion, an unplanned CRD) fails the decode.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strict fails on unknown and duplicate fields.
var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: false, Strict: true})

// kustomizeMu serialises kustomize runs: kyaml's openapi package fills and
// reads a package-global schema without a lock (kubernetes-sigs/kustomize
// #4824, #5805), which the race detector catches when tests build overlays in
// parallel.
var kustomizeMu sync.Mutex

// Build runs kustomize on dir (an overlay) in fsys and decodes the result.
// The options are kustomize's defaults, those of kubectl apply -k, Argo CD
// and Flux: the load restrictor refuses any file outside a kustomization's
// own directory (see Copies).
func Build(fsys filesys.FileSystem, dir string) (*Set, error) {
	opts := krusty.MakeDefaultOptions()
	if opts.LoadRestrictions != types.LoadRestrictionsRootOnly {
		return nil, fmt.Errorf("kustomize's default load restrictor is %v, not RootOnly: review Build", opts.LoadRestrictions)
	}
	kustomizeMu.Lock()
	rm, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	kustomizeMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	set := &Set{}
	var errs []string
	for _, r := range rm.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		if err := set.add(data); err != nil {
			errs = append(errs, fmt.Sprintf("%s %s: %v", r.GetKind(), r.GetName(), err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("decode %s:\n  %s", dir, strings.Join(errs, "\n  "))
	}
	return set, nil
}

func (s *Set) add(data []byte) error {
	var tm struct{ APIVersion, Kind string }
	if err := json.Unmarshal(data, &tm); err != nil {
		return err
	}
	if tm.APIVersion == scaledObjectAPIVersion && tm.Kind == "ScaledObject" {
		so := &ScaledObject{}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(so); err != nil {
			return fmt.Errorf("strict decode: %w", err)
		}
		s.ScaledObjects = append(s.ScaledObjects, so)
		return nil
	}
	obj, _, err := strict.Decode(data, nil, nil)
	if err != nil {
		return err
	}
	// Defaulting is not applied: the checks see what was written.
	switch o := obj.(type) {
	case *corev1.Namespace:
		s.Namespaces = append(s.Namespaces, o)
	case *corev1.ConfigMap:
		s.ConfigMaps = append(s.ConfigMaps, o)
	case *corev1.Secret:
		s.Secrets = append(s.Secrets, o)
	case *corev1.Service:
		s.Services = append(s.Services, o)
	case *corev1.ServiceAccount:
		s.ServiceAccounts = append(s.ServiceAccounts, o)
	case *appsv1.Deployment:
		s.Deployments = append(s.Deployments, o)
	case *appsv1.StatefulSet:
		s.StatefulSets = append(s.StatefulSets, o)
	case *policyv1.PodDisruptionBudget:
		s.PDBs = append(s.PDBs, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		s.HPAs = append(s.HPAs, o)
	case *networkingv1.NetworkPolicy:
		s.NetworkPolicies = append(s.NetworkPolicies, o)
	case *networkingv1.Ingress:
		s.Ingresses = append(s.Ingresses, o)
	case *rbacv1.Role, *rbacv1.RoleBinding:
		s.RBAC = append(s.RBAC, o)
	default:
		return fmt.Errorf("no check knows %T: add it to manifests.Set", obj)
	}
	return nil
}

// Workload is a Deployment or StatefulSet seen through its pod template.
type Workload struct {
	Kind, Name string
	Replicas   *int32
	Pod        *corev1.PodTemplateSpec
	// PVCs are the StatefulSet's volume claim templates, volumes too.
	PVCs []string
}

// Workloads returns every Deployment and StatefulSet.
func (s *Set) Workloads() []Workload {
	var out []Workload
	for _, d := range s.Deployments {
		out = append(out, Workload{Kind: "Deployment", Name: d.Name, Replicas: d.Spec.Replicas, Pod: &d.Spec.Template})
	}
	for _, st := range s.StatefulSets {
		w := Workload{Kind: "StatefulSet", Name: st.Name, Replicas: st.Spec.Replicas, Pod: &st.Spec.Template}
		for _, c := range st.Spec.VolumeClaimTemplates {
			w.PVCs = append(w.PVCs, c.Name)
		}
		out = append(out, w)
	}
	return out
}

// ConfigMap returns the ConfigMap called name, or nil.
func (s *Set) ConfigMap(name string) *corev1.ConfigMap {
	for _, c := range s.ConfigMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Generated returns the ConfigMap a generator called name made (kustomize
// appends a content hash), or nil.
func (s *Set) Generated(name string) *corev1.ConfigMap {
	for _, c := range s.ConfigMaps {
		if base, hash, ok := cutLast(c.Name, "-"); ok && base == name && len(hash) == 10 {
			return c
		}
	}
	return nil
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// Secret returns the Secret called name, or nil.
func (s *Set) Secret(name string) *corev1.Secret {
	for _, c := range s.Secrets {
		if c.Name == name {
			return c
		}
	}
	return nil
}
