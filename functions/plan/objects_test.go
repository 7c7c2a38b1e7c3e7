package plan_test

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
)

// taskParts names each planned input by task and component.
func taskParts(inputs []render.Input) []string {
	var out []string
	for _, in := range inputs {
		out = append(out, in.Task+"/"+in.Context.Component)
	}
	sort.Strings(out)
	return out
}

// TestPlanObjectTasks: a task of a component of its own (the workload's
// objects) is one component whatever the target, and on restore takes
// only that component, while the data tasks take the rest.
func TestPlanObjectTasks(t *testing.T) {
	held := statefulSet(t, ptr.To[int32](0))
	held.SetAnnotations(map[string]string{corev1alpha1.AnnotationHeldReplicas: "2"})

	backupCases := map[string]struct {
		reason string
		target *unstructured.Unstructured
		kind   string
		want   []string
	}{
		"StatefulSet": {
			reason: "The objects are one component beside one per pod.",
			kind:   "StatefulSet", target: statefulSet(t, ptr.To[int32](2)),
			want: []string{"logical-backup/dump-pod-0", "logical-backup/dump-pod-1", "manifest-backup/manifest"},
		},
		"Deployment": {
			reason: "A Deployment's objects go beside its dump.",
			kind:   "Deployment", target: deploymentOf(t),
			want: []string{"logical-backup/dump", "manifest-backup/manifest"},
		},
	}
	for name, tc := range backupCases {
		t.Run("Backup"+name, func(t *testing.T) {
			bc := backupConfiguration(tc.kind, backupTask)
			bc.Spec.Sessions[0].Addon.Tasks = append(bc.Spec.Sessions[0].Addon.Tasks, corev1alpha1.TaskReference{Name: "manifest-backup"})
			got, err := plan.Backup(bc, "nightly", plan.Inputs{Catalog: catalog(t), Target: tc.target, SessionName: "db-backup-1"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, taskParts(got)); diff != "" {
				t.Errorf("\n%s\nBackup(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}

	both := []corev1alpha1.TaskReference{{Name: "manifest-restore"}, {Name: "logical-backup-restore"}}
	restoreCases := map[string]struct {
		reason      string
		tasks       []corev1alpha1.TaskReference
		snap        *storagev1alpha1.Snapshot
		target      *unstructured.Unstructured
		objectsOnly bool
		want        []string
		wantErr     string
	}{
		"Both": {
			reason: "Each task takes its own components: the objects, and the data of each pod.",
			tasks:  both, snap: snapshotOf("dump-pod-0", "dump-pod-1", "manifest"), target: statefulSet(t, ptr.To[int32](2)),
			want: []string{"logical-backup-restore/dump-pod-0", "logical-backup-restore/dump-pod-1", "manifest-restore/manifest"},
		},
		"TargetMissing": {
			reason: "While the target does not exist only the objects are planned.",
			tasks:  both, snap: snapshotOf("dump-pod-0", "manifest"), objectsOnly: true,
			want: []string{"manifest-restore/manifest"},
		},
		"HeldStatefulSet": {
			reason: "A StatefulSet held without pods gets the data of the replicas it will have.",
			tasks:  both[1:], snap: snapshotOf("dump-pod-0", "dump-pod-1", "manifest"), target: held,
			want: []string{"logical-backup-restore/dump-pod-0", "logical-backup-restore/dump-pod-1"},
		},
		"DataOnly": {
			reason: "A data restore of a Snapshot with objects leaves the objects alone.",
			tasks:  both[1:], snap: snapshotOf("dump", "manifest"), target: deploymentOf(t),
			want: []string{"logical-backup-restore/dump"},
		},
		"DefaultTasksWithoutObjects": {
			reason: "With no task named, a Snapshot without objects is restored by the data task alone.",
			snap:   snapshotOf("dump"), target: deploymentOf(t),
			want: []string{"logical-backup-restore/dump"},
		},
		"NoObjects": {
			reason: "Recreating objects from a Snapshot that holds none is refused, naming the task.",
			tasks:  both, snap: snapshotOf("dump"), target: deploymentOf(t),
			wantErr: `cannot plan task "manifest-restore": snapshot "db-1" has no "manifest" component, so it holds no resource manifests to recreate objects from; back up with the addon's manifest-backup task, or leave task "manifest-restore" out`,
		},
	}
	for name, tc := range restoreCases {
		t.Run("Restore"+name, func(t *testing.T) {
			kind := "Deployment"
			if tc.target != nil {
				kind = tc.target.GetKind()
			}
			rs := restoreSession(kind)
			rs.Spec.Addon.Tasks = tc.tasks
			got, err := plan.Restore(rs, plan.Inputs{
				Catalog: catalog(t), Target: tc.target, Snapshot: tc.snap, ObjectsOnly: tc.objectsOnly,
				Repository: &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"}},
			})
			if diff := cmp.Diff(tc.wantErr, errString(err)); diff != "" {
				t.Fatalf("\n%s\nRestore(...): -want error +got error:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want, taskParts(got)); diff != "" {
				t.Errorf("\n%s\nRestore(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
