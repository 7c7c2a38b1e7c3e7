package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/trigger"
)

func triggerCommand() *cobra.Command {
	var namespace, configuration, session string
	cmd := &cobra.Command{
		Use:   "trigger",
		Short: "Start a backup now: create the BackupSession of a configuration's session (what the session's CronJob runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.GetConfig()
			if err != nil {
				return fmt.Errorf("cannot load cluster configuration: %w", err)
			}
			s, err := provider.Scheme()
			if err != nil {
				return err
			}
			c, err := client.New(cfg, client.Options{Scheme: s})
			if err != nil {
				return fmt.Errorf("cannot make client: %w", err)
			}
			bc := &corev1alpha1.BackupConfiguration{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: namespace, Name: configuration}, bc); err != nil {
				return fmt.Errorf("cannot get backupconfiguration %s/%s: %w", namespace, configuration, err)
			}
			bs, err := trigger.Create(cmd.Context(), c, bc, session, time.Now())
			if err != nil {
				return err
			}
			fmt.Printf("backupsession %s/%s created\n", bs.Namespace, bs.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&namespace, "namespace", "default", "namespace of the BackupConfiguration")
	cmd.Flags().StringVar(&configuration, "configuration", "", "name of the BackupConfiguration (required)")
	cmd.Flags().StringVar(&session, "session", "", "name of the session to run (required)")
	_ = cmd.MarkFlagRequired("configuration")
	_ = cmd.MarkFlagRequired("session")
	return cmd
}
