package plan

import (
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/agentapi"
)

// LabelDownloadOf on a download Job names the Snapshot it serves.
const LabelDownloadOf = "storage.stashplane.io/download-of"

// DownloadJob is the Job `stashplane download` streams a Snapshot's
// component from: the prune Job's pod, account, storage and password,
// whose container only waits (download-agent --hold) until the command
// has exec'd DownloadCommand in it, or hold has passed. It is not labelled
// a prune, so nothing waits for it as for one; restic's lock keeps a prune
// from removing what it reads.
func DownloadJob(repo *storagev1alpha1.Repository, storage *storagev1alpha1.BackupStorage, snap *storagev1alpha1.Snapshot, component, image string, hold time.Duration) (*batchv1.Job, error) {
	if repo.Labels[corev1alpha1.LabelInvokerName] == "" {
		return nil, fmt.Errorf("cannot download from repository %q: no backupconfiguration of this cluster composed it (label %s), so no account may read its storage here; restore it with a RestoreSession instead", repo.Name, corev1alpha1.LabelInvokerName)
	}
	job, err := PruneJob(repo, storage, image)
	if err != nil {
		return nil, err
	}
	job.Name = naming.DownloadJob(snap.Name, component)
	for _, labels := range []map[string]string{job.Labels, job.Spec.Template.Labels} {
		delete(labels, LabelPruneOf)
		labels[LabelDownloadOf] = snap.Name
	}
	job.Spec.ActiveDeadlineSeconds = ptr.To(int64((hold + time.Minute).Seconds()))
	job.Spec.TTLSecondsAfterFinished = ptr.To[int32](600)
	c := &job.Spec.Template.Spec.Containers[0]
	c.Name = "download"
	c.Args[0] = "download-agent"
	c.Args = append(c.Args, "--"+agentapi.FlagSnapshot+"="+snap.Name, "--"+agentapi.FlagComponent+"="+component, "--hold="+hold.String())
	return job, nil
}

// DownloadCommand is what `stashplane download` execs in the download
// Job's container: the agent with the Job's own flags, writing the tar
// archive to standard output instead of waiting.
func DownloadCommand(job *batchv1.Job, binary string) []string {
	var args []string
	for _, a := range job.Spec.Template.Spec.Containers[0].Args[1:] {
		if !strings.HasPrefix(a, "--hold=") {
			args = append(args, a)
		}
	}
	return append([]string{binary, "download-agent", "--stream"}, args...)
}
