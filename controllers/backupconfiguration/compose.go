package backupconfiguration

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"slices"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/schedule"
	"github.com/stashplane/stashplane/internal/tenancy"
)

// What a validated configuration composes: a Repository per repository
// entry (labelled with the configuration but not owned by it, so that
// deleting the configuration keeps the backups), one ServiceAccount with just the rights its triggers and backup
// Jobs need, and a CronJob per session.

func labels(bc *corev1alpha1.BackupConfiguration) map[string]string {
	return map[string]string{corev1alpha1.LabelInvokerName: bc.Name}
}

func desiredRepositories(bc *corev1alpha1.BackupConfiguration) []*storagev1alpha1.Repository {
	backends := map[string]corev1alpha1.BackendReference{}
	for _, b := range bc.Spec.Backends {
		backends[b.Name] = b
	}
	var out []*storagev1alpha1.Repository
	for _, s := range bc.Spec.Sessions {
		for _, r := range s.Repositories {
			ref := backends[r.Backend].Storage()
			if ref.Namespace == "" {
				ref.Namespace = bc.Namespace
			}
			secret := r.EncryptionSecret
			if secret.Namespace == "" {
				secret.Namespace = bc.Namespace
			}
			repo := &storagev1alpha1.Repository{
				TypeMeta:   metav1.TypeMeta{APIVersion: storagev1alpha1.GroupVersion.String(), Kind: storagev1alpha1.RepositoryKind},
				ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: bc.Namespace, Labels: labels(bc)},
				Spec: storagev1alpha1.RepositorySpec{
					StorageRef: ref, Path: r.RepositoryPath(), DeletionPolicy: r.DeletionPolicy.Repository(), EncryptionSecret: secret,
				},
			}
			if t := bc.Spec.Target; t != nil {
				app := *t
				if app.Namespace == "" {
					app.Namespace = bc.Namespace
				}
				repo.Spec.AppRef = &app
			}
			out = append(out, repo)
		}
	}
	return out
}

// desiredAccess is the ServiceAccount, Role and RoleBinding: read the
// configuration and create its sessions (triggers); read the storage
// objects and report components (backup Jobs); and, when a task stores
// resource manifests (readsObjects), read the objects it stores.
func desiredAccess(bc *corev1alpha1.BackupConfiguration, readsObjects bool) []client.Object {
	rules := append([]rbacv1.PolicyRule{
		{APIGroups: []string{corev1alpha1.Group}, Resources: []string{"backupconfigurations"}, Verbs: []string{"get"}},
		{APIGroups: []string{corev1alpha1.Group}, Resources: []string{"backupsessions"}, Verbs: []string{"create", "get"}},
	}, agentapi.Rules()...)
	if readsObjects {
		rules = append(rules, agentapi.ObjectReadRules()...)
	}
	return tenancy.Objects(naming.ConfigurationServiceAccount(bc.Name), bc.Namespace, labels(bc), rules, jobAccounts(bc)...)
}

// jobAccounts are the ServiceAccounts the sessions' jobTemplates run the
// backup Jobs as instead of the configuration's own: they are granted
// what it is, or their Jobs could not read the storage or report.
func jobAccounts(bc *corev1alpha1.BackupConfiguration) []string {
	var out []string
	for i := range bc.Spec.Sessions {
		if sa := bc.Spec.Sessions[i].Addon.ServiceAccount(); sa != "" && !slices.Contains(out, sa) {
			out = append(out, sa)
		}
	}
	return out
}

func desiredCronJobs(bc *corev1alpha1.BackupConfiguration, image string) []*batchv1.CronJob {
	var out []*batchv1.CronJob
	for _, s := range bc.Spec.Sessions {
		sch := s.Scheduler
		l := labels(bc)
		l[corev1alpha1.LabelSession] = s.Name
		cj := &batchv1.CronJob{
			TypeMeta:   metav1.TypeMeta{APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "CronJob"},
			ObjectMeta: metav1.ObjectMeta{Name: naming.ConfigurationCronJob(bc.Name, s.Name), Namespace: bc.Namespace, Labels: l},
			Spec: schedule.CronJobSpec(*sch, schedule.Trigger{
				Labels:             l,
				ServiceAccountName: naming.ConfigurationServiceAccount(bc.Name),
				Suspend:            bc.Spec.Paused,
				Container: corev1.Container{
					Name:  "trigger",
					Image: image,
					Args: []string{"trigger", "--namespace=" + bc.Namespace,
						"--configuration=" + bc.Name, "--session=" + s.Name},
				},
			}),
		}
		out = append(out, cj)
	}
	return out
}
