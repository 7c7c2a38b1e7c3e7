package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/backupconfiguration"
	"github.com/stashplane/stashplane/internal/provider"
)

// The configuration's validation controller, against a real API server:
// a backend naming a RetentionPolicy of another namespace whose
// usagePolicy does not admit the configuration's namespace holds the
// configuration NotReady, naming the field, and nothing is composed from
// it (no Repository, no CronJob); changing the policy to admit it
// re-validates the configuration (the controller watches policies), and
// so does deleting the policy.
func TestConfigurationValidatesRetentionPolicy(t *testing.T) {
	runController(t, func(mgr ctrl.Manager) error {
		return backupconfiguration.Setup(mgr, backupconfiguration.Options{Log: mgr.GetLogger()})
	})
	ctx := testContext(t)
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	const ns = testNamespace
	rp := &storagev1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "keep-platform", Namespace: "platform"},
		Spec: storagev1alpha1.RetentionPolicySpec{
			UsagePolicy:         &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromSame)}},
			SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To(int32(3))},
		}}
	bs := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "rp-storage", Namespace: ns},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3,
			S3: &storagev1alpha1.S3Spec{Endpoint: "http://127.0.0.1:1", Bucket: "b", Region: "us-east-1", SecretName: "none"}}}}
	app := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "rp-app", Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "rp-app"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "rp-app"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}},
	}}
	bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "rp-backup", Namespace: ns}, Spec: corev1alpha1.BackupConfigurationSpec{
		Target: &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: app.Name},
		Backends: []corev1alpha1.BackendReference{{Name: "s3", StorageRef: &storagev1alpha1.ObjectReference{Name: bs.Name},
			RetentionPolicy: &storagev1alpha1.ObjectReference{Namespace: rp.Namespace, Name: rp.Name}}},
		Sessions: []corev1alpha1.Session{{
			Name: "nightly", Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *"},
			Addon: &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{
				Name: "logical-backup", Params: &runtime.RawExtension{Raw: []byte(`{"paths": ["/var/lib/app"]}`)}}}},
			Repositories: []corev1alpha1.RepositoryInfo{{Name: "rp-app", Backend: "s3", Directory: "rp/app",
				EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"}}},
		}},
	}}
	for _, o := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "platform"}}, rp, bs, app} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	bs.Status.Phase = storagev1alpha1.BackupStorageReady
	if err := kube.Status().Update(ctx, bs); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, bc); err != nil {
		t.Fatal(err)
	}
	validation := func(status corev1.ConditionStatus, message string) func(ctx context.Context) (bool, string) {
		return func(ctx context.Context) (bool, string) {
			got := &corev1alpha1.BackupConfiguration{}
			if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), got); err != nil {
				return false, err.Error()
			}
			c := got.GetCondition(corev1alpha1.TypeValidationPassed)
			return c.Status == status && strings.Contains(c.Message, message) && c.ObservedGeneration == got.Generation, string(c.Status) + " " + string(c.Reason) + ": " + c.Message
		}
	}
	notAdmitted := `spec.backends[0].retentionPolicy: retentionpolicy platform/keep-platform may not be used from namespace "default"`
	eventually(t, 30*time.Second, "the configuration was not held back by a policy that does not admit its namespace", validation(corev1.ConditionFalse, notAdmitted))
	repos := &storagev1alpha1.RepositoryList{}
	if err := kube.List(ctx, repos, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, r := range repos.Items {
		if r.Name == "rp-app" {
			t.Errorf("repository %s was composed from a configuration that did not pass validation", r.Name)
		}
	}

	// The policy admits every namespace now: the watch re-validates.
	rp.Spec.UsagePolicy.AllowedNamespaces.From = ptr.To(storagev1alpha1.NamespacesFromAll)
	if err := kube.Update(ctx, rp); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the configuration did not pass validation once the policy admitted its namespace", validation(corev1.ConditionTrue, ""))

	if err := kube.Delete(ctx, rp); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the configuration was not held back once its policy was deleted", validation(corev1.ConditionFalse,
		`spec.backends[0].retentionPolicy: retentionpolicy platform/keep-platform not found`))
}
