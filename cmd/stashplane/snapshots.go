package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func snapshotsCommand() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "snapshots REPOSITORY",
		Short: "List a repository's Snapshots with their verification, restore time and bytes restored",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := kubeClient()
			if err != nil {
				return err
			}
			list := &storagev1alpha1.SnapshotList{}
			if err := c.List(cmd.Context(), list, client.InNamespace(namespace)); err != nil {
				return fmt.Errorf("cannot list snapshots: %w", err)
			}
			var snaps []storagev1alpha1.Snapshot
			for _, s := range list.Items {
				if s.Spec.Repository == args[0] {
					snaps = append(snaps, s)
				}
			}
			return writeSnapshots(cmd.OutOrStdout(), snaps, time.Now())
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace of the repository")
	return cmd
}

// writeSnapshots prints snaps as a table, newest first, the way kubectl
// prints objects: a column per field, "<none>" for what is not known yet.
func writeSnapshots(w io.Writer, snaps []storagev1alpha1.Snapshot, now time.Time) error {
	snaps = slices.Clone(snaps)
	slices.SortFunc(snaps, func(a, b storagev1alpha1.Snapshot) int {
		if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPHASE\tVERIFICATION\tSIZE\tRESTORE-TIME\tBYTES-RESTORED\tAGE")
	for _, s := range snaps {
		restored := ""
		if s.Status.BytesRestored > 0 {
			restored = storagev1alpha1.FormatSize(s.Status.BytesRestored)
		}
		age := "<unknown>"
		if !s.CreationTimestamp.IsZero() {
			age = duration.HumanDuration(now.Sub(s.CreationTimestamp.Time))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, orNone(string(s.Status.Phase)), orNone(string(s.Status.VerificationStatus)),
			orNone(s.Status.Size), orNone(s.Status.RestoreDuration), orNone(restored), age)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write the snapshot table: %w", err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
