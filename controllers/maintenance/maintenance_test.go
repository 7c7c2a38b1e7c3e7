package maintenance

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// now is 02:30 on a day whose daily prune (00:00) is due when the last one
// was the day before.
var now = time.Date(2026, 3, 18, 2, 30, 0, 0, time.UTC)

func repository(change func(*storagev1alpha1.Repository)) *storagev1alpha1.Repository {
	r := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "demo",
		Labels: map[string]string{corev1alpha1.LabelInvokerName: "app-backup"}, CreationTimestamp: metav1.NewTime(now.Add(-72 * time.Hour))}}
	r.Spec.StorageRef = storagev1alpha1.ObjectReference{Name: "shared"}
	r.Spec.EncryptionSecret = storagev1alpha1.ObjectReference{Name: "restic-password"}
	r.Spec.Maintenance = &storagev1alpha1.MaintenanceSpec{Schedule: "@daily"}
	r.Status.Phase = storagev1alpha1.RepositoryReady
	r.Status.LastPruneTime = &metav1.Time{Time: now.Add(-26 * time.Hour)}
	if change != nil {
		change(r)
	}
	return r
}

func pruneJob(created time.Time, cond batchv1.JobConditionType) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "app-prune", Namespace: "demo", CreationTimestamp: metav1.NewTime(created)}}
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
	}
	return j
}

func TestReconcile(t *testing.T) {
	storage := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "demo"}}
	storage.Spec.Storage = storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: "/stashplane"}}
	running := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: "app-backup-nightly-1", Namespace: "demo"}}
	running.Spec.Invoker.Name, running.Status.Phase = "app-backup", corev1alpha1.BackupSessionRunning
	type want struct {
		Requeue time.Duration
		Job     string // "created", "kept" or "none"
	}
	cases := map[string]struct {
		reason string
		objs   []client.Object
		want   want
	}{
		"Due": {
			reason: "A prune a day after the last one is due: the Job is made, owned by the Repository.",
			objs:   []client.Object{repository(nil), storage},
			want:   want{Job: "created"},
		},
		"NotDue": {
			reason: "Pruned at 01:00 today, the next daily prune is at midnight.",
			objs: []client.Object{repository(func(r *storagev1alpha1.Repository) {
				r.Status.LastPruneTime = &metav1.Time{Time: now.Add(-90 * time.Minute)}
			}), storage},
			want: want{Requeue: 21*time.Hour + 30*time.Minute, Job: "none"},
		},
		"FailedPruneNotRetriedBeforeSchedule": {
			reason: "A prune Job that failed today counts as today's attempt.",
			objs:   []client.Object{repository(nil), storage, pruneJob(now.Add(-time.Hour), batchv1.JobFailed)},
			want:   want{Requeue: 21*time.Hour + 30*time.Minute, Job: "kept"},
		},
		"BackupRunning": {
			reason: "No prune starts while a backup of the configuration runs; it is tried again in a minute.",
			objs:   []client.Object{repository(nil), storage, running},
			want:   want{Requeue: blockedRecheck, Job: "none"},
		},
		"VerificationRunning": {
			reason: "No prune starts while a verification reads the Repository (its restic check takes no lock); it is tried again in a minute.",
			objs: []client.Object{repository(nil), storage, &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "verify-app-1", Namespace: "demo"},
				Spec:   corev1alpha1.RestoreSessionSpec{DataSource: corev1alpha1.RestoreDataSource{Repository: "app"}},
				Status: corev1alpha1.RestoreSessionStatus{Phase: corev1alpha1.RestoreRunning}}},
			want: want{Requeue: blockedRecheck, Job: "none"},
		},
		"OldJobRemoved": {
			reason: "Yesterday's finished prune Job goes before a new one takes its name.",
			objs:   []client.Object{repository(nil), storage, pruneJob(now.Add(-26*time.Hour), batchv1.JobComplete)},
			want:   want{Requeue: 5 * time.Second, Job: "none"},
		},
		"Suspended": {
			reason: "Suspended maintenance starts nothing.",
			objs:   []client.Object{repository(func(r *storagev1alpha1.Repository) { r.Spec.Maintenance.Suspend = true }), storage},
			want:   want{Job: "none"},
		},
		"NotComposed": {
			reason: "A Repository no configuration composed has no account to prune with.",
			objs:   []client.Object{repository(func(r *storagev1alpha1.Repository) { r.Labels = nil }), storage},
			want:   want{Job: "none"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := runtime.NewScheme()
			for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apis.AddToScheme} {
				if err := add(s); err != nil {
					t.Fatal(err)
				}
			}
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(tc.objs...).Build()
			r := &reconciler{kube: kube, clock: clocktesting.NewFakeClock(now), image: "stashplane:test", events: record.NewFakeRecorder(10), log: logr.Discard()}
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "demo", Name: "app"}})
			if err != nil {
				t.Fatal(err)
			}
			got := want{Requeue: res.RequeueAfter, Job: "none"}
			job := &batchv1.Job{}
			if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "app-prune"}, job); err == nil {
				got.Job = "kept"
				if owner := metav1.GetControllerOf(job); owner != nil && owner.Name == "app" && job.Spec.Template.Spec.Containers[0].Image == "stashplane:test" {
					got.Job = "created"
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nReconcile: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
