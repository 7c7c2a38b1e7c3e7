package plan

import (
	batchv1 "k8s.io/api/batch/v1"

	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// LabelUnlockOf on an unlock Job names the Repository whose stale locks
// it removes.
const LabelUnlockOf = "storage.stashplane.io/unlock-of"

// UnlockJob is the Job that removes the stale restic locks of every
// restic repository of repo (`stashplane unlock`): the prune Job's pod,
// account, storage and password, running the agent's unlock-agent instead,
// and not labelled a prune, so nothing waits for it as for one.
func UnlockJob(repo *storagev1alpha1.Repository, storage *storagev1alpha1.BackupStorage, image string) (*batchv1.Job, error) {
	job, err := PruneJob(repo, storage, image)
	if err != nil {
		return nil, err
	}
	job.Name = naming.UnlockJob(repo.Name)
	for _, labels := range []map[string]string{job.Labels, job.Spec.Template.Labels} {
		delete(labels, LabelPruneOf)
		labels[LabelUnlockOf] = repo.Name
	}
	c := &job.Spec.Template.Spec.Containers[0]
	c.Name, c.Args[0] = "unlock", "unlock-agent"
	return job, nil
}
