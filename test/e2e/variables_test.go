package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/sessionjob"
	"github.com/stashplane/stashplane/internal/trigger"
)

// A task variable taken from a ConfigMap key reaches the task's
// containers as their environment: RESTIC_PACK_SIZE read from a ConfigMap
// makes restic write 4 MiB packs instead of its default 16 MiB ones. A
// variable naming a Secret that does not exist fails the run once the
// pod has waited past sessionjob.UnstartableGrace, saying which Secret,
// and leaves no Job waiting for ever.
func TestVariableValueFrom(t *testing.T) {
	t.Parallel()
	kube, _ := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, kube, &corev1.PodList{})
	storageDir := storageDir(t)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	packSize := corev1.EnvVar{Name: "RESTIC_PACK_SIZE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "restic-tuning"}, Key: "packSize",
	}}}
	bc.Spec.Sessions[0].Addon.Tasks[0].Variables = []corev1.EnvVar{{Name: "MODE", Value: "literal"}, packSize}
	tuning := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "restic-tuning", Namespace: "default"}, Data: map[string]string{"packSize": "4"}}
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir, nil), tuning)

	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	before := packs(t, repoDir)
	writeRandom(t, filepath.Join(appData(t, kube), "big.bin"), 24<<20)
	retentionRun(t, kube, bc, time.Now())
	written := len(packs(t, repoDir)) - len(before)
	// 24 MiB of random data: six packs of 4 MiB (and a tree pack); with
	// restic's default of 16 MiB it would be two.
	if written < 5 {
		t.Errorf("the run wrote %d packs for 24 MiB of random data; with RESTIC_PACK_SIZE=4 from the ConfigMap it writes at least 5 (2 with restic's default)", written)
	}
	t.Logf("checked: RESTIC_PACK_SIZE from ConfigMap restic-tuning made the run write %d packs for 24 MiB", written)

	update(t, kube, bc, func() {
		bc.Spec.Sessions[0].Addon.Tasks[0].Variables = append(bc.Spec.Sessions[0].Addon.Tasks[0].Variables, corev1.EnvVar{
			Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "token",
			}},
		})
	})
	bs, err := trigger.Create(ctx, kube, bc, "nightly", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	poll(t, sessionjob.UnstartableGrace+2*time.Minute, "the run whose Job names a missing Secret did not fail", func(ctx context.Context) (bool, error) {
		got := &corev1alpha1.BackupSession{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bs), got); err != nil {
			return false, nil
		}
		return got.Status.Phase == corev1alpha1.BackupSessionFailed, nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + bs.Name}, snap); err != nil {
		t.Fatal(err)
	}
	c := snap.GetCondition(storagev1alpha1.TypeBackupIncomplete)
	if c.Status != corev1.ConditionTrue || !strings.Contains(c.Message, `secret "absent" not found`) || !strings.Contains(c.Message, "CreateContainerConfigError") {
		t.Errorf("the Snapshot of the failed run says %s %s: %q; want True naming the missing Secret and CreateContainerConfigError", c.Status, c.Reason, c.Message)
	}
	t.Logf("checked: the run failed after %s: %s", time.Since(start).Round(time.Second), c.Message)
	poll(t, time.Minute, "the Job whose pod cannot start was not removed", func(ctx context.Context) (bool, error) {
		jobs := &batchv1.JobList{}
		if err := kube.List(ctx, jobs, client.InNamespace("default"), client.MatchingLabels{corev1alpha1.LabelBackupSession: bs.Name}); err != nil {
			return false, nil
		}
		for i := range jobs.Items {
			if !sessionjob.Ended(&jobs.Items[i]) && jobs.Items[i].DeletionTimestamp == nil {
				return false, nil
			}
		}
		return true, nil
	})
}
