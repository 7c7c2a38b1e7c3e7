package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/stashplane/stashplane/internal/provider"
)

// providerCommand runs Stashplane's controllers in this process, against
// the cluster of the kubeconfig (--kubeconfig, $KUBECONFIG or the
// in-cluster configuration): what the provider image runs, and what
// `stashplane dev up --provider process` starts beside the dev cluster.
func providerCommand() *cobra.Command {
	var (
		o          provider.Options
		kubeconfig string
	)
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "Run Stashplane's controllers against a cluster until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := ctrl.GetConfig()
			if kubeconfig != "" {
				cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
			}
			if err != nil {
				return fmt.Errorf("cannot load cluster configuration: %w", err)
			}
			o.Log = zap.New().WithValues("component", "provider")
			ctrl.SetLogger(o.Log)
			o.Log.Info("starting")
			return provider.Run(ctrl.SetupSignalHandler(), cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: $KUBECONFIG, then the in-cluster configuration)")
	f.StringVar(&o.MetricsAddress, "metrics-address", ":8080", "address of the Prometheus metrics endpoint (0 turns it off)")
	f.BoolVar(&o.MetricsSecure, "metrics-secure", true, "serve the metrics over HTTPS to clients the API server authenticates and allows to get /metrics")
	f.StringVar(&o.HealthAddress, "health-address", ":8081", "address of the health endpoints (0 turns them off)")
	f.BoolVar(&o.LeaderElection, "leader-election", false, "take turns with other replicas")
	f.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease")
	f.DurationVar(&o.PollInterval, "poll-interval", time.Minute, "how often BackupStorages and Repositories are observed in the storage without a change")
	f.DurationVar(&o.SnapshotPollInterval, "snapshot-poll-interval", 10*time.Minute, "how often each Snapshot's record is observed in the storage with no change to prompt it (its own changes are observed at once; thousands of Snapshots each read every minute cost requests to the storage)")
	f.StringVar(&o.MemoryLimit, "memory-limit", provider.MemoryLimitAuto, "the Go runtime's soft memory limit: a quantity (200Mi), off, or auto (90% of the container's memory limit when it has one, unless GOMEMLIMIT is set)")
	f.IntVar(&o.GCPercent, "gc-percent", provider.DefaultGCPercent, "the heap growth over what is live, in percent, before the garbage collector runs (GOGC, when set, wins; 0 keeps the runtime's, 100; -1 turns the collector off)")
	f.StringVar(&o.PprofAddress, "pprof-address", "", "address to serve Go's profiles on (/debug/pprof/); none if empty")
	f.Float32Var(&o.QPS, "kube-api-qps", 50, "requests per second the provider may send the API server")
	f.IntVar(&o.Burst, "kube-api-burst", 100, "requests the provider may send the API server in a burst above --kube-api-qps")
	f.IntVar(&o.Workers, "workers", provider.DefaultWorkers, "BackupStorages, Repositories, Snapshots, BackupConfigurations, BackupSessions (and their retention) and RestoreSessions reconciled at a time, each kind (the sessions of one configuration and the other kinds: one at a time)")
	f.BoolVar(&o.InstallBuiltins, "install-addons", true, "apply the built-in Addons and Functions at start (a Crossplane package installs only the provider's CRDs)")
	f.StringSliceVar(&o.ClusterDumpNamespaces, "cluster-dump-namespaces", nil, "namespaces whose BackupConfigurations may dump the whole cluster (the kubedump-addon without a target): such a dump reads every Secret; none by default")
	f.StringSliceVar(&o.AmbientNamespaces, "ambient-credential-namespaces", nil, "namespaces whose Jobs may use BackupStorages of other namespaces that name no credential Secret (their pods' cloud identity); none by default")
	return cmd
}
