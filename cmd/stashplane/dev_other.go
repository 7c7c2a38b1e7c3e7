//go:build !linux

package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// devCommand, away from Linux, is there to say why there is no dev
// cluster: its node runs each container as a Linux process in Linux
// namespaces. Every other command works against any cluster from here.
func devCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run the dev cluster (Linux only)",
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("cannot run the dev cluster on %s: its node runs pods as Linux processes; run `stashplane dev` on a Linux machine or point kubectl's context at a cluster", runtime.GOOS)
		},
	}
}
