package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/backupverifier"
)

// A BackupVerifier whose schedule a CronJob would refuse gets no CronJob
// and a Warning event that names the field and the fix; once the schedule
// is corrected, its CronJob is made with it.
func TestVerifierScheduleRefused(t *testing.T) {
	runController(t, func(mgr ctrl.Manager) error {
		return backupverifier.Setup(mgr, backupverifier.Options{Log: mgr.GetLogger()})
	})
	ctx := testContext(t)
	v := &corev1alpha1.BackupVerifier{
		ObjectMeta: metav1.ObjectMeta{Name: "tz-verifier", Namespace: testNamespace},
		Spec: corev1alpha1.BackupVerifierSpec{
			Type:      corev1alpha1.VerificationRestoreOnly,
			Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "TZ=Europe/Paris 0 3 * * *"},
			RestoreOption: corev1alpha1.RestoreOption{
				Target: storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "scratch"},
				AddonInfo: corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{
					Name: "logical-backup-restore", Params: &runtime.RawExtension{Raw: []byte(`{}`)},
				}}},
			},
		},
	}
	if err := kube.Create(ctx, v); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "no ScheduleInvalid event", func(ctx context.Context) (bool, string) {
		events := &corev1.EventList{}
		if err := kube.List(ctx, events, client.InNamespace(testNamespace)); err != nil {
			return false, err.Error()
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == v.Name && e.Reason == "ScheduleInvalid" {
				ok := e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "spec.scheduler.schedule") && strings.Contains(e.Message, "timeZone")
				return ok, e.Message
			}
		}
		return false, "no event yet"
	})
	cj := &batchv1.CronJob{}
	key := client.ObjectKey{Namespace: testNamespace, Name: naming.VerifierCronJob(v.Name)}
	if err := kube.Get(ctx, key, cj); err == nil {
		t.Fatalf("a CronJob %s was made for a refused schedule", cj.Name)
	}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(v), v); err != nil {
		t.Fatal(err)
	}
	v.Spec.Scheduler.Schedule = "0 3 * * *"
	v.Spec.Scheduler.TimeZone = ptr.To("Europe/Paris")
	if err := kube.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "no CronJob after the schedule was fixed", func(ctx context.Context) (bool, string) {
		if err := kube.Get(ctx, key, cj); err != nil {
			return false, err.Error()
		}
		return cj.Spec.Schedule == "0 3 * * *" && cj.Spec.TimeZone != nil && *cj.Spec.TimeZone == "Europe/Paris", cj.Spec.Schedule
	})
}
