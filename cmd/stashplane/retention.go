package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/retention"
)

func retentionCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Inspect how RetentionPolicies apply to a configuration's Snapshots",
	}
	cmd.AddCommand(retentionPlanCommand())
	return cmd
}

func retentionPlanCommand() *cobra.Command {
	var namespace, output string
	cmd := &cobra.Command{
		Use:   "plan CONFIGURATION",
		Short: "Show, per Repository, which rule keeps each Snapshot and what retention would remove now, changing nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			bc := &corev1alpha1.BackupConfiguration{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: namespace, Name: args[0]}, bc); err != nil {
				return fmt.Errorf("cannot get backupconfiguration %s/%s: %w", namespace, args[0], err)
			}
			plans, err := retention.Plan(cmd.Context(), c, bc, time.Now())
			if err != nil {
				return err
			}
			return writePlans(cmd.OutOrStdout(), plans, output)
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the configuration (default: the kubeconfig context's namespace)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: yaml or json (default: a table)")
	return cmd
}

// writePlans prints the plans as a table, one row per Snapshot, or as YAML
// or JSON.
func writePlans(w io.Writer, plans []retention.RepositoryPlan, output string) error {
	if done, err := writeData(w, plans, output); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tREPOSITORY\tPOLICY\tSNAPSHOT\tACTION\tRULES\tNOTE")
	for _, p := range plans {
		policy := "<none>"
		if p.Policy != nil {
			policy = p.Policy.Namespace + "/" + p.Policy.Name
		}
		switch {
		case p.Problem != "":
			fmt.Fprintf(tw, "%s\t%s\t%s\t<all>\tkeep\t<none>\tnot applied: %s\n", p.Session, p.Repository, policy, p.Problem)
			continue
		case p.Paused:
			fmt.Fprintf(tw, "%s\t%s\t%s\t<all>\tkeep\t<none>\tthe repository is paused\n", p.Session, p.Repository, policy)
			continue
		case p.Policy == nil:
			fmt.Fprintf(tw, "%s\t%s\t%s\t<all>\tkeep\t<none>\tno retention policy\n", p.Session, p.Repository, policy)
			continue
		}
		for _, d := range p.Decisions {
			action := "keep"
			switch {
			case d.Waits:
				action = "wait"
			case !d.Keep:
				action = "remove"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Session, p.Repository, policy, d.Name, action, strings.Join(d.Rules, ","), orNone(d.Note))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write the plan table: %w", err)
	}
	return nil
}
