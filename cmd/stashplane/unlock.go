package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/version"
)

// unlockAgentCommand runs inside the unlock Job, with the prune Job's
// flags.
func unlockAgentCommand() *cobra.Command {
	cmd := agentSubcommand("unlock-agent", agent.KindPrune, "Remove the stale locks of every restic repository of a Repository (runs inside unlock Jobs)",
		func(ctx context.Context, r *agent.Runner) error { return r.Unlock(ctx) })
	cmd.Hidden = true
	return cmd
}

// UnlockResult is what `stashplane unlock` prints.
type UnlockResult struct {
	Repository string `json:"repository"`
	Namespace  string `json:"namespace"`
	Job        string `json:"job"`
	Succeeded  bool   `json:"succeeded"`
	Message    string `json:"message,omitempty"`
}

func unlockCommand() *cobra.Command {
	var namespace, output, image string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "unlock REPOSITORY",
		Short: "Remove the stale restic locks of a Repository, in a Job in the cluster, and wait for it",
		Long: "Unlock removes the locks that runs which no longer exist left in a Repository's restic repositories: " +
			"a killed prune pod's exclusive lock, and what restic deems stale. It refuses to start while a backup, " +
			"prune, restore or verification uses the Repository, and a live run's lock is never removed. The Job runs " +
			"under the Repository's configuration's ServiceAccount with the storage's credentials; this machine never " +
			"reads them.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := unlock(ctx, c, namespace, args[0], image)
			if err != nil {
				return err
			}
			if err := writeUnlock(cmd.OutOrStdout(), res, output); err != nil {
				return err
			}
			if !res.Succeeded {
				return fmt.Errorf("cannot unlock repository %q: %s", res.Repository, res.Message)
			}
			return nil
		},
	}
	namespaceFlag(cmd, &namespace, "repository")
	outputFlag(cmd, &output)
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the unlock")
	cmd.Flags().StringVar(&image, "image", version.Image(), "the stashplane image the unlock Job runs")
	return cmd
}

// unlock starts the Repository's unlock Job, owned by the Repository, once
// nothing uses the Repository, and waits for its end.
func unlock(ctx context.Context, c client.Client, namespace, name, image string) (*UnlockResult, error) {
	repo := &storagev1alpha1.Repository{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, repo); err != nil {
		return nil, fmt.Errorf("cannot get repository %s/%s: %w", namespace, name, err)
	}
	busy, err := plan.RepositoryBusy(ctx, c, repo)
	if err != nil {
		return nil, err
	}
	if busy != "" {
		return nil, fmt.Errorf("cannot unlock repository %q now: %s; its locks are live", name, busy)
	}
	st := &storagev1alpha1.BackupStorage{}
	if err := c.Get(ctx, repo.StorageKey(), st); err != nil {
		return nil, fmt.Errorf("cannot get the backupstorage of repository %q: %w", name, err)
	}
	job, err := plan.UnlockJob(repo, st, image)
	if err != nil {
		return nil, err
	}
	if err := removeFinishedJob(ctx, c, job); err != nil {
		return nil, err
	}
	res := &UnlockResult{Repository: name, Namespace: namespace, Job: job.Name}
	if res.Succeeded, res.Message, err = runRepositoryJob(ctx, c, repo, job, "unlock", "stashplane debug or "); err != nil {
		return nil, err
	}
	return res, nil
}

// removeFinishedJob deletes a finished Job of job's name, so a new one
// can take it, and refuses while one runs.
func removeFinishedJob(ctx context.Context, c client.Client, job *batchv1.Job) error {
	old := &batchv1.Job{}
	err := c.Get(ctx, client.ObjectKeyFromObject(job), old)
	switch {
	case kerrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("cannot get job %q: %w", job.Name, err)
	case !plan.JobFinished(old):
		return fmt.Errorf("cannot start job %q: one of that name is running", job.Name)
	}
	if err := c.Delete(ctx, old, client.PropagationPolicy(metav1.DeletePropagationForeground)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cannot delete the finished job %q: %w", old.Name, err)
	}
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{})
		return kerrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}

func writeUnlock(w io.Writer, res *UnlockResult, output string) error {
	if done, err := writeData(w, res, output); done {
		return err
	}
	result := "Failed"
	if res.Succeeded {
		result = "Succeeded"
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintf(tw, "REPOSITORY\tJOB\tRESULT\n%s\t%s\t%s\n", res.Repository, res.Job, result)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write the unlock table: %w", err)
	}
	return nil
}
