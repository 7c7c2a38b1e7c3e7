package backupverificationsession

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/agentapi"
)

// A Snapshot of a StatefulSet or a DaemonSet has one component per pod or
// node. The session's RestoreSession restores every one of them into the
// scratch claim, each into its own directory named after it (the restore
// plan's subPath), and each component's agent compares only that
// directory with that component's content manifest. These checks hold the
// verdict to that: Verified only when every component of the Snapshot was
// restored and matched.

// everyComponent turns a successful restore into a failure when a
// component the Snapshot recorded was not restored and checked, so that a
// restore that skipped a component never verifies the Snapshot, and into
// a verdict-less outcome (ContentNotChecked) when a restored component
// that holds data compared no file with its content manifest: the agent
// then found no manifest, or one of another restic snapshot, and nothing
// supports Verified. Any other verdict is returned as it is.
func everyComponent(v verdict, snap *storagev1alpha1.Snapshot, rs *corev1alpha1.RestoreSession) verdict {
	if !v.final || !v.verified || snap == nil {
		return v
	}
	var unrestored, uncompared []string
	for _, name := range slices.Sorted(maps.Keys(snap.Status.Components)) {
		c, planned := rs.Status.Components[name]
		switch {
		case name == storagev1alpha1.ComponentManifest && !planned:
			// The verifier's addon has no task that restores resource
			// manifests: the verifier's setup, not the backup, is at
			// fault.
			return verdict{final: true, runnable: true, noVerdict: corev1alpha1.ReasonContentNotChecked,
				message: fmt.Sprintf("snapshot %q holds resource manifests (component %q), and addon %q has no task that restores them, so they were not checked and the snapshot is not verified; verify with an addon that has a manifest-restore task (workload-addon, pvc-addon)",
					snap.Name, name, rs.Spec.Addon.Name)}
		case c.Phase != corev1alpha1.RestoreSucceeded:
			unrestored = append(unrestored, name)
		case c.FilesChecked == 0 && (holdsData(snap.Status.Components[name]) || c.FilesRestored > 0 || c.BytesRestored > 0):
			uncompared = append(uncompared, name)
		}
	}
	switch {
	case len(unrestored) > 0:
		return verdict{final: true, runnable: true, message: fmt.Sprintf("restoresession %q did not restore and check component(s) %s of snapshot %q",
			rs.Name, quoteAll(unrestored), snap.Name)}
	case len(uncompared) > 0:
		return verdict{final: true, runnable: true, noVerdict: corev1alpha1.ReasonContentNotChecked,
			message: fmt.Sprintf("component(s) %s of snapshot %q were restored but no file was compared with a content manifest: "+
				"the manifest is missing from the repository or belongs to another restic snapshot, so the snapshot is not verified",
				quoteAll(uncompared), snap.Name)}
	}
	return v
}

// holdsData says whether a Snapshot's component recorded any data.
func holdsData(c storagev1alpha1.Component) bool {
	if n, err := storagev1alpha1.ParseSize(c.Size); err == nil && n > 0 {
		return true
	}
	for _, st := range c.ResticStats {
		if st.Summary == nil {
			continue
		}
		if n, err := storagev1alpha1.ParseSize(st.Summary.Size); err == nil && n > 0 {
			return true
		}
	}
	return false
}

// componentsChecked says, for a restore of more than one component, what
// each one restored and compared, in name order: `"dump-pod-0": 40 files,
// 1234 bytes; ...`. It is empty for one component, whose numbers are the
// session's.
func componentsChecked(rs *corev1alpha1.RestoreSession) string {
	if len(rs.Status.Components) < 2 {
		return ""
	}
	parts := make([]string, 0, len(rs.Status.Components))
	for _, name := range slices.Sorted(maps.Keys(rs.Status.Components)) {
		c := rs.Status.Components[name]
		parts = append(parts, fmt.Sprintf("%q: %d files, %d bytes", name, c.FilesChecked, c.BytesRestored))
	}
	return strings.Join(parts, "; ")
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// setupFault turns a failed restore into a verdict-less outcome
// (VerificationSetupFailed) when a component failed for a reason that
// blames the restore's settings or target (agentapi.SetupReasons), so that a
// misconfigured verifier never marks a good backup VerificationFailed.
func setupFault(v verdict, rs *corev1alpha1.RestoreSession) verdict {
	if !v.final || v.verified || !v.runnable {
		return v
	}
	for _, name := range slices.Sorted(maps.Keys(rs.Status.Components)) {
		c := rs.Status.Components[name]
		reason, _, _ := strings.Cut(c.Error, ":")
		if c.Phase == corev1alpha1.RestoreFailed && slices.Contains(agentapi.SetupReasons, reason) {
			return verdict{final: true, runnable: true, noVerdict: corev1alpha1.ReasonVerificationSetupFailed,
				message: fmt.Sprintf("the verifier's restore of component %q failed for its own settings, not for the backup, which keeps its verdict: %s; "+
					"fix the BackupVerifier's restoreOption (paths, include patterns, addon task, target size)", name, c.Error)}
		}
	}
	return v
}
