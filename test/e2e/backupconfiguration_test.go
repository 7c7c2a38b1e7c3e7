package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/provider"
)

func configuration(params string) *corev1alpha1.BackupConfiguration {
	return &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "app-backup", Namespace: "default"},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"},
			Backends: []corev1alpha1.BackendReference{{Name: "local", StorageRef: &storagev1alpha1.ObjectReference{Name: "shared"}}},
			Sessions: []corev1alpha1.Session{{
				Name:      "nightly",
				Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *"},
				Addon: &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{
					Name: "logical-backup", Params: &runtime.RawExtension{Raw: []byte(params)},
				}}},
				Repositories: []corev1alpha1.RepositoryInfo{{
					Name: "app", Backend: "local", Directory: "default/app",
					EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"},
				}},
			}},
		},
	}
}

func bcState(ctx context.Context, kube client.Client) (corev1alpha1.BackupInvokerPhase, string) {
	bc := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-backup"}, bc); err != nil {
		return "", ""
	}
	c := bc.GetCondition(corev1alpha1.TypeValidationPassed)
	return bc.Status.Phase, string(c.Status) + ": " + c.Message
}

// A configuration whose task parameters break the Function's schema is
// Invalid, with CUE's position in the message, and no Job is created from
// it; once fixed, a missing target keeps it NotReady until the target
// exists, after which it passes validation.
func TestBackupConfigurationValidation(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupConfigurationList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, localStorage("shared", "default", storageDir(t), nil)); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, configuration(`{"paths": "not-a-list"}`)); err != nil {
		t.Fatal(err)
	}
	position := regexp.MustCompile(`:\d+:\d+`)
	poll(t, 2*time.Minute, "the configuration with bad parameters did not become Invalid", func(ctx context.Context) (bool, error) {
		phase, msg := bcState(ctx, kube)
		return phase == corev1alpha1.BackupInvokerInvalid && strings.Contains(msg, "paths") && position.MatchString(msg), nil
	})
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) > 0 {
		t.Errorf("an invalid configuration created Jobs: %d", len(jobs.Items))
	}

	bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app-backup"}}
	update(t, kube, bc, func() {
		bc.Spec.Sessions[0].Addon.Tasks[0].Params = &runtime.RawExtension{Raw: []byte(`{"paths": ["/data"]}`)}
	})
	poll(t, 2*time.Minute, "the fixed configuration did not report its missing target", func(ctx context.Context) (bool, error) {
		phase, msg := bcState(ctx, kube)
		return phase == corev1alpha1.BackupInvokerNotReady && strings.Contains(msg, "target Deployment default/app not found"), nil
	})
	labels := map[string]string{"app": "app"}
	if err := kube.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}}},
			}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the configuration did not pass validation once its target existed", func(ctx context.Context) (bool, error) {
		_, msg := bcState(ctx, kube)
		return strings.HasPrefix(msg, "True"), nil
	})
}

func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}}},
			}},
		},
	}
}

// createReady creates what configuration() needs (the built-in addons, the
// local storage "shared", the Deployment "app" and the password Secret),
// then bc, and waits until bc is Ready with its first backup started.
func createReady(t *testing.T, kube client.Client, bc *corev1alpha1.BackupConfiguration) {
	t.Helper()
	ctx := context.Background()
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir(t), nil),
		deployment("app"),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte("pw-for-test")}},
		bc,
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 3*time.Minute, "the configuration did not become Ready with its first backup started", func(ctx context.Context) (bool, error) {
		got := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), got); err != nil {
			return false, nil
		}
		return got.Status.Phase == corev1alpha1.BackupInvokerReady &&
			got.GetCondition(corev1alpha1.TypeInitialBackupTriggered).Status == corev1.ConditionTrue, nil
	})
}

// A valid configuration composes its Repository and one CronJob per session
// under a ServiceAccount of its own, starts a first backup at once, and its
// every-minute CronJob starts the next through `stashplane trigger` running
// with that account's rights only; a removed session's CronJob goes, and
// pausing suspends the rest.
func TestBackupConfigurationSchedules(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupConfigurationList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	bc := configuration(`{"paths": ["/data"]}`)
	minute := bc.Spec.Sessions[0]
	minute.Name, minute.Scheduler = "every-minute", &corev1alpha1.SchedulerSpec{Schedule: "* * * * *"}
	minute.Repositories = []corev1alpha1.RepositoryInfo{{Name: "app-minutely", Backend: "local", Directory: "default/app-minutely",
		EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"}}}
	bc.Spec.Sessions = append(bc.Spec.Sessions, minute)
	createReady(t, kube, bc)
	sessions := func(session string) int {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default"), client.MatchingLabels{"core.stashplane.io/session": session}); err != nil {
			return 0
		}
		return len(list.Items)
	}
	if n := sessions("nightly"); n != 1 {
		t.Errorf("nightly sessions after the first backup: %d, want 1", n)
	}
	poll(t, 3*time.Minute, "the every-minute CronJob did not start a backup", func(context.Context) (bool, error) {
		return sessions("every-minute") >= 2, nil
	})

	got := bc.DeepCopy()
	update(t, kube, got, func() {
		got.Spec.Sessions = got.Spec.Sessions[:1]
		got.Spec.Paused = true
	})
	poll(t, 2*time.Minute, "the removed session's CronJob is still there, or the other is not suspended", func(ctx context.Context) (bool, error) {
		list := &batchv1.CronJobList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil {
			return false, nil
		}
		return len(list.Items) == 1 && list.Items[0].Name == "app-backup-nightly" && ptr.Deref(list.Items[0].Spec.Suspend, false), nil
	})
}
