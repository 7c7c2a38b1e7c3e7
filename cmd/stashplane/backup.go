package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/stdr"
	"github.com/spf13/cobra"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/kuberetry"
)

func backupCommand() *cobra.Command {
	cmd := agentCommand(agent.KindBackup, "Back up paths into a component of a Snapshot (runs inside backup Jobs)",
		func(ctx context.Context, r *agent.Runner) error { return r.Backup(ctx) })
	cmd.AddCommand(backupPostgresCommand(), backupResourcesCommand())
	return cmd
}

func restoreCommand() *cobra.Command {
	cmd := agentCommand(agent.KindRestore, "Restore a component of a Snapshot (runs inside restore Jobs); a user restores with `restore snapshot`",
		func(ctx context.Context, r *agent.Runner) error { return r.Restore(ctx) })
	cmd.AddCommand(restorePostgresCommand(), restoreResourcesCommand(), restoreSnapshotCommand())
	return cmd
}

// agentCommand is a subcommand of the in-Job agent: it parses the flags,
// builds an in-cluster client and hands over to package agent.
func agentCommand(kind, short string, run func(context.Context, *agent.Runner) error) *cobra.Command {
	return agentSubcommand(kind, kind, short, run)
}

// agentSubcommand is an agent subcommand named use that runs with the
// flags of kind.
func agentSubcommand(use, kind, short string, run func(context.Context, *agent.Runner) error) *cobra.Command {
	r := &agent.Runner{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := r.Options.Validate(kind); err != nil {
				return &agent.ExitError{Code: agent.ExitNotRecorded, Err: err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			kube, disco, err := inClusterClient()
			if err != nil {
				return &agent.ExitError{Code: agent.ExitNotRecorded, Err: err}
			}
			// restic's temporary packs go to the scratch volume, not the
			// container's root file system.
			tmp := filepath.Join(r.Options.ScratchDir, "tmp")
			if err := os.MkdirAll(tmp, 0o700); err != nil {
				return &agent.ExitError{Code: agent.ExitNotRecorded, Err: fmt.Errorf("cannot make the scratch directory: %w", err)}
			}
			_ = os.Setenv("TMPDIR", tmp)
			r.Kube, r.Discovery = kube, disco
			r.Log = stdr.New(log.New(os.Stderr, "", log.LstdFlags)).WithName(kind)
			return run(ctx, r)
		},
	}
	r.Options.AddFlags(cmd.Flags(), kind)
	return cmd
}

func inClusterClient() (client.Client, discovery.DiscoveryInterface, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot configure the kubernetes client: %w", err)
	}
	// An agent's report must survive an API server restart: its run
	// cannot be redone for a lost write.
	kuberetry.Wrap(cfg, 2*time.Minute)
	s := runtime.NewScheme()
	if err := storagev1alpha1.AddToScheme(s); err != nil {
		return nil, nil, fmt.Errorf("cannot build the scheme: %w", err)
	}
	// The pod that holds a restic lock (internal/agent), and the objects
	// a task of resource manifests stores and recreates, whose schema a
	// verification checks those its account may not make against
	// (CustomResourceDefinitions among them).
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, nil, fmt.Errorf("cannot build the scheme: %w", err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, nil, fmt.Errorf("cannot build the scheme: %w", err)
	}
	kube, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot create the kubernetes client: %w", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot create the discovery client: %w", err)
	}
	return kube, disco, nil
}
