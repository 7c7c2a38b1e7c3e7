// Package provider runs Stashplane's controllers in one controller manager:
// the provider binary runs it in a cluster, and the dev cluster runs it
// beside itself.
package provider

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/controllers"
	"github.com/stashplane/stashplane/internal/secretcache"
	"github.com/stashplane/stashplane/internal/sessionjob"
	"github.com/stashplane/stashplane/internal/storagekind"
	"github.com/stashplane/stashplane/internal/tenancy"
)

// Options configure the provider.
type Options struct {
	Log logr.Logger
	// MetricsAddress serves Prometheus metrics; "0" turns them off.
	MetricsAddress string
	// MetricsSecure serves the metrics over HTTPS to clients whose bearer
	// token the API server authenticates (TokenReview) and allows to get
	// the non-resource URL /metrics (SubjectAccessReview).
	MetricsSecure bool
	// HealthAddress serves /healthz and /readyz; "0" turns them off.
	HealthAddress string
	// LeaderElection makes replicas take turns.
	LeaderElection          bool
	LeaderElectionNamespace string
	// PollInterval is how often BackupStorages and Repositories are
	// observed in the storage with no change to prompt it.
	PollInterval time.Duration
	// SnapshotPollInterval is the same for Snapshots, whose records
	// change only when their objects do (which is observed at once): a
	// busy cluster has thousands, and each observation is a read of the
	// storage. Zero: PollInterval.
	SnapshotPollInterval time.Duration
	// AmbientNamespaces may use BackupStorages of other namespaces that
	// name no credential Secret: their Jobs act with their pods' cloud
	// identity. Empty: none may.
	AmbientNamespaces []string
	// ClusterDumpNamespaces may hold BackupConfigurations that dump the
	// whole cluster. Empty: none may.
	ClusterDumpNamespaces []string
	// PprofAddress serves Go's profiles (/debug/pprof/) for a look at
	// where memory and time go; empty or "0" serves none.
	PprofAddress string
	// MemoryLimit is the Go runtime's soft memory limit: a quantity
	// ("200Mi"), "off", or "auto" (empty too): 90% of the container's
	// memory limit when it has one, unless GOMEMLIMIT is set (memory.go).
	MemoryLimit string
	// GCPercent is how far, in percent, the heap grows over what is live
	// before the collector runs: zero keeps the runtime's, and GOGC, when
	// set, wins (memory.go). The binaries default to DefaultGCPercent.
	GCPercent int
	// QPS and Burst bound the provider's requests to the API server; zero
	// keeps the given configuration's.
	QPS   float32
	Burst int
	// Workers is how many objects of each managed kind (BackupStorage,
	// Repository, Snapshot), BackupConfigurations, BackupSessions (of
	// different configurations) and RestoreSessions are reconciled at a
	// time; zero: DefaultWorkers.
	Workers int
	// InstallBuiltins applies the built-in Addons and Functions at start,
	// as what a package installs beside the provider: Crossplane installs
	// a Provider package's CRDs only, so the provider brings its addons
	// itself.
	InstallBuiltins bool
	// SkipControllerNameValidation lets one process run several providers
	// (tests, each against its own cluster); controller names are
	// otherwise unique per process.
	SkipControllerNameValidation bool
}

// DefaultWorkers is Options.Workers when none is given (--workers). A
// reconcile spends most of its time waiting for the API server, not on a
// core: when a schedule starts many backups at once, each session's first
// pass (its Snapshots, report grant and Jobs) is a dozen round trips, and
// four workers left the last of twenty sessions waiting seconds in the
// queue (docs/scale.md, "The eighth round"). The client-side rate limit
// (--kube-api-qps) still bounds what they send together.
const DefaultWorkers = 16

// Run runs every controller until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	limit, err := setMemoryLimit(o.MemoryLimit)
	if err != nil {
		return err
	}
	if limit != math.MaxInt64 {
		o.Log.Info("soft memory limit", "bytes", limit)
	}
	o.Log.Info("garbage collector target", "percent", setGCPercent(o.GCPercent))
	s, err := apis.Scheme()
	if err != nil {
		return err
	}
	cfg = rest.CopyConfig(cfg)
	if o.QPS > 0 {
		cfg.QPS = o.QPS
	}
	if o.Burst > 0 {
		cfg.Burst = o.Burst
	}
	var secrets *secretcache.Client
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: s,
		// The cache holds every Snapshot, Job and pod the provider
		// watches; their managed fields are most of their size and
		// nothing reads them.
		Cache: cache.Options{DefaultTransform: cacheTransform(), ByObject: cacheSelected()},
		// Secrets are held as metadata, their data only for the
		// Secrets the provider reads (internal/secretcache).
		Client: secretcache.Options(),
		NewClient: func(cfg *rest.Config, co client.Options) (client.Client, error) {
			c, err := client.New(cfg, co)
			if err != nil {
				return nil, err
			}
			secrets = secretcache.Wrap(c, co.Cache.Reader)
			return secrets, nil
		},
		Logger:                  o.Log,
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.HealthAddress,
		PprofBindAddress:        o.PprofAddress,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "stashplane-provider",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		Controller:              config.Controller{SkipNameValidation: ptr.To(o.SkipControllerNameValidation)},
	})
	if err != nil {
		return fmt.Errorf("cannot make controller manager: %w", err)
	}
	if err := secrets.ForgetDeleted(ctx, mgr.GetCache()); err != nil {
		return err
	}
	if o.HealthAddress != "0" && o.HealthAddress != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return fmt.Errorf("cannot add health check: %w", err)
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return fmt.Errorf("cannot add ready check: %w", err)
		}
	}
	opener := &storagekind.Opener{Client: mgr.GetClient()}
	err = controllers.Setup(mgr, controllers.Options{
		Log: o.Log, Opener: opener, Reason: storagekind.Classify, PollInterval: o.PollInterval, SnapshotPollInterval: o.SnapshotPollInterval, AmbientNamespaces: o.AmbientNamespaces,
		ClusterDumpNamespaces: o.ClusterDumpNamespaces, Workers: o.Workers,
	})
	if err != nil {
		return err
	}
	// The start-up steps write before the manager's cache runs.
	kube, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return fmt.Errorf("cannot make client: %w", err)
	}
	if err := guardVerdicts(ctx, cfg, kube, o.Log); err != nil {
		return err
	}
	// The Jobs of runs an earlier provider started, before its cache
	// selected Jobs by label, are labelled so that this one sees them: once
	// it leads, when the earlier one no longer makes any.
	err = mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		n, err := sessionjob.MarkEarlier(ctx, kube)
		if kerrors.IsForbidden(err) {
			return fmt.Errorf("%w; apply this version's package/rbac/provider.yaml, which grants the provider patch on jobs", err)
		}
		if n > 0 {
			o.Log.Info("labelled the jobs of an earlier provider watched", "jobs", n)
		}
		return err
	}))
	if err != nil {
		return fmt.Errorf("cannot add the labelling of earlier jobs: %w", err)
	}
	if o.InstallBuiltins {
		if err := installBuiltins(ctx, kube, o.Log); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}

// cacheSelected narrows what the cache holds of a kind to the objects the
// provider reads: of the cluster's Jobs and pods, those the provider and
// the CLI made and its storage accessors' pods (corev1alpha1.LabelWatched,
// sessionjob.Mark). Every other pod a run reads (a hook's target, a
// replaced run's pods, the pods of a Job an earlier provider made) is read
// past the cache.
func cacheSelected() map[client.Object]cache.ByObject {
	watched := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{corev1alpha1.LabelWatched: "true"})}
	return map[client.Object]cache.ByObject{&corev1.Pod{}: watched, &batchv1.Job{}: watched}
}

// cacheTransform drops from every object the cache holds what the provider
// never reads there: its managed fields, most of a cached object's size, and
// kubectl's last-applied-configuration annotation, a whole copy of an object
// applied with kubectl (a Secret's data too, even where only its metadata is
// watched).
func cacheTransform() toolscache.TransformFunc {
	strip := cache.TransformStripManagedFields()
	return func(in any) (any, error) {
		out, err := strip(in)
		if err != nil {
			return out, err
		}
		if obj, err := meta.Accessor(out); err == nil {
			if a := obj.GetAnnotations(); a != nil {
				if _, ok := a[corev1.LastAppliedConfigAnnotation]; ok {
					delete(a, corev1.LastAppliedConfigAnnotation)
					obj.SetAnnotations(a)
				}
			}
		}
		return out, nil
	}
}

// guardVerdicts applies the admission policy that lets only this
// provider's user change a Snapshot's verdict. The provider does not run
// without it: a verdict any Job could write would mean nothing.
func guardVerdicts(ctx context.Context, cfg *rest.Config, kube client.Client, log logr.Logger) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("cannot make clientset: %w", err)
	}
	// An API server still starting is waited for a minute; a refusal
	// (no rights to apply the policy) ends the wait at once.
	var user string
	err = forAMinute(ctx, func(ctx context.Context) (err error) {
		user, err = tenancy.GuardVerdicts(ctx, cs, kube)
		return err
	}, func(err error) bool { return kerrors.IsForbidden(err) || kerrors.IsInvalid(err) })
	if err != nil {
		return fmt.Errorf("cannot guard snapshot verdicts: %w", err)
	}
	log.Info("snapshot verdicts may be changed only by the provider", "policy", tenancy.VerdictPolicyName, "user", user)
	return nil
}

// installBuiltins applies the built-in addons, waiting up to a minute for
// their kinds to be served: installed as a Crossplane package, the
// provider may start before Crossplane has made its CRDs.
func installBuiltins(ctx context.Context, kube client.Client, log logr.Logger) error {
	// Forbidden is waited out too: installed as a package, the provider's
	// rights are granted while it starts.
	err := forAMinute(ctx, func(ctx context.Context) error { return InstallBuiltins(ctx, kube) }, kerrors.IsInvalid)
	if err != nil {
		return fmt.Errorf("cannot install the built-in addons: %w", err)
	}
	log.Info("built-in addons installed")
	return nil
}

// forAMinute runs f every second until it succeeds, a minute passes, or
// it fails with an error final says to give up on; it returns f's last
// error.
func forAMinute(ctx context.Context, f func(context.Context) error, final func(error) bool) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = f(ctx)
		if last != nil && final(last) {
			return false, last
		}
		return last == nil, nil
	})
	if err != nil && last != nil {
		return last
	}
	return err
}

// metricsOptions serves the metrics endpoint in the clear, or, with
// MetricsSecure, over HTTPS (a self-signed certificate) to authenticated
// and authorized clients only.
func metricsOptions(o Options) metricsserver.Options {
	// How long requests wait for the client's own rate limit
	// (--kube-api-qps, --kube-api-burst), which is where a provider in
	// front of thousands of objects first runs short (docs/scale.md).
	ctrlmetrics.RegisterRESTClientMetrics(ctrlmetrics.MetricRateLimiterLatency)
	m := metricsserver.Options{BindAddress: o.MetricsAddress}
	if o.MetricsSecure {
		m.SecureServing = true
		m.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return m
}
