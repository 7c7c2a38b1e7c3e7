// Package tenancy decides what a namespace's Jobs may hold. It composes
// the identities Stashplane's pods run as (a ServiceAccount with a Role of
// exactly the rules it is given, bound in one namespace), checks that a
// namespace may use a BackupStorage of another (remote.go), copies that
// storage's Secret and prunes the copies and grants no longer needed, and
// keeps the admission policy that reserves Snapshots' verdicts to the
// provider (verdicts.go).
package tenancy

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// ApplyOwned makes owner the controller of o and applies o server-side as
// fieldOwner, so that o goes when owner does.
func ApplyOwned(ctx context.Context, kube client.Client, owner, o client.Object, fieldOwner client.FieldOwner) error {
	kind := o.GetObjectKind().GroupVersionKind().Kind
	if err := controllerutil.SetControllerReference(owner, o, kube.Scheme()); err != nil {
		return fmt.Errorf("cannot own %s %q: %w", kind, o.GetName(), err)
	}
	if err := kube.Patch(ctx, o, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("cannot apply %s %q: %w", kind, o.GetName(), err)
	}
	return nil
}

// Objects returns a ServiceAccount, a Role holding rules and the
// RoleBinding between them, all named name in namespace ns, ready for
// server-side apply. The RoleBinding binds too the ServiceAccounts of ns
// named also: those a user's jobTemplate runs the Jobs as.
func Objects(name, ns string, labels map[string]string, rules []rbacv1.PolicyRule, also ...string) []client.Object {
	sa := &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
	}
	return append([]client.Object{sa}, Grant(name, ns, labels, rules, ServiceAccounts(ns, append([]string{name}, also...)...)...)...)
}

// ServiceAccounts are the subjects of the ServiceAccounts of namespace ns
// with the given names, each once, empty names left out, in order.
func ServiceAccounts(ns string, names ...string) []rbacv1.Subject {
	var out []rbacv1.Subject
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: n, Namespace: ns})
	}
	return out
}

// Grant returns a Role holding rules and a RoleBinding of it to the
// subjects, both named name in namespace ns, ready for server-side apply.
// A subject may be an account of another namespace.
func Grant(name, ns string, labels map[string]string, rules []rbacv1.PolicyRule, subjects ...rbacv1.Subject) []client.Object {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	}
	return []client.Object{
		&rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "Role"}, ObjectMeta: meta(), Rules: rules},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
			ObjectMeta: meta(),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects:   subjects,
		},
	}
}
