package plan_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
)

// claimRestore restores a Snapshot into the claim "scratch" with the
// pvc-addon, as a verification does.
func claimRestore(components ...string) *corev1alpha1.RestoreSession {
	return &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "db-restore", Namespace: "demo"},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     &storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "scratch"},
			DataSource: corev1alpha1.RestoreDataSource{Repository: "db", Snapshot: "db-1", Components: components},
			Addon: &corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{
				Name: "logical-backup-restore", Params: &runtime.RawExtension{Raw: []byte(`{"mountPath": "/var/lib/db"}`)},
			}}},
		},
	}
}

// TestRestoreIntoOneClaim checks where each component of a Snapshot lands
// in the restore Jobs: the Jobs by name, each with the subPath its "data"
// mount has ("" for the volume's root).
func TestRestoreIntoOneClaim(t *testing.T) {
	cases := map[string]struct {
		reason string
		rs     *corev1alpha1.RestoreSession
		snap   *storagev1alpha1.Snapshot
		target *unstructured.Unstructured
		want   map[string]string
	}{
		"PodsIntoOneClaim": {
			reason: "A StatefulSet's components restored into one claim get a Job and a directory each, so neither overwrites the other.",
			rs:     claimRestore(), snap: snapshotOf("dump-pod-1", "dump-pod-0"),
			want: map[string]string{
				"db-restore-logical-backup-restore-dump-pod-0": "dump-pod-0",
				"db-restore-logical-backup-restore-dump-pod-1": "dump-pod-1",
			},
		},
		"NodesIntoOneClaim": {
			reason: "A DaemonSet's components restored into one claim get a directory each too.",
			rs:     claimRestore(), snap: snapshotOf("dump-node-a", "dump-node-b"),
			want: map[string]string{
				"db-restore-logical-backup-restore-dump-node-a": "dump-node-a",
				"db-restore-logical-backup-restore-dump-node-b": "dump-node-b",
			},
		},
		"OneComponent": {
			reason: "A Snapshot of one component is restored into the claim's root, as before.",
			rs:     claimRestore(), snap: snapshotOf("dump"),
			want: map[string]string{"db-restore-logical-backup-restore": ""},
		},
		"OneOfSeveral": {
			reason: "One component picked out of several is alone in the claim and goes to its root.",
			rs:     claimRestore("dump-pod-1"), snap: snapshotOf("dump-pod-0", "dump-pod-1"),
			want: map[string]string{"db-restore-logical-backup-restore-dump-pod-1": ""},
		},
		"IntoTheStatefulSet": {
			reason: "A restore into the StatefulSet itself writes each component into its own ordinal's claims, at their roots.",
			rs:     restoreSession("StatefulSet"), snap: snapshotOf("dump-pod-0", "dump-pod-1"), target: statefulSet(t, ptr.To[int32](2)),
			want: map[string]string{
				"db-restore-logical-backup-restore-dump-pod-0": "",
				"db-restore-logical-backup-restore-dump-pod-1": "",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			inputs, err := plan.Restore(tc.rs, plan.Inputs{
				Catalog: catalog(t), Target: tc.target, Snapshot: tc.snap,
				Repository: &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, j := range renderedJobs(t, inputs) {
				got[j.Name] = "<no data mount>"
				for _, m := range j.Spec.Template.Spec.Containers[0].VolumeMounts {
					if m.Name == "data" {
						got[j.Name] = m.SubPath
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nrestore jobs and the subPath of their data mount: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// renderedJobs renders planned inputs with the built-in Functions and
// returns the Jobs they make.
func renderedJobs(t *testing.T, inputs []render.Input) []*batchv1.Job {
	t.Helper()
	r := render.New(render.Options{})
	var out []*batchv1.Job
	for _, in := range inputs {
		res, err := r.Render(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := res.Jobs()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, jobs...)
	}
	return out
}
