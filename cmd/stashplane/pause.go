package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// Paused is what `stashplane pause` and `resume` print.
type Paused struct {
	Namespace     string `json:"namespace"`
	Configuration string `json:"configuration"`
	Paused        bool   `json:"paused"`
	// Changed is false when the configuration already was as asked.
	Changed bool `json:"changed"`
}

// pauseCommand sets (pause) or clears (resume) a configuration's
// spec.paused.
func pauseCommand(pause bool) *cobra.Command {
	var namespace, output string
	use, short := "resume CONFIGURATION", "Resume a paused BackupConfiguration: its CronJobs run again and its sessions start"
	if pause {
		use, short = "pause CONFIGURATION", "Pause a BackupConfiguration: its CronJobs are suspended and every session of it, made by hand too, is Skipped"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + ". It sets the configuration's spec.paused; a backup already running runs to its end. " +
			"Its Repositories, Snapshots and verifiers are not changed.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			res, err := setPaused(cmd.Context(), c, namespace, args[0], pause)
			if err != nil {
				return err
			}
			return writePaused(cmd.OutOrStdout(), res, output)
		},
	}
	namespaceFlag(cmd, &namespace, "BackupConfiguration")
	outputFlag(cmd, &output)
	return cmd
}

// setPaused sets the configuration's spec.paused to paused with a merge
// patch that holds the resourceVersion read, so a concurrent writer is
// not overwritten.
func setPaused(ctx context.Context, c client.Client, namespace, name string, paused bool) (*Paused, error) {
	bc := &corev1alpha1.BackupConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, bc); err != nil {
		return nil, fmt.Errorf("cannot get backupconfiguration %s/%s: %w", namespace, name, err)
	}
	res := &Paused{Namespace: namespace, Configuration: name, Paused: paused}
	if bc.Spec.Paused == paused {
		return res, nil
	}
	orig := bc.DeepCopy()
	bc.Spec.Paused = paused
	if err := c.Patch(ctx, bc, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return nil, fmt.Errorf("cannot patch backupconfiguration %s/%s: %w", namespace, name, err)
	}
	res.Changed = true
	return res, nil
}

func writePaused(w io.Writer, res *Paused, output string) error {
	if done, err := writeData(w, res, output); done {
		return err
	}
	state := "paused"
	if !res.Paused {
		state = "resumed"
	}
	if !res.Changed {
		state = "already " + state
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintf(tw, "BACKUPCONFIGURATION\tSTATE\n%s\t%s\n", res.Configuration, state)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write the pause table: %w", err)
	}
	return nil
}
