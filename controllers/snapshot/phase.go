package snapshot

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// summary is what a Snapshot's status says of its components as a whole.
type summary struct {
	phase     storagev1alpha1.SnapshotPhase
	size      string
	integrity *bool
}

// summarize derives a Snapshot's phase, size and integrity from its
// conditions and components: Failed if the metadata upload failed or the
// backup is incomplete; Pending with no components; otherwise Failed if any
// component failed, Running until every expected component succeeded.
func summarize(s *storagev1alpha1.Snapshot) summary {
	var total int64
	integrity := len(s.Status.Components) > 0
	var failed, succeeded int
	for _, c := range s.Status.Components {
		switch c.Phase {
		case storagev1alpha1.ComponentFailed:
			failed++
		case storagev1alpha1.ComponentSucceeded:
			succeeded++
		}
		if n, err := storagev1alpha1.ParseSize(c.Size); err == nil {
			total += n
		}
		integrity = integrity && ptr.Deref(c.Integrity, false)
	}
	out := summary{size: storagev1alpha1.FormatSize(total)}
	if len(s.Status.Components) > 0 {
		out.integrity = ptr.To(integrity)
	}
	expected := int(s.Status.TotalComponents)
	if expected < len(s.Status.Components) {
		expected = len(s.Status.Components)
	}
	switch {
	case s.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded).Status == corev1.ConditionFalse &&
		s.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded).Reason == storagev1alpha1.ReasonSnapshotMetadataUploadFailed,
		s.GetCondition(storagev1alpha1.TypeBackupIncomplete).Status == corev1.ConditionTrue:
		out.phase = storagev1alpha1.SnapshotFailed
	case len(s.Status.Components) == 0:
		out.phase = storagev1alpha1.SnapshotPending
	case failed > 0:
		out.phase = storagev1alpha1.SnapshotFailed
	case succeeded == expected:
		out.phase = storagev1alpha1.SnapshotSucceeded
	default:
		out.phase = storagev1alpha1.SnapshotRunning
	}
	return out
}

// componentNames lists a Snapshot's components in order, for stable output.
func componentNames(s *storagev1alpha1.Snapshot) []string {
	out := make([]string, 0, len(s.Status.Components))
	for n := range s.Status.Components {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
