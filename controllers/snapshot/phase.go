package snapshot

import (
	"fmt"
	"sort"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// conditions and components: Failed if the backup is incomplete; Pending
// with no components; otherwise Failed if any component failed, Running
// until every expected component succeeded. Whether the record in the
// storage holds that phase yet is hold's question.
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
	case s.GetCondition(storagev1alpha1.TypeBackupIncomplete).Status == corev1.ConditionTrue:
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

// recordGrace is how long a backup that has ended waits for its record to
// be written before the Snapshot fails for want of it. It covers the
// storage's brief outages: an accessor or provider replaced during an
// upgrade, a bucket's endpoint restarting.
const recordGrace = 2 * time.Minute

// hold keeps an outcome the storage's record does not hold yet out of the
// Snapshot's phase, when this reconcile failed (why) before it could
// write or read the record. A session takes a Snapshot's Succeeded or
// Failed as final, so neither may show before the record says so, and a
// storage that stumbled once must not fail a backup whose data is safe.
//
// The phase stays prev, what it was before this reconcile (Running for a
// backup that has just ended), and OutcomeRecorded says False, since the
// first reconcile that held the outcome back. A backup whose outcome is
// still held recordGrace later fails: BackupIncomplete,
// SnapshotMetadataUploadFailed, so that the session ends and the next run
// tries again. A Snapshot whose outcome is already recorded keeps it: a
// later record update that fails (a verdict, a size) changes nothing of
// the backup.
func hold(s *storagev1alpha1.Snapshot, prev storagev1alpha1.SnapshotPhase, now time.Time, why string) {
	want := s.Status.Phase
	if want == prev || !ended(want) {
		return
	}
	if ended(prev) {
		s.Status.Phase = prev
		return
	}
	since := now
	if c := s.GetCondition(storagev1alpha1.TypeOutcomeRecorded); c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
		since = c.LastTransitionTime.Time
	}
	s.SetConditions(xpv2.Condition{Type: storagev1alpha1.TypeOutcomeRecorded, Status: corev1.ConditionFalse,
		Reason: storagev1alpha1.ReasonRecordPending, LastTransitionTime: metav1.NewTime(since),
		Message: fmt.Sprintf("the backup ended %s; its record in the storage cannot be written yet: %s", want, why)})
	if now.Sub(since) >= recordGrace {
		s.SetConditions(xpv2.Condition{Type: storagev1alpha1.TypeBackupIncomplete, Status: corev1.ConditionTrue,
			Reason: storagev1alpha1.ReasonSnapshotMetadataUploadFailed, LastTransitionTime: metav1.NewTime(now),
			Message: fmt.Sprintf("the backup ended but its record could not be written to the storage for %s: %s",
				now.Sub(since).Round(time.Second), why)})
		s.Status.Phase = storagev1alpha1.SnapshotFailed
		return
	}
	s.Status.Phase = storagev1alpha1.SnapshotRunning
}

// recorded ends a hold: the record was written or found up to date.
func recorded(s *storagev1alpha1.Snapshot, now time.Time) {
	if s.GetCondition(storagev1alpha1.TypeOutcomeRecorded).Status != corev1.ConditionFalse {
		return
	}
	s.SetConditions(xpv2.Condition{Type: storagev1alpha1.TypeOutcomeRecorded, Status: corev1.ConditionTrue,
		Reason: storagev1alpha1.ReasonRecorded, LastTransitionTime: metav1.NewTime(now)})
}

// ended says whether a phase is an outcome.
func ended(p storagev1alpha1.SnapshotPhase) bool {
	return p == storagev1alpha1.SnapshotSucceeded || p == storagev1alpha1.SnapshotFailed
}
