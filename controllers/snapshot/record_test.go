package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/gcerrors"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

func TestHold(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	pending := func(since time.Duration, want storagev1alpha1.SnapshotPhase) xpv2.Condition {
		return xpv2.Condition{Type: storagev1alpha1.TypeOutcomeRecorded, Status: corev1.ConditionFalse, Reason: storagev1alpha1.ReasonRecordPending,
			Message:            "the backup ended " + string(want) + "; its record in the storage cannot be written yet: connection refused",
			LastTransitionTime: metav1.NewTime(t0.Add(-since))}
	}
	heldSince := func(d time.Duration) []xpv2.Condition {
		return []xpv2.Condition{pending(d, storagev1alpha1.SnapshotSucceeded)}
	}
	type result struct {
		Phase               storagev1alpha1.SnapshotPhase
		Pending, Incomplete xpv2.Condition
	}
	cases := map[string]struct {
		reason     string
		prev, want storagev1alpha1.SnapshotPhase
		conditions []xpv2.Condition
		out        result
	}{
		"EndedNotRecorded": {
			reason: "A backup that ended while its record cannot be written stays Running: the session must not take it as done.",
			prev:   storagev1alpha1.SnapshotRunning,
			want:   storagev1alpha1.SnapshotSucceeded,
			out:    result{Phase: storagev1alpha1.SnapshotRunning, Pending: pending(0, storagev1alpha1.SnapshotSucceeded)},
		},
		"RecordFailingBeforeTheEnd": {
			reason: "The grace counts from the first outcome held back, not from the record's first failure while the backup ran.",
			prev:   storagev1alpha1.SnapshotRunning,
			want:   storagev1alpha1.SnapshotSucceeded,
			conditions: []xpv2.Condition{{Type: storagev1alpha1.TypeSnapshotMetadataUploaded, Status: corev1.ConditionFalse,
				Reason: "Unreachable", Message: "connection refused", LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}},
			out: result{Phase: storagev1alpha1.SnapshotRunning, Pending: pending(0, storagev1alpha1.SnapshotSucceeded)},
		},
		"FailedNotRecorded": {
			reason: "A failed component's outcome waits for the record too.",
			prev:   storagev1alpha1.SnapshotPending,
			want:   storagev1alpha1.SnapshotFailed,
			out:    result{Phase: storagev1alpha1.SnapshotRunning, Pending: pending(0, storagev1alpha1.SnapshotFailed)},
		},
		"WithinGrace": {
			reason:     "Held a moment less than the grace, the backup still waits, counting from the first hold.",
			prev:       storagev1alpha1.SnapshotRunning,
			want:       storagev1alpha1.SnapshotSucceeded,
			conditions: heldSince(recordGrace - time.Second),
			out:        result{Phase: storagev1alpha1.SnapshotRunning, Pending: pending(recordGrace-time.Second, storagev1alpha1.SnapshotSucceeded)},
		},
		"PastGrace": {
			reason:     "A record that still cannot be written after the grace fails the backup, saying why, so the session ends.",
			prev:       storagev1alpha1.SnapshotRunning,
			want:       storagev1alpha1.SnapshotSucceeded,
			conditions: heldSince(recordGrace),
			out: result{Phase: storagev1alpha1.SnapshotFailed, Pending: pending(recordGrace, storagev1alpha1.SnapshotSucceeded),
				Incomplete: xpv2.Condition{Type: storagev1alpha1.TypeBackupIncomplete, Status: corev1.ConditionTrue,
					Reason: storagev1alpha1.ReasonSnapshotMetadataUploadFailed, LastTransitionTime: metav1.NewTime(t0),
					Message: "the backup ended but its record could not be written to the storage for 2m0s: connection refused"}},
		},
		"OutcomeRecorded": {
			reason: "A Snapshot whose outcome is recorded keeps it when a later update of its record fails, however long.",
			prev:   storagev1alpha1.SnapshotSucceeded,
			want:   storagev1alpha1.SnapshotSucceeded,
			out:    result{Phase: storagev1alpha1.SnapshotSucceeded},
		},
		"OtherOutcomeNotRecorded": {
			reason: "A recorded outcome is not replaced by another the record does not hold.",
			prev:   storagev1alpha1.SnapshotSucceeded,
			want:   storagev1alpha1.SnapshotFailed,
			out:    result{Phase: storagev1alpha1.SnapshotSucceeded},
		},
		"StillRunning": {
			reason: "A backup still running has no outcome to hold back.",
			prev:   storagev1alpha1.SnapshotPending,
			want:   storagev1alpha1.SnapshotRunning,
			out:    result{Phase: storagev1alpha1.SnapshotRunning},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &storagev1alpha1.Snapshot{}
			s.SetConditions(tc.conditions...)
			s.Status.Phase = tc.want
			hold(s, tc.prev, t0, "connection refused")
			got := result{Phase: s.Status.Phase}
			if c := s.GetCondition(storagev1alpha1.TypeOutcomeRecorded); c.Status == corev1.ConditionFalse {
				got.Pending = c
			}
			if c := s.GetCondition(storagev1alpha1.TypeBackupIncomplete); c.Status == corev1.ConditionTrue {
				got.Incomplete = c
			}
			if diff := cmp.Diff(tc.out, got); diff != "" {
				t.Errorf("%s\nhold: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestRecordOutage runs the Snapshot's reconcile steps over a real
// directory bucket that stops taking the record for a while, as a
// storage's endpoint does while it is replaced.
func TestRecordOutage(t *testing.T) {
	type step struct {
		at        time.Duration
		component storagev1alpha1.ComponentPhase
		down      bool
		// phase is what the Snapshot shows after the step, recorded what
		// its record in the storage says (the previous record when the
		// storage is down).
		phase, recorded storagev1alpha1.SnapshotPhase
	}
	const (
		running   = storagev1alpha1.SnapshotRunning
		succeeded = storagev1alpha1.SnapshotSucceeded
		failed    = storagev1alpha1.SnapshotFailed
	)
	cases := map[string]struct {
		reason string
		steps  []step
	}{
		"BriefOutage": {
			reason: "A backup that ends while the storage is down shows Succeeded only once its record says so.",
			steps: []step{
				{at: 0, component: storagev1alpha1.ComponentRunning, phase: running, recorded: running},
				{at: 10 * time.Second, component: storagev1alpha1.ComponentSucceeded, down: true, phase: running, recorded: running},
				{at: 100 * time.Second, component: storagev1alpha1.ComponentSucceeded, down: true, phase: running, recorded: running},
				{at: 110 * time.Second, component: storagev1alpha1.ComponentSucceeded, phase: succeeded, recorded: succeeded},
			},
		},
		"LongOutage": {
			reason: "A record that cannot be written within the grace fails the backup, for good, and the record says so once it can.",
			steps: []step{
				{at: 0, component: storagev1alpha1.ComponentRunning, phase: running, recorded: running},
				{at: 10 * time.Second, component: storagev1alpha1.ComponentSucceeded, down: true, phase: running, recorded: running},
				{at: 10*time.Second + recordGrace, component: storagev1alpha1.ComponentSucceeded, down: true, phase: failed, recorded: running},
				{at: 20*time.Second + recordGrace, component: storagev1alpha1.ComponentSucceeded, phase: failed, recorded: failed},
			},
		},
		"OutageFromTheStart": {
			reason: "A storage that refuses the record all through a long backup fails it no sooner than the grace after it ended.",
			steps: []step{
				{at: 0, component: storagev1alpha1.ComponentRunning, down: true, phase: running},
				{at: 3 * time.Minute, component: storagev1alpha1.ComponentSucceeded, down: true, phase: running},
				{at: 3*time.Minute + recordGrace - time.Second, component: storagev1alpha1.ComponentSucceeded, down: true, phase: running},
				{at: 3*time.Minute + recordGrace, component: storagev1alpha1.ComponentSucceeded, phase: succeeded, recorded: succeeded},
			},
		},
		"OutageAfterOutcome": {
			reason: "An outage after the outcome is recorded changes nothing of it.",
			steps: []step{
				{at: 0, component: storagev1alpha1.ComponentSucceeded, phase: succeeded, recorded: succeeded},
				{at: time.Hour, component: storagev1alpha1.ComponentSucceeded, down: true, phase: succeeded, recorded: succeeded},
			},
		},
	}
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			bucket, err := fileblob.OpenBucket(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer bucket.Close()
			key := layout.SnapshotKey("demo/db", "db-1")
			records := filepath.Join(dir, filepath.Dir(key))
			s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "demo", CreationTimestamp: metav1.NewTime(t0)}}
			s.Status.TotalComponents = 1
			if err := os.MkdirAll(records, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				// Down, the records' directory is a file: every read and
				// write of the record fails.
				if st.down {
					if err := os.Rename(records, records+".up"); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(records, nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				now := t0.Add(st.at)
				s.Status.Components = map[string]storagev1alpha1.Component{"dump": {Phase: st.component, Size: "1 MiB"}}
				prev := s.Status.Phase
				derive(s)
				e := &external{bucket: bucket, repoPath: "demo/db", key: key, prev: prev, now: func() time.Time { return now },
					reason: func(err error) (string, string) { return "StorageUnreachable", err.Error() }}
				obs, err := e.Observe(ctx, s)
				switch {
				case err != nil:
				case !obs.ResourceExists:
					_, err = e.Create(ctx, s)
				case !obs.ResourceUpToDate:
					_, err = e.Update(ctx, s)
				}
				if (err != nil) != st.down {
					t.Fatalf("%s\nstep %d: error %v, want one: %t", tc.reason, i, err, st.down)
				}
				if st.down {
					if err := os.Remove(records); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(records+".up", records); err != nil {
						t.Fatal(err)
					}
				}
				rec := &storagev1alpha1.Snapshot{}
				data, err := bucket.ReadAll(ctx, key)
				if gcerrors.Code(err) != gcerrors.NotFound {
					if err != nil {
						t.Fatal(err)
					}
					if err := yaml.Unmarshal(data, rec); err != nil {
						t.Fatal(err)
					}
				}
				if diff := cmp.Diff([]storagev1alpha1.SnapshotPhase{st.phase, st.recorded}, []storagev1alpha1.SnapshotPhase{s.Status.Phase, rec.Status.Phase}); diff != "" {
					t.Errorf("%s\nstep %d (%s): phase and recorded phase: -want +got:\n%s\nconditions: %+v", tc.reason, i, st.at, diff, s.Status.Conditions)
				}
			}
		})
	}
}

func TestSetUploaded(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s := &storagev1alpha1.Snapshot{}
	setUploaded(s, true, string(storagev1alpha1.ReasonSnapshotMetadataUploadSucceeded), "", t0)
	setUploaded(s, false, "StorageUnreachable", "connection refused", t0.Add(time.Minute))
	setUploaded(s, false, string(storagev1alpha1.ReasonSnapshotMetadataUploadFailed), "EOF", t0.Add(2*time.Minute))
	want := xpv2.Condition{Type: storagev1alpha1.TypeSnapshotMetadataUploaded, Status: corev1.ConditionFalse,
		Reason: storagev1alpha1.ReasonSnapshotMetadataUploadFailed, Message: "EOF", LastTransitionTime: metav1.NewTime(t0.Add(time.Minute))}
	if diff := cmp.Diff(want, s.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded)); diff != "" {
		t.Errorf("a record failing with another error keeps the time it began failing: -want +got:\n%s", diff)
	}
}

// TestConnectHolds: a reconcile that fails before it reaches the storage
// (here the Repository is not found) holds the outcome back too.
func TestConnectHolds(t *testing.T) {
	sch := runtime.NewScheme()
	if err := storagev1alpha1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := &connector{kube: fake.NewClientBuilder().WithScheme(sch).Build(), now: func() time.Time { return t0 }}
	s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "demo"}}
	s.Spec.Repository = "db"
	s.Status.Phase, s.Status.TotalComponents = storagev1alpha1.SnapshotRunning, 1
	s.Status.Components = map[string]storagev1alpha1.Component{"dump": {Phase: storagev1alpha1.ComponentSucceeded}}
	if _, err := c.Connect(context.Background(), s); err == nil {
		t.Fatal("Connect without the Repository: no error")
	}
	got := []string{string(s.Status.Phase), string(s.GetCondition(storagev1alpha1.TypeOutcomeRecorded).Reason)}
	if diff := cmp.Diff([]string{string(storagev1alpha1.SnapshotRunning), string(storagev1alpha1.ReasonRecordPending)}, got); diff != "" {
		t.Errorf("phase and OutcomeRecorded's reason after a failed Connect: -want +got:\n%s", diff)
	}
}
