package main

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestPruneMayStart(t *testing.T) {
	repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "demo", Labels: map[string]string{corev1alpha1.LabelInvokerName: "app-backup"}}}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "app-prune", Namespace: "demo"}}
	session := func(phase corev1alpha1.BackupSessionPhase, config string) *corev1alpha1.BackupSession {
		s := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: config + "-nightly-1", Namespace: "demo"}}
		s.Spec.Invoker.Name, s.Status.Phase = config, phase
		return s
	}
	oldJob := func(cond batchv1.JobConditionType) *batchv1.Job {
		j := job.DeepCopy()
		if cond != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
			if cond == batchv1.JobComplete {
				j.Status.CompletionTime = &metav1.Time{}
			}
		}
		return j
	}
	type want struct {
		Err     string
		JobGone bool
	}
	cases := map[string]struct {
		reason string
		objs   []client.Object
		want   want
	}{
		"Free": {
			reason: "With no backup running and no prune Job, a prune may start.",
			objs:   []client.Object{session(corev1alpha1.BackupSessionSucceeded, "app-backup"), session(corev1alpha1.BackupSessionRunning, "other")},
			want:   want{JobGone: true},
		},
		"BackupRunning": {
			reason: "No prune starts while a backup of the Repository's configuration runs.",
			objs:   []client.Object{session(corev1alpha1.BackupSessionRunning, "app-backup")},
			want:   want{Err: `cannot prune repository "app" now: backupsession "app-backup-nightly-1" of its configuration is Running`, JobGone: true},
		},
		"PruneRunning": {
			reason: "Two prunes of one Repository never run at once.",
			objs:   []client.Object{oldJob("")},
			want:   want{Err: `cannot prune repository "app" now: prune job "app-prune" is still running`},
		},
		"FinishedPruneReplaced": {
			reason: "A finished prune Job is removed so that the new one can take its name.",
			objs:   []client.Object{oldJob(batchv1.JobFailed)},
			want:   want{JobGone: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := apis.Scheme()
			if err != nil {
				t.Fatal(err)
			}
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(tc.objs...).Build()
			got := want{}
			if err := pruneMayStart(context.Background(), kube, repo, job); err != nil {
				got.Err = err.Error()
			}
			got.JobGone = kube.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{}) != nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\npruneMayStart: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
