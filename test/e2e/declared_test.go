package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/trigger"
)

// What a configuration declares is what runs: the scheduler's jobTemplate
// reaches the trigger CronJob, the addon's jobTemplate reaches the backup
// Job, a session made by hand of a paused configuration is Skipped, and a
// target in another namespace is refused before anything is made.
func TestDeclaredFieldsCarriedOut(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupConfigurationList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	bc := configuration(`{"paths": ["/data"]}`)
	s := &bc.Spec.Sessions[0]
	s.Scheduler.JobTemplate = corev1alpha1.JobTemplate{
		BackoffLimit: ptr.To[int32](0), ActiveDeadlineSeconds: ptr.To[int64](120),
		Template: corev1alpha1.PodTemplate{Metadata: corev1alpha1.PodTemplateMetadata{Labels: map[string]string{"team": "triggers"}}},
	}
	s.Addon.JobTemplate = &corev1alpha1.AddonJobTemplate{
		Metadata:              corev1alpha1.PodTemplateMetadata{Labels: map[string]string{"team": "payments"}},
		BackoffLimit:          ptr.To[int32](1),
		ActiveDeadlineSeconds: ptr.To[int64](1234),
		Spec: corev1alpha1.AddonPodSettings{Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")},
		}},
	}
	createReady(t, kube, bc)

	cj := &batchv1.CronJob{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-backup-nightly"}, cj); err != nil {
		t.Fatal(err)
	}
	js := cj.Spec.JobTemplate.Spec
	if ptr.Deref(js.BackoffLimit, -1) != 0 || ptr.Deref(js.ActiveDeadlineSeconds, 0) != 120 || js.Template.Labels["team"] != "triggers" {
		t.Errorf("the trigger CronJob does not carry scheduler.jobTemplate: backoffLimit %v, activeDeadlineSeconds %v, pod labels %v",
			ptr.Deref(js.BackoffLimit, -1), ptr.Deref(js.ActiveDeadlineSeconds, 0), js.Template.Labels)
	}

	var job batchv1.Job
	poll(t, 2*time.Minute, "the first backup made no Job", func(ctx context.Context) (bool, error) {
		jobs := &batchv1.JobList{}
		if err := kube.List(ctx, jobs, client.InNamespace("default"), client.HasLabels{corev1alpha1.LabelBackupSession}); err != nil || len(jobs.Items) == 0 {
			return false, nil
		}
		job = jobs.Items[0]
		return true, nil
	})
	cpu := job.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]
	if ptr.Deref(job.Spec.BackoffLimit, -1) != 1 || ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0) != 1234 ||
		job.Spec.Template.Labels["team"] != "payments" || cpu.Cmp(resource.MustParse("10m")) != 0 {
		t.Errorf("the backup Job does not carry addon.jobTemplate: backoffLimit %v, activeDeadlineSeconds %v, pod labels %v, cpu request %s",
			ptr.Deref(job.Spec.BackoffLimit, -1), ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0), job.Spec.Template.Labels, cpu.String())
	}

	// Paused: a session made by hand is skipped and says why.
	got := bc.DeepCopy()
	update(t, kube, got, func() { got.Spec.Paused = true })
	manual, err := trigger.Create(ctx, kube, got, "nightly", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "a session made by hand of a paused configuration was not skipped as paused", func(ctx context.Context) (bool, error) {
		bs := &corev1alpha1.BackupSession{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(manual), bs); err != nil {
			return false, nil
		}
		c := bs.GetCondition(corev1alpha1.TypeBackupSkipped)
		return bs.Status.Phase == corev1alpha1.BackupSessionSkipped && c.Reason == corev1alpha1.ReasonSkippedInvokerPaused, nil
	})

	// A target in another namespace: Invalid, naming the field, nothing made.
	other := configuration(`{"paths": ["/data"]}`)
	other.Name = "elsewhere"
	other.Spec.Target.Namespace = "kube-system"
	other.Spec.Sessions[0].Repositories[0].Name, other.Spec.Sessions[0].Repositories[0].Directory = "elsewhere", "default/elsewhere"
	if err := kube.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "a configuration whose target is in another namespace was not Invalid", func(ctx context.Context) (bool, error) {
		bc := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(other), bc); err != nil {
			return false, nil
		}
		c := bc.GetCondition(corev1alpha1.TypeValidationPassed)
		return bc.Status.Phase == corev1alpha1.BackupInvokerInvalid && c.Status == corev1.ConditionFalse &&
			strings.Contains(c.Message, "spec.target.namespace"), nil
	})
	cjs := &batchv1.CronJobList{}
	if err := kube.List(ctx, cjs, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	for _, c := range cjs.Items {
		if strings.HasPrefix(c.Name, "elsewhere") {
			t.Errorf("the refused configuration composed CronJob %q", c.Name)
		}
	}
}

// A configuration written as KubeStash's guides write it, a directory with
// a leading slash and the workload addon's paths and exclude as
// comma-separated strings, backs up into the same place as without the
// slash.
func TestKubeStashShapedBackup(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	bc := configuration(`{"paths": "/var/lib/app", "exclude": "/var/lib/app/lost+found,*.tmp"}`)
	bc.Spec.Sessions[0].Repositories[0].Directory = "/default/app"
	storageDir, _ := seedAppBackupWith(t, kube, 20, 3, bc)
	poll(t, 3*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		return list.Items[0].Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
	})
	repo := &storagev1alpha1.Repository{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app"}, repo); err != nil {
		t.Fatal(err)
	}
	if repo.Spec.Path != "default/app" {
		t.Errorf("Repository path %q, want %q", repo.Spec.Path, "default/app")
	}
	if _, err := os.Stat(filepath.Join(storageDir, "backups", layout.RepositoryKey("default/app"))); err != nil {
		t.Errorf("the repository is not at default/app in the storage: %v", err)
	}
}
