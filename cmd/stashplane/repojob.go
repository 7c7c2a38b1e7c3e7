package main

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// runRepositoryJob creates job (what: "prune", "unlock"), controlled by
// repo, and waits until it completes or fails. A failed Job is no error:
// its message says where its log is (hint, before kubectl, names another
// place to look).
func runRepositoryJob(ctx context.Context, c client.Client, repo *storagev1alpha1.Repository, job *batchv1.Job, what, hint string) (bool, string, error) {
	if err := controllerutil.SetControllerReference(repo, job, c.Scheme()); err != nil {
		return false, "", fmt.Errorf("cannot own %s job %q: %w", what, job.Name, err)
	}
	if err := c.Create(ctx, job); err != nil {
		return false, "", fmt.Errorf("cannot create %s job %q: %w", what, job.Name, err)
	}
	var succeeded bool
	var msg string
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		for _, cond := range job.Status.Conditions {
			if cond.Status != corev1.ConditionTrue {
				continue
			}
			switch cond.Type {
			case batchv1.JobComplete:
				succeeded = true
				return true, nil
			case batchv1.JobFailed:
				msg = fmt.Sprintf("%s job %q failed (%s); see %skubectl logs -n %s job/%s", what, job.Name, cond.Reason, hint, job.Namespace, job.Name)
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return false, "", fmt.Errorf("cannot wait for %s job %q: %w", what, job.Name, err)
	}
	return succeeded, msg, nil
}
