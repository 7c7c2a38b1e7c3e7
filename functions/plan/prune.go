package plan

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/sessionjob"
)

// Mount points of the prune Job's credentials, as the backup Functions
// mount them.
const (
	pruneStorageSecretDir = "/etc/stashplane/storage"
	prunePasswordDir      = "/etc/stashplane/encryption"
	pruneScratchDir       = "/tmp/stashplane"
)

// LabelPruneOf on a prune Job names the Repository it prunes.
const LabelPruneOf = "storage.stashplane.io/prune-of"

// PruneJob is the Job that prunes every restic repository of a Repository
// (`stashplane prune-agent`), run as the ServiceAccount of the
// configuration that composed the Repository: it already reads the
// Repository and its storage. A storage in another namespace is reached
// with the configuration's copy of its credential Secret. The Job never
// retries on its own: a prune that failed (a backup held the restic lock)
// is started again by whoever asked for it.
func PruneJob(repo *storagev1alpha1.Repository, storage *storagev1alpha1.BackupStorage, image string) (*batchv1.Job, error) {
	config := repo.Labels[corev1alpha1.LabelInvokerName]
	if config == "" {
		return nil, fmt.Errorf("cannot prune repository %q: no backupconfiguration composed it (label %s), so there is no account to run as", repo.Name, corev1alpha1.LabelInvokerName)
	}
	st := describeStorage(storage.Namespace, storage.Name, map[string]*storagev1alpha1.BackupStorage{storage.Namespace + "/" + storage.Name: storage})
	st = st.From(repo.Namespace, naming.ConfigurationStorageSecret(config, storage.Namespace, storage.Name))
	secret := repo.Spec.EncryptionSecret.Name
	args := []string{"prune-agent",
		"--" + agentapi.FlagNamespace + "=" + repo.Namespace,
		"--" + agentapi.FlagStorage + "=" + storage.Namespace + "/" + storage.Name,
		"--" + agentapi.FlagRepository + "=" + repo.Name,
		"--" + agentapi.FlagPasswordFile + "=" + prunePasswordDir + "/" + storagev1alpha1.SecretKeyResticPassword,
		"--" + agentapi.FlagScratchDir + "=" + pruneScratchDir,
	}
	volumes := append(st.Volumes,
		corev1.Volume{Name: "encryption-secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}},
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	mounts := append(st.VolumeMounts,
		corev1.VolumeMount{Name: "encryption-secret", MountPath: prunePasswordDir, ReadOnly: true},
		corev1.VolumeMount{Name: "scratch", MountPath: pruneScratchDir})
	if st.SecretName != "" {
		args = append(args, "--"+agentapi.FlagStorageSecretDir+"="+pruneStorageSecretDir)
		volumes = append(volumes, corev1.Volume{Name: "storage-secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: st.SecretName}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "storage-secret", MountPath: pruneStorageSecretDir, ReadOnly: true})
	}
	labels := map[string]string{LabelPruneOf: repo.Name, corev1alpha1.LabelInvokerName: config}
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: naming.PruneJob(repo.Name), Namespace: repo.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			TTLSecondsAfterFinished: ptr.To[int32](24 * 3600),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: naming.ConfigurationServiceAccount(config),
					RestartPolicy:      corev1.RestartPolicyNever,
					Containers:         []corev1.Container{{Name: "prune", Image: image, Args: args, VolumeMounts: mounts}},
					Volumes:            volumes,
				},
			},
		},
	}
	sessionjob.Mark(job)
	return job, nil
}

// PruneBlocked says why a prune of repo may not start now, or "" when it
// may: a BackupSession of its configuration is Pending or Running, a
// restore or verification reads from it (its restic check takes no lock,
// and would find packs the prune removed missing), or its prune Job has
// not finished. It also returns the Repository's finished prune Job, if
// any, which must go before a new one takes its name.
func PruneBlocked(ctx context.Context, c client.Reader, repo *storagev1alpha1.Repository) (string, *batchv1.Job, error) {
	config := repo.Labels[corev1alpha1.LabelInvokerName]
	sessions := &corev1alpha1.BackupSessionList{}
	if err := c.List(ctx, sessions, client.InNamespace(repo.Namespace)); err != nil {
		return "", nil, fmt.Errorf("cannot list backupsessions: %w", err)
	}
	for _, s := range sessions.Items {
		if s.Spec.Invoker.Name == config && (s.Status.Phase == corev1alpha1.BackupSessionRunning || s.Status.Phase == corev1alpha1.BackupSessionPending) {
			return fmt.Sprintf("backupsession %q of its configuration is %s", s.Name, s.Status.Phase), nil, nil
		}
	}
	if reading, err := restoreReading(ctx, c, repo); err != nil || reading != "" {
		return reading, nil, err
	}
	old := &batchv1.Job{}
	err := c.Get(ctx, client.ObjectKey{Namespace: repo.Namespace, Name: naming.PruneJob(repo.Name)}, old)
	if kerrors.IsNotFound(err) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("cannot get prune job %q: %w", naming.PruneJob(repo.Name), err)
	}
	if !JobFinished(old) {
		return fmt.Sprintf("%s is still running", Holding(old)), nil, nil
	}
	return "", old, nil
}

// JobFinished says whether a Job completed or failed.
func JobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
