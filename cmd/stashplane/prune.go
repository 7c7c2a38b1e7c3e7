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

// pruneAgentCommand runs inside the prune Job.
func pruneAgentCommand() *cobra.Command {
	cmd := agentCommand(agent.KindPrune, "Prune every restic repository of a Repository (runs inside prune Jobs)",
		func(ctx context.Context, r *agent.Runner) error { return r.Prune(ctx) })
	cmd.Use, cmd.Hidden = "prune-agent", true
	return cmd
}

// PruneResult is what `stashplane prune` prints.
type PruneResult struct {
	Repository    string       `json:"repository"`
	Namespace     string       `json:"namespace"`
	Job           string       `json:"job"`
	Succeeded     bool         `json:"succeeded"`
	LastPruneTime *metav1.Time `json:"lastPruneTime,omitempty"`
	Freed         string       `json:"freed,omitempty"`
	Message       string       `json:"message,omitempty"`
}

func pruneCommand() *cobra.Command {
	var namespace, output, image string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "prune REPOSITORY",
		Short: "Prune a Repository's restic repositories now, in a Job under restic's exclusive lock, and wait for it",
		Long: "Prune frees the data of restic snapshots that retention forgot. It refuses to start while a backup of the " +
			"Repository's configuration runs or another prune of the Repository does; a backup that starts during the " +
			"prune waits Pending (WaitingForPrune) until the prune Job ends.",
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
			res, err := prune(ctx, c, namespace, args[0], image)
			if err != nil {
				return err
			}
			if err := writePrune(cmd.OutOrStdout(), res, output); err != nil {
				return err
			}
			if !res.Succeeded {
				return fmt.Errorf("cannot prune repository %q: %s", res.Repository, res.Message)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the repository (default: the kubeconfig context's namespace)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: yaml or json (default: a table)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait for the prune")
	cmd.Flags().StringVar(&image, "image", version.Image(), "the stashplane image the prune Job runs")
	return cmd
}

// prune starts the Repository's prune Job, owned by the Repository, and
// waits for its end.
func prune(ctx context.Context, c client.Client, namespace, name, image string) (*PruneResult, error) {
	repo := &storagev1alpha1.Repository{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, repo); err != nil {
		return nil, fmt.Errorf("cannot get repository %s/%s: %w", namespace, name, err)
	}
	st := &storagev1alpha1.BackupStorage{}
	if err := c.Get(ctx, repo.StorageKey(), st); err != nil {
		return nil, fmt.Errorf("cannot get the backupstorage of repository %q: %w", name, err)
	}
	job, err := plan.PruneJob(repo, st, image)
	if err != nil {
		return nil, err
	}
	if err := pruneMayStart(ctx, c, repo, job); err != nil {
		return nil, err
	}
	res := &PruneResult{Repository: name, Namespace: namespace, Job: job.Name}
	if res.Succeeded, res.Message, err = runRepositoryJob(ctx, c, repo, job, "prune", ""); err != nil {
		return nil, err
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(repo), repo); err != nil {
		return nil, fmt.Errorf("cannot get repository %q: %w", name, err)
	}
	res.LastPruneTime, res.Freed = repo.Status.LastPruneTime, repo.Status.LastPruneFreed
	return res, nil
}

// pruneMayStart refuses a prune while a backup of the Repository's
// configuration runs or another prune of the Repository does; a finished
// prune Job of the Repository is removed first.
func pruneMayStart(ctx context.Context, c client.Client, repo *storagev1alpha1.Repository, job *batchv1.Job) error {
	blocked, old, err := plan.PruneBlocked(ctx, c, repo)
	if err != nil {
		return err
	}
	if blocked != "" {
		return fmt.Errorf("cannot prune repository %q now: %s", repo.Name, blocked)
	}
	if old == nil {
		return nil
	}
	if err := c.Delete(ctx, old, client.PropagationPolicy(metav1.DeletePropagationForeground)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cannot delete the finished prune job %q: %w", old.Name, err)
	}
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{})
		return kerrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}

// writePrune prints the result as a table, or as YAML or JSON.
func writePrune(w io.Writer, res *PruneResult, output string) error {
	if done, err := writeData(w, res, output); done {
		return err
	}
	result, at := "Failed", "<none>"
	if res.Succeeded {
		result = "Succeeded"
	}
	if res.LastPruneTime != nil {
		at = res.LastPruneTime.UTC().Format(time.RFC3339)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintf(tw, "REPOSITORY\tJOB\tRESULT\tLAST-PRUNE\tFREED\n%s\t%s\t%s\t%s\t%s\n", res.Repository, res.Job, result, at, orNone(res.Freed))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write the prune table: %w", err)
	}
	return nil
}
