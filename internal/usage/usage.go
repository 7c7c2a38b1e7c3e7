// Package usage decides whether a namespace may use an object that another
// namespace owns (a BackupStorage, a RetentionPolicy, a HookTemplate), by
// the object's usagePolicy.
package usage

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/cachestore"
)

// Allowed says whether namespace user may use an object in namespace owner
// under policy; when it may not, the reason says why in words a user can
// act on. With no policy only the owner's namespace may.
func Allowed(ctx context.Context, c client.Reader, policy *storagev1alpha1.UsagePolicy, owner, user string) (bool, string, error) {
	from := storagev1alpha1.NamespacesFromSame
	var selector *metav1.LabelSelector
	if policy != nil && policy.AllowedNamespaces.From != nil {
		from, selector = *policy.AllowedNamespaces.From, policy.AllowedNamespaces.Selector
	}
	switch from {
	case storagev1alpha1.NamespacesFromAll:
		return true, "", nil
	case storagev1alpha1.NamespacesFromSame:
		if user == owner {
			return true, "", nil
		}
		return false, fmt.Sprintf("its usagePolicy allows only namespace %q", owner), nil
	case storagev1alpha1.NamespacesFromSelector:
		if user == owner {
			return true, "", nil
		}
		sel, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil || selector == nil {
			return false, "its usagePolicy selector is invalid", nil
		}
		// Its labels are all that is read: the cache holds Namespaces as
		// metadata.
		ns := cachestore.Metadata(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := c.Get(ctx, client.ObjectKey{Name: user}, ns); err != nil {
			return false, "", fmt.Errorf("cannot get namespace %q: %w", user, err)
		}
		if sel.Matches(labels.Set(ns.Labels)) {
			return true, "", nil
		}
		return false, fmt.Sprintf("its usagePolicy selector does not match namespace %q", user), nil
	}
	return false, fmt.Sprintf("its usagePolicy has unknown from %q", from), nil
}
