package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func snapshotsCommand() *cobra.Command {
	var namespace, output string
	cmd := &cobra.Command{
		Use:   "snapshots REPOSITORY",
		Short: "List a repository's Snapshots with their verification, restore time and bytes restored",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			snaps, err := repositorySnapshots(cmd.Context(), c, namespace, args[0])
			if err != nil {
				return err
			}
			repo := &storagev1alpha1.Repository{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: namespace, Name: args[0]}, repo); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("cannot get repository %q: %w", args[0], err)
			}
			if done, err := writeData(cmd.OutOrStdout(), snaps, output); done {
				return err
			}
			return writeSnapshots(cmd.OutOrStdout(), snaps, repo, time.Now())
		},
	}
	namespaceFlag(cmd, &namespace, "repository")
	outputFlag(cmd, &output)
	return cmd
}

// orContextNamespace is ns, or when it is empty the namespace of the
// kubeconfig's current context, as kubectl's -n works.
func orContextNamespace(ns string) (string, error) {
	if ns != "" {
		return ns, nil
	}
	return kubeNamespace(clientcmd.NewDefaultClientConfigLoadingRules())
}

// kubeNamespace is the namespace of the kubeconfig's current context, as
// kubectl uses it: "default" when the context names none.
func kubeNamespace(rules *clientcmd.ClientConfigLoadingRules) (string, error) {
	ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).Namespace()
	if err != nil {
		return "", fmt.Errorf("cannot read the namespace of the kubeconfig context: %w", err)
	}
	return ns, nil
}

// repositorySnapshots lists the Snapshots of repository in namespace,
// selected by their repository label on the server.
func repositorySnapshots(ctx context.Context, c client.Reader, namespace, repository string) ([]storagev1alpha1.Snapshot, error) {
	list := &storagev1alpha1.SnapshotList{}
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{storagev1alpha1.LabelRepository: repository}); err != nil {
		return nil, fmt.Errorf("cannot list snapshots of repository %q: %w", repository, err)
	}
	var snaps []storagev1alpha1.Snapshot
	for _, s := range list.Items {
		if s.Spec.Repository == repository {
			snaps = append(snaps, s)
		}
	}
	return snaps, nil
}

// writeSnapshots prints snaps as a table, newest first, the way kubectl
// prints objects: a column per field, "<none>" for what is not known yet.
// A verdict given before the Repository's last prune that freed data is
// marked "*" and explained below the table.
func writeSnapshots(w io.Writer, snaps []storagev1alpha1.Snapshot, repo *storagev1alpha1.Repository, now time.Time) error {
	snaps = slices.Clone(snaps)
	slices.SortFunc(snaps, func(a, b storagev1alpha1.Snapshot) int {
		if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPHASE\tVERIFICATION\tSIZE\tRESTORE-TIME\tBYTES-RESTORED\tAGE")
	stale := false
	for _, s := range snaps {
		restored := ""
		if s.Status.BytesRestored > 0 {
			restored = storagev1alpha1.FormatSize(s.Status.BytesRestored)
		}
		age := "<unknown>"
		if !s.CreationTimestamp.IsZero() {
			age = duration.HumanDuration(now.Sub(s.CreationTimestamp.Time))
		}
		verdict := orNone(string(s.Status.VerificationStatus))
		if storagev1alpha1.VerdictBeforePrune(repo, &s) {
			verdict += "*"
			stale = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, orNone(string(s.Status.Phase)), verdict,
			orNone(s.Status.Size), orNone(s.Status.RestoreDuration), orNone(restored), age)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write the snapshot table: %w", err)
	}
	if stale {
		_, err := fmt.Fprintf(w, "* verdict given before the last prune (%s, freed %s); the next verification checks the Snapshot again\n",
			repo.Status.LastPruneTime.UTC().Format(time.RFC3339), repo.Status.LastPruneFreed)
		return err
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
