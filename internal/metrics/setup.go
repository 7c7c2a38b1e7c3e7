package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// Setup serves the metrics of what the cluster holds from mgr's cache and
// observes each BackupSession of mgr's cluster that ends while it runs.
func Setup(mgr ctrl.Manager, log logr.Logger) error {
	log = log.WithValues("controller", "metrics")
	src := &source{cache: mgr.GetCache(), log: log}
	state.source.Store(src)
	// A stopped manager's cache is no longer read.
	err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		state.source.CompareAndSwap(src, nil)
		return nil
	}))
	if err != nil {
		return fmt.Errorf("cannot add the metrics source: %w", err)
	}
	inf, err := mgr.GetCache().GetInformer(context.Background(), &corev1alpha1.BackupSession{})
	if err != nil {
		return fmt.Errorf("cannot watch backupsessions for metrics: %w", err)
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*corev1alpha1.BackupSession)
			s, ok2 := newObj.(*corev1alpha1.BackupSession)
			if ok1 && ok2 {
				observeSession(old, s)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("cannot watch backupsessions for metrics: %w", err)
	}
	return nil
}

// ended says whether a session has its outcome and, unless Skipped, its
// duration: the controller records both once the session is done.
func ended(s *corev1alpha1.BackupSession) bool {
	switch s.Status.Phase {
	case corev1alpha1.BackupSessionSkipped:
		return true
	case corev1alpha1.BackupSessionSucceeded, corev1alpha1.BackupSessionFailed:
		return s.Status.Duration != ""
	}
	return false
}

// observeSession counts a session once, on the update that ends it. A
// session that ended while no provider ran is not counted: the counters
// start at zero with each provider, as Prometheus expects of counters.
func observeSession(old, s *corev1alpha1.BackupSession) {
	if ended(old) || !ended(s) {
		return
	}
	labels := []string{s.Namespace, s.Spec.Invoker.Name, s.Spec.Session, string(s.Status.Phase)}
	backupSessions.WithLabelValues(labels...).Inc()
	if s.Status.Phase == corev1alpha1.BackupSessionSkipped {
		return
	}
	if d, err := time.ParseDuration(s.Status.Duration); err == nil {
		backupSessionDuration.WithLabelValues(labels...).Observe(d.Seconds())
	}
}
