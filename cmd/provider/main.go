// Command provider runs Stashplane's controllers: the controller manager
// that the Crossplane provider package deploys.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/stashplane/stashplane/internal/provider"
)

func main() {
	var o provider.Options
	flag.StringVar(&o.MetricsAddress, "metrics-address", ":8080", "address of the Prometheus metrics endpoint (0 turns it off)")
	flag.BoolVar(&o.MetricsSecure, "metrics-secure", true, "serve the metrics over HTTPS to clients the API server authenticates and allows to get /metrics")
	flag.StringVar(&o.HealthAddress, "health-address", ":8081", "address of the health endpoints (0 turns them off)")
	flag.BoolVar(&o.LeaderElection, "leader-election", false, "take turns with other replicas")
	flag.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease")
	flag.DurationVar(&o.PollInterval, "poll-interval", time.Minute, "how often BackupStorages and Repositories are observed in the storage without a change")
	flag.DurationVar(&o.SnapshotPollInterval, "snapshot-poll-interval", 10*time.Minute, "how often each Snapshot's record is observed in the storage with no change to prompt it (its own changes are observed at once; thousands of Snapshots each read every minute cost requests to the storage)")
	flag.StringVar(&o.MemoryLimit, "memory-limit", provider.MemoryLimitAuto, "the Go runtime's soft memory limit: a quantity (200Mi), off, or auto (90% of the container's memory limit when it has one, unless GOMEMLIMIT is set)")
	flag.IntVar(&o.GCPercent, "gc-percent", provider.DefaultGCPercent, "the heap growth over what is live, in percent, before the garbage collector runs (GOGC, when set, wins; 0 keeps the runtime's, 100; -1 turns the collector off)")
	flag.StringVar(&o.PprofAddress, "pprof-address", "", "address to serve Go's profiles on (/debug/pprof/); none if empty")
	qps := flag.Float64("kube-api-qps", 50, "requests per second the provider may send the API server")
	flag.IntVar(&o.Burst, "kube-api-burst", 100, "requests the provider may send the API server in a burst above --kube-api-qps")
	flag.IntVar(&o.Workers, "workers", provider.DefaultWorkers, "BackupStorages, Repositories, Snapshots, BackupConfigurations, BackupSessions (and their retention) and RestoreSessions reconciled at a time, each kind (the sessions of one configuration and the other kinds: one at a time)")
	zo := zap.Options{}
	zo.BindFlags(flag.CommandLine)
	flag.Parse()
	o.QPS = float32(*qps)
	o.Log = zap.New(zap.UseFlagOptions(&zo)).WithValues("component", "provider")
	ctrl.SetLogger(o.Log)
	if err := run(o.Log, o); err != nil {
		fmt.Fprintln(os.Stderr, "provider:", err)
		os.Exit(1)
	}
}

func run(log logr.Logger, o provider.Options) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("cannot load cluster configuration: %w", err)
	}
	log.Info("starting")
	return provider.Run(ctrl.SetupSignalHandler(), cfg, o)
}
