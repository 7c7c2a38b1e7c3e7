package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/trigger"
)

// Triggered is one BackupSession `stashplane trigger` created.
type Triggered struct {
	Namespace     string `json:"namespace"`
	Configuration string `json:"configuration"`
	Session       string `json:"session"`
	BackupSession string `json:"backupSession"`
}

func triggerCommand() *cobra.Command {
	var namespace, configuration, session, output string
	cmd := &cobra.Command{
		Use:   "trigger [CONFIGURATION]",
		Short: "Start a backup now: create a BackupSession for each session of a configuration, or for --session only",
		Long: "Trigger creates the BackupSession of one run of a BackupConfiguration's session, as the session's CronJob " +
			"does on schedule. With no --session it starts every session of the configuration. The configuration is " +
			"named as the argument or with --configuration (the CronJob's form).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			name, err := oneName(args, configuration, "configuration")
			if err != nil {
				return err
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			got, err := triggerSessions(cmd.Context(), c, namespace, name, session, time.Now())
			if err != nil {
				return err
			}
			return writeTriggered(cmd.OutOrStdout(), got, output)
		},
	}
	namespaceFlag(cmd, &namespace, "BackupConfiguration")
	outputFlag(cmd, &output)
	cmd.Flags().StringVar(&configuration, "configuration", "", "name of the BackupConfiguration (or give it as the argument)")
	cmd.Flags().StringVar(&session, "session", "", "run only this session of the configuration (default: every session)")
	return cmd
}

// oneName is the object a command acts on: its argument or its flag, not
// both, not neither.
func oneName(args []string, flag, what string) (string, error) {
	switch {
	case len(args) == 1 && flag != "" && args[0] != flag:
		return "", fmt.Errorf("cannot tell which %s: the argument %q and --%s=%q differ", what, args[0], what, flag)
	case len(args) == 1:
		return args[0], nil
	case flag != "":
		return flag, nil
	}
	return "", fmt.Errorf("cannot tell which %s: name it as the argument or with --%s", what, what)
}

// triggerSessions creates a BackupSession for session of the configuration,
// or for each of its sessions when session is empty.
func triggerSessions(ctx context.Context, c client.Client, namespace, name, session string, now time.Time) ([]Triggered, error) {
	bc := &corev1alpha1.BackupConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, bc); err != nil {
		return nil, fmt.Errorf("cannot get backupconfiguration %s/%s: %w", namespace, name, err)
	}
	var sessions []string
	for _, s := range bc.Spec.Sessions {
		if session == "" || s.Name == session {
			sessions = append(sessions, s.Name)
		}
	}
	if len(sessions) == 0 {
		if session == "" {
			return nil, fmt.Errorf("cannot trigger backupconfiguration %q: it has no sessions", name)
		}
		return nil, fmt.Errorf("cannot find session %q in backupconfiguration %q", session, name)
	}
	var out []Triggered
	var errs []error
	for _, s := range sessions {
		bs, err := trigger.Create(ctx, c, bc, s, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Triggered{Namespace: bs.Namespace, Configuration: name, Session: s, BackupSession: bs.Name})
	}
	return out, errors.Join(errs...)
}

func writeTriggered(w io.Writer, got []Triggered, output string) error {
	if done, err := writeData(w, got, output); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "BACKUPSESSION\tCONFIGURATION\tSESSION")
	for _, t := range got {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.BackupSession, t.Configuration, t.Session)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write the trigger table: %w", err)
	}
	return nil
}
