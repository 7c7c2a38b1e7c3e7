package plan

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// LabelPasswordOf on a password Job names the Repository whose restic
// keys it lists, adds or removes.
const LabelPasswordOf = "storage.stashplane.io/password-of"

// LabelHoldFor on a Repository's prune Job says it is a hold, not a
// prune: a suspended Job in the prune Job's place, so that every backup,
// restore, verification and prune of the Repository waits, as for a
// prune, while its value (what holds it, such as "password") runs.
const LabelHoldFor = "storage.stashplane.io/hold-for"

// Keys of the Secret naming.PasswordSecret names.
const (
	// PasswordSecretNew is the password a change makes the Repository's.
	PasswordSecretNew = "new-password"
	// PasswordSecretPrevious is the password it replaces.
	PasswordSecretPrevious = "previous-password"
)

const newPasswordDir = "/var/run/stashplane/new-password"

// PasswordJob is the Job of `stashplane password`: the prune Job's pod,
// account, storage and password, running the agent's password-agent with
// action (list, add or remove). An add's new password is mounted from the
// Secret naming.PasswordSecret names. It is not labelled a prune: an add
// or a remove runs while HoldJob holds the Repository.
func PasswordJob(repo *storagev1alpha1.Repository, storage *storagev1alpha1.BackupStorage, image, action string) (*batchv1.Job, error) {
	job, err := PruneJob(repo, storage, image)
	if err != nil {
		return nil, err
	}
	job.Name = naming.PasswordJob(repo.Name)
	for _, labels := range []map[string]string{job.Labels, job.Spec.Template.Labels} {
		delete(labels, LabelPruneOf)
		labels[LabelPasswordOf] = repo.Name
	}
	job.Spec.TTLSecondsAfterFinished = ptr.To[int32](3600)
	spec := &job.Spec.Template.Spec
	c := &spec.Containers[0]
	c.Name, c.Args[0] = "password", "password-agent"
	c.Args = append(c.Args, "--action="+action)
	if action == "add" {
		c.Args = append(c.Args, "--new-password-file="+newPasswordDir+"/"+PasswordSecretNew)
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "new-password", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: naming.PasswordSecret(repo.Name), Items: []corev1.KeyToPath{{Key: PasswordSecretNew, Path: PasswordSecretNew}}}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "new-password", MountPath: newPasswordDir, ReadOnly: true})
	}
	return job, nil
}

// HoldJob is a suspended Job in the place of the Repository's prune Job,
// labelled with what holds the Repository (LabelHoldFor): the sessions
// and prunes that wait for a running prune wait for it, and its deletion
// lets them go. Suspended, it never runs; its container only prints the
// version, were it ever resumed.
func HoldJob(repo *storagev1alpha1.Repository, storage *storagev1alpha1.BackupStorage, image, holder string) (*batchv1.Job, error) {
	job, err := PruneJob(repo, storage, image)
	if err != nil {
		return nil, err
	}
	job.Labels[LabelHoldFor] = holder
	job.Spec.Suspend = ptr.To(true)
	job.Spec.TTLSecondsAfterFinished = nil
	spec := &job.Spec.Template.Spec
	spec.Containers[0].Name, spec.Containers[0].Args = "hold", []string{"version"}
	return job, nil
}

// Holding names the Job in a Repository's prune Job's place, for a
// message: a prune, or a hold and what holds it.
func Holding(job *batchv1.Job) string {
	if h := job.Labels[LabelHoldFor]; h != "" {
		return fmt.Sprintf("job %q (holding the repository for a %s change: stashplane %s)", job.Name, h, h)
	}
	return fmt.Sprintf("prune job %q", job.Name)
}
