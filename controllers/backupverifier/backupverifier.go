// Package backupverifier composes what a BackupVerifier's scheduler asks
// for: a CronJob whose pod runs `stashplane verify now --verifier`, which
// starts a BackupVerificationSession for the newest Succeeded Snapshot of
// every Repository linked to the verifier, and a ServiceAccount whose Role
// allows just that. A verifier without a scheduler has no CronJob (any
// earlier one is removed); it is run by hand with `stashplane verify now`.
// The verifier has no status, so failures are returned and logged.
package backupverifier

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/cachestore"
	"github.com/stashplane/stashplane/internal/schedule"
	"github.com/stashplane/stashplane/internal/tenancy"
	"github.com/stashplane/stashplane/internal/version"
)

const fieldOwner = client.FieldOwner("stashplane-backupverifier")

// Options configure the controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
}

// Setup adds the BackupVerifier controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	r := &reconciler{kube: mgr.GetClient(), image: version.Image(), events: mgr.GetEventRecorderFor("backupverifier"), log: o.Log.WithValues("controller", "backupverifier")}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("backupverifier").
		WithOptions(o.Controller).
		For(&corev1alpha1.BackupVerifier{}).
		Owns(&batchv1.CronJob{}, builder.OnlyMetadata).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up backupverifier controller: %w", err)
	}
	return nil
}

type reconciler struct {
	kube   client.Client
	image  string
	events record.EventRecorder
	log    logr.Logger
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	v := &corev1alpha1.BackupVerifier{}
	if err := r.kube.Get(ctx, req.NamespacedName, v); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if v.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	if v.Spec.Scheduler == nil {
		// Held as metadata, as the cache holds CronJobs.
		cj := cachestore.Metadata(batchv1.SchemeGroupVersion.WithKind("CronJob"))
		err := r.kube.Get(ctx, client.ObjectKey{Namespace: v.Namespace, Name: naming.VerifierCronJob(v.Name)}, cj)
		if err == nil && metav1.IsControlledBy(cj, v) {
			if err := r.kube.Delete(ctx, cj); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, fmt.Errorf("cannot delete cronjob %q: %w", cj.Name, err)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if _, err := schedule.Parse(v.Spec.Scheduler.Schedule); err != nil {
		// Nothing to retry until the verifier is edited: the CronJob
		// would be refused by the API server.
		r.events.Eventf(v, corev1.EventTypeWarning, "ScheduleInvalid", "spec.scheduler.schedule %q: %v; no verification is scheduled", v.Spec.Scheduler.Schedule, err)
		return ctrl.Result{}, nil
	}
	for _, o := range append(desiredAccess(v), desiredCronJob(v, r.image)) {
		if err := controllerutil.SetControllerReference(v, o, r.kube.Scheme()); err != nil {
			return ctrl.Result{}, fmt.Errorf("cannot own %s %q: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
		if err := r.kube.Patch(ctx, o, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
			return ctrl.Result{}, fmt.Errorf("cannot apply %s %q: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	return ctrl.Result{}, nil
}

func labels(v *corev1alpha1.BackupVerifier) map[string]string {
	return map[string]string{corev1alpha1.LabelBackupVerifier: v.Name}
}

// desiredAccess lets the CronJob's pod find the linked Repositories' newest
// Snapshots and start sessions, and nothing else.
func desiredAccess(v *corev1alpha1.BackupVerifier) []client.Object {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{corev1alpha1.Group}, Resources: []string{"backupconfigurations"}, Verbs: []string{"list"}},
		{APIGroups: []string{corev1alpha1.Group}, Resources: []string{"backupverificationsessions"}, Verbs: []string{"create", "get"}},
		{APIGroups: []string{storagev1alpha1.Group}, Resources: []string{"snapshots"}, Verbs: []string{"list"}},
	}
	return tenancy.Objects(naming.VerifierServiceAccount(v.Name), v.Namespace, labels(v), rules)
}

func desiredCronJob(v *corev1alpha1.BackupVerifier, image string) *batchv1.CronJob {
	sch := v.Spec.Scheduler
	l := labels(v)
	cj := &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: naming.VerifierCronJob(v.Name), Namespace: v.Namespace, Labels: l},
		Spec: schedule.CronJobSpec(*sch, schedule.Trigger{
			Labels:             l,
			ServiceAccountName: naming.VerifierServiceAccount(v.Name),
			Container: corev1.Container{
				Name:  "verify",
				Image: image,
				Args:  []string{"verify", "now", "--namespace=" + v.Namespace, "--verifier=" + v.Name},
			},
		}),
	}
	return cj
}
