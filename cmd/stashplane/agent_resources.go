package main

import (
	"context"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/resourcedump"
)

// targetFlags name the workload whose objects a task stores or recreates.
func targetFlags(fs *pflag.FlagSet, t *resourcedump.Ref) {
	fs.StringVar(&t.APIGroup, "target-group", "apps", "API group of the workload (empty for a PersistentVolumeClaim)")
	fs.StringVar(&t.Kind, "target-kind", "", "kind of the workload: Deployment, StatefulSet, DaemonSet or PersistentVolumeClaim")
	fs.StringVar(&t.Name, "target-name", "", "name of the workload")
}

// backupResourcesCommand is the workload-addon's manifest-backup: the
// workload's objects and what it needs, stored as a stream.
//
// With --target-kind=Namespace it is the kubedump-addon's: the objects of
// the namespace, filtered; with no target, of the whole cluster.
func backupResourcesCommand() *cobra.Command {
	var t resourcedump.Ref
	var f resourcedump.ClusterFilter
	cmd := agentSubcommand("resources", agent.KindBackupStream, "Store a workload's Kubernetes objects and what it needs to run, or a namespace's, in a component of a Snapshot (runs inside manifest-backup Jobs)",
		func(ctx context.Context, r *agent.Runner) error { return r.BackupObjects(ctx, t, f) })
	targetFlags(cmd.Flags(), &t)
	cmd.Flags().StringSliceVar(&f.Include, "include-resources", nil, "a namespace dump: the resources it holds, custom resources named plural.group (default all of "+strings.Join(resourcedump.NamespaceResources, ", ")+" and the custom resources the Job's account may list)")
	cmd.Flags().StringSliceVar(&f.Exclude, "exclude-resources", nil, "a namespace dump: resources it leaves out")
	cmd.Flags().StringVar(&f.Selector, "selector", "", "a namespace dump: the label selector its objects match (kubectl's -l syntax)")
	cmd.Flags().StringSliceVar(&f.IncludeNamespaces, "include-namespaces", nil, "a dump of the cluster (no --target-kind): the namespaces it holds (default all)")
	cmd.Flags().StringSliceVar(&f.ExcludeNamespaces, "exclude-namespaces", nil, "a dump of the cluster: namespaces it leaves out")
	cmd.Flags().BoolVar(&f.ClusterResources, "cluster-resources", true, "a dump of the cluster: hold the cluster-scoped "+strings.Join(resourcedump.ClusterResources, ", ")+" and cluster-scoped custom resources too")
	return cmd
}

// restoreResourcesCommand is the workload-addon's manifest-restore: the
// objects recreated in the RestoreSession's namespace, workloads started
// once their data is back.
func restoreResourcesCommand() *cobra.Command {
	var o agent.ObjectsRestore
	cmd := agentSubcommand("resources", agent.KindRestoreStream, "Recreate the Kubernetes objects of a component of resource manifests in the RestoreSession's namespace (runs inside manifest-restore Jobs)",
		func(ctx context.Context, r *agent.Runner) error { return r.RestoreObjects(ctx, o) })
	targetFlags(cmd.Flags(), &o.Target)
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "replace objects that exist (they are kept otherwise)")
	cmd.Flags().StringVar(&o.SourceNamespace, "source-namespace", "", "of a dump holding several namespaces (a dump of the cluster), the one whose objects to recreate")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", os.Getenv(agentapi.EnvObjectsDryRun) == "true", "only ask the API server to accept each object (a server-side dry run); make none (default from "+agentapi.EnvObjectsDryRun+")")
	return cmd
}
