package plan

import corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"

// claimSubPath is the directory of a RestoreSession's target a component
// is restored into. A PersistentVolumeClaim that takes more than one
// component (a StatefulSet's or a DaemonSet's Snapshot restored into one
// claim, as a verification does) gives each component the directory named
// after it, so that none overwrites another's files and each is compared
// with its own content manifest alone. Any other restore writes into the
// volume's root, where the data came from.
func claimSubPath(rs *corev1alpha1.RestoreSession, components []string, component string) string {
	t := rs.Spec.Target
	if t == nil || t.APIGroup != "" || t.Kind != "PersistentVolumeClaim" {
		return ""
	}
	distinct := map[string]bool{}
	for _, c := range components {
		distinct[c] = true
	}
	if len(distinct) < 2 {
		return ""
	}
	return component
}
