// Command stashplane is Stashplane's command-line tool: it runs the dev
// cluster sandbox and, inside backup Jobs, the agent that moves data.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "stashplane:", err)
		// The agent's subcommands say which exit code a failure is.
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			os.Exit(coded.ExitCode())
		}
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "stashplane",
		Short:         "Back up, restore and verify Kubernetes workloads",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(devCommand(), storageCommand(), triggerCommand(), verifyCommand())
	root.AddCommand(renderCommand(), snapshotsCommand(), retentionCommand(), pruneCommand(), pruneAgentCommand())
	root.AddCommand(pauseCommand(true), pauseCommand(false), debugCommand(), unlockCommand(), unlockAgentCommand(), passwordCommand(), passwordAgentCommand())
	root.AddCommand(backupCommand(), restoreCommand(), providerCommand(), downloadCommand(), downloadAgentCommand())
	return root
}
