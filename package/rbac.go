package stashpkg

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ProviderClusterRoleName names the ClusterRole in rbac/provider.yaml.
const ProviderClusterRoleName = "stashplane-provider"

//go:embed rbac/provider.yaml
var providerRBAC []byte

// MetricsReaderClusterRoleName names the ClusterRole in rbac/provider.yaml
// a scraper of the provider's metrics endpoint is bound to.
const MetricsReaderClusterRoleName = "stashplane-metrics-reader"

// ProviderRules returns the rules of the stashplane-provider ClusterRole
// in rbac/provider.yaml: what the provider may do beyond what Crossplane's
// RBAC manager grants it.
func ProviderRules() ([]rbacv1.PolicyRule, error) {
	return clusterRoleRules(ProviderClusterRoleName)
}

// MetricsReaderRules returns the rules of the stashplane-metrics-reader
// ClusterRole in rbac/provider.yaml: get on /metrics.
func MetricsReaderRules() ([]rbacv1.PolicyRule, error) {
	return clusterRoleRules(MetricsReaderClusterRoleName)
}

// clusterRoleRules returns the rules of the ClusterRole name in
// rbac/provider.yaml.
func clusterRoleRules(name string) ([]rbacv1.PolicyRule, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(providerRBAC)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("cannot find ClusterRole %q in rbac/provider.yaml", name)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read rbac/provider.yaml: %w", err)
		}
		tm := &metav1.TypeMeta{}
		if err := yaml.Unmarshal(doc, tm); err != nil {
			return nil, fmt.Errorf("cannot read kind: %w", err)
		}
		if tm.Kind != "ClusterRole" {
			continue
		}
		cr := &rbacv1.ClusterRole{}
		if err := yaml.UnmarshalStrict(doc, cr); err != nil {
			return nil, fmt.Errorf("cannot decode ClusterRole: %w", err)
		}
		if cr.Name == name {
			return cr.Rules, nil
		}
	}
}

// SystemRules returns the rules Crossplane's RBAC manager puts in the
// "system" ClusterRole of a provider whose package holds crds: read and
// write, but not delete, each kind and its status; update the finalizers
// of the package's groups; anything on Secrets, ConfigMaps, Events and
// Leases.
func SystemRules(crds []*apiextensionsv1.CustomResourceDefinition) []rbacv1.PolicyRule {
	byGroup := map[string][]string{}
	for _, c := range crds {
		g := c.Spec.Group
		byGroup[g] = append(byGroup[g], c.Spec.Names.Plural, c.Spec.Names.Plural+"/status")
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	out := make([]rbacv1.PolicyRule, 0, len(groups)+2)
	for _, g := range groups {
		rs := byGroup[g]
		sort.Strings(rs)
		out = append(out, rbacv1.PolicyRule{
			APIGroups: []string{g},
			Resources: rs,
			Verbs:     []string{"get", "list", "watch", "update", "patch", "create"},
		})
	}
	return append(out,
		rbacv1.PolicyRule{APIGroups: groups, Resources: []string{"*/finalizers"}, Verbs: []string{"update"}},
		rbacv1.PolicyRule{
			APIGroups: []string{"", "coordination.k8s.io"},
			Resources: []string{"secrets", "configmaps", "events", "leases"},
			Verbs:     []string{"*"},
		},
	)
}

// Rules returns everything the provider may do once installed as the
// package says: SystemRules for the package's CRDs and ProviderRules.
func Rules() ([]rbacv1.PolicyRule, error) {
	crds, err := CRDs()
	if err != nil {
		return nil, err
	}
	extra, err := ProviderRules()
	if err != nil {
		return nil, err
	}
	return append(SystemRules(crds), extra...), nil
}

// Allows reports whether rules let their subject do verb on resource (a
// plural, or plural/subresource) of group in every namespace. Rules
// limited to resourceNames do not count.
func Allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if len(r.ResourceNames) > 0 {
			continue
		}
		if matches(r.APIGroups, group) && matchesResource(r.Resources, resource) && matches(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// matchesResource also lets "*/finalizers" match every finalizers
// subresource, as the API server does.
func matchesResource(list []string, resource string) bool {
	if matches(list, resource) {
		return true
	}
	_, sub, ok := strings.Cut(resource, "/")
	return ok && slices.Contains(list, rbacv1.ResourceAll+"/"+sub)
}

func matches(list []string, s string) bool {
	return slices.Contains(list, s) || slices.Contains(list, rbacv1.ResourceAll)
}

// ProviderRBAC returns rbac/provider.yaml: the provider's ClusterRoles, its
// binding and the DeploymentRuntimeConfig naming its ServiceAccount.
func ProviderRBAC() []byte {
	return slices.Clone(providerRBAC)
}
