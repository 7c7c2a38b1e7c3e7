package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/verify"
)

func verifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove backups restorable with BackupVerificationSessions",
	}
	var namespace, verifier, output string
	var timeout time.Duration
	now := &cobra.Command{
		Use:   "now [REPOSITORY]",
		Short: "Verify the newest Succeeded Snapshot of a repository, or of every repository linked to --verifier (what a verifier's CronJob runs)",
		Long: "With a REPOSITORY, create a BackupVerificationSession for its newest Succeeded Snapshot and " +
			"follow it to the verdict; the command fails when the verification does. With --verifier and no " +
			"REPOSITORY, create one session per repository linked to that verifier and return.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && verifier == "" {
				return errors.New("cannot verify: name a repository or a --verifier")
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			repo := ""
			if len(args) == 1 {
				repo = args[0]
			}
			// With -o the sessions are printed once followed, so the
			// output is one document.
			progress := cmd.OutOrStdout()
			if output != "" {
				progress = cmd.ErrOrStderr()
			}
			sessions, err := verify.Now(cmd.Context(), c, namespace, verifier, repo, time.Now())
			for _, s := range sessions {
				fmt.Fprintf(progress, "backupverificationsession %s/%s created for snapshot %s\n", s.Namespace, s.Name, s.Spec.Snapshot)
			}
			if err != nil {
				return err
			}
			if repo != "" {
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				defer cancel()
				followed, ferr := follow(ctx, c, sessions[0], progress)
				if followed != nil {
					sessions[0] = followed
				}
				if ferr != nil {
					return ferr
				}
			}
			_, err = writeData(cmd.OutOrStdout(), sessions, output)
			return err
		},
	}
	namespaceFlag(now, &namespace, "repositories and verifier")
	outputFlag(now, &output)
	now.Flags().StringVar(&verifier, "verifier", "", "BackupVerifier whose linked repositories are verified")
	now.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "how long to follow a repository's verification")
	cmd.AddCommand(now, verifyPostgresCommand())
	return cmd
}

// follow waits for a session's outcome, prints it to w and returns the
// session as it ended.
func follow(ctx context.Context, c client.Client, s *corev1alpha1.BackupVerificationSession, w io.Writer) (*corev1alpha1.BackupVerificationSession, error) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		got := &corev1alpha1.BackupVerificationSession{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(s), got); err == nil {
			switch got.Status.Phase {
			case corev1alpha1.VerificationSessionSucceeded, corev1alpha1.VerificationSessionSkipped:
				fmt.Fprintf(w, "%s: %s (restore time %s)\n", got.Name, got.Status.Phase, got.Status.RestoreDuration)
				return got, nil
			case corev1alpha1.VerificationSessionFailed:
				return got, fmt.Errorf("verification %s failed: %s", got.Name, failureOf(got))
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cannot follow backupverificationsession %q: %w", s.Name, ctx.Err())
		case <-tick.C:
		}
	}
}

func failureOf(s *corev1alpha1.BackupVerificationSession) string {
	for _, c := range s.Status.Conditions {
		if c.Status == "False" && c.Message != "" {
			return fmt.Sprintf("%s: %s", c.Reason, c.Message)
		}
	}
	return string(s.Status.Phase)
}
