// Package controllers lists Stashplane's controllers. Each kind has its own
// package; this one only sets them all up.
package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/ratelimiter"
	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/addon"
	"github.com/stashplane/stashplane/controllers/backupblueprint"
	"github.com/stashplane/stashplane/controllers/backupconfiguration"
	"github.com/stashplane/stashplane/controllers/backupsession"
	"github.com/stashplane/stashplane/controllers/backupstorage"
	"github.com/stashplane/stashplane/controllers/backupverificationsession"
	"github.com/stashplane/stashplane/controllers/backupverifier"
	"github.com/stashplane/stashplane/controllers/function"
	"github.com/stashplane/stashplane/controllers/maintenance"
	"github.com/stashplane/stashplane/controllers/repository"
	"github.com/stashplane/stashplane/controllers/restoresession"
	"github.com/stashplane/stashplane/controllers/retention"
	"github.com/stashplane/stashplane/controllers/snapshot"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/metrics"
	"github.com/stashplane/stashplane/internal/storagekind"
)

// Options are what every controller may need.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	// Opener opens BackupStorages' buckets.
	Opener *storagekind.Opener
	// Reason classifies storage errors into condition reasons and safe
	// messages.
	Reason func(error) (reason, message string)
	// Renderer renders and checks Addons' CUE templates.
	Renderer *render.Renderer
	// PollInterval is how often managed resources are observed without a
	// change to prompt it.
	PollInterval time.Duration
	// SnapshotPollInterval is PollInterval for Snapshots; zero:
	// PollInterval.
	SnapshotPollInterval time.Duration
	// AmbientNamespaces may use storages of other namespaces that name no
	// credential Secret.
	AmbientNamespaces []string
	// ClusterDumpNamespaces may hold configurations that dump the whole
	// cluster.
	ClusterDumpNamespaces []string
	// Workers is how many objects the controllers of the managed kinds
	// (BackupStorage, Repository, Snapshot), of BackupConfigurations
	// (validation and scheduler), of BackupSessions (and their retention)
	// and of RestoreSessions reconcile at a time: each storage object's record is its own,
	// everything a configuration or a restore composes is named and
	// labelled for it alone, a busy cluster has thousands of them, and a
	// session's hook attempt must not hold back every other backup or
	// restore. BackupSessions of one configuration are still reconciled
	// one at a time, since a session's checks span its configuration's
	// other runs, and so is their retention, under a lock of its own
	// (backupsession, retention). The other controllers reconcile one
	// object at a time, since their checks span objects (a Repository's
	// prune, a verifier's sessions). Zero or one: one at a time.
	Workers int
}

// managed are the controller options of a managed kind's controller.
func (o Options) managed() controller.Options {
	c := o.Controller
	if o.Workers > 1 {
		c.MaxConcurrentReconciles = o.Workers
	}
	return c
}

// snapshotPoll is how often a Snapshot's record is observed with no change.
func (o Options) snapshotPoll() time.Duration {
	if o.SnapshotPollInterval > 0 {
		return o.SnapshotPollInterval
	}
	return o.PollInterval
}

// Setup adds every Stashplane controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Renderer == nil {
		o.Renderer = render.New(render.Options{})
	}
	// Indexes the controllers share, registered once.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotRepositoryField, storagev1alpha1.SnapshotRepository); err != nil {
		return fmt.Errorf("cannot index snapshots by repository: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotBackupSessionField, storagev1alpha1.SnapshotBackupSession); err != nil {
		return fmt.Errorf("cannot index snapshots by backupsession: %w", err)
	}
	setups := []func(ctrl.Manager, Options) error{
		func(m ctrl.Manager, o Options) error {
			return backupstorage.Setup(m, backupstorage.Options{
				Controller: o.managed(), Log: o.Log, Opener: o.Opener, Reason: o.Reason, PollInterval: o.PollInterval,
			})
		},
		func(m ctrl.Manager, o Options) error {
			return snapshot.Setup(m, snapshot.Options{
				Controller: o.managed(), Log: o.Log, Opener: o.Opener, Reason: o.Reason, PollInterval: o.snapshotPoll(),
			})
		},
		func(m ctrl.Manager, o Options) error {
			return backupconfiguration.Setup(m, backupconfiguration.Options{Controller: o.managed(), Log: o.Log, Renderer: o.Renderer, AmbientNamespaces: o.AmbientNamespaces,
				ClusterDumpNamespaces: o.ClusterDumpNamespaces})
		},
		func(m ctrl.Manager, o Options) error {
			return backupsession.Setup(m, backupsession.Options{Controller: o.managed(), Log: o.Log, Renderer: o.Renderer})
		},
		func(m ctrl.Manager, o Options) error {
			return retention.Setup(m, retention.Options{Controller: o.managed(), Log: o.Log})
		},
		func(m ctrl.Manager, o Options) error {
			return maintenance.Setup(m, maintenance.Options{Controller: o.Controller, Log: o.Log})
		},
		func(m ctrl.Manager, o Options) error {
			return restoresession.Setup(m, restoresession.Options{Controller: o.managed(), Log: o.Log, Renderer: o.Renderer, AmbientNamespaces: o.AmbientNamespaces,
				ClusterDumpNamespaces: o.ClusterDumpNamespaces})
		},
		func(m ctrl.Manager, o Options) error {
			return backupverificationsession.Setup(m, backupverificationsession.Options{Controller: o.Controller, Log: o.Log, Renderer: o.Renderer, AmbientNamespaces: o.AmbientNamespaces})
		},
		func(m ctrl.Manager, o Options) error {
			return backupverifier.Setup(m, backupverifier.Options{Controller: o.Controller, Log: o.Log})
		},
		func(m ctrl.Manager, o Options) error {
			return backupblueprint.Setup(m, backupblueprint.Options{Controller: o.Controller, Log: o.Log})
		},
		func(m ctrl.Manager, o Options) error {
			return function.Setup(m, function.Options{Controller: o.Controller, Log: o.Log, Renderer: o.Renderer})
		},
		func(m ctrl.Manager, o Options) error {
			return addon.Setup(m, addon.Options{Controller: o.Controller, Log: o.Log, Renderer: o.Renderer})
		},
		func(m ctrl.Manager, o Options) error {
			return metrics.Setup(m, o.Log)
		},
		func(m ctrl.Manager, o Options) error {
			return repository.Setup(m, repository.Options{
				Controller: o.managed(), Log: o.Log, Opener: o.Opener, Reason: o.Reason, PollInterval: o.PollInterval,
			})
		},
	}
	for _, s := range setups {
		// Each controller backs off on its own, from 1 s to at most a
		// minute: a wait on another run (a forget held back by a restore,
		// a prune by a backup) is tried again within a minute of the run
		// ending even when no event says so, never after the default
		// limiter's quarter of an hour.
		o := o
		if o.Controller.RateLimiter == nil {
			o.Controller.RateLimiter = ratelimiter.NewController()
		}
		if err := s(mgr, o); err != nil {
			return fmt.Errorf("cannot set up controllers: %w", err)
		}
	}
	return nil
}
