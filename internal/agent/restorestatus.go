package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// ReasonRestoreNotStarted: the restore could not begin, for example because
// its Snapshot, Repository or storage could not be read.
const ReasonRestoreNotStarted = "RestoreNotStarted"

// restoreReporter records a component's restore in its RestoreSession's
// status.components[<component>], by server-side apply under the
// component's field manager, so the RestoreSession controller and the
// agents of other components keep their fields. A nil reporter (no
// --restore-session) records nothing.
type restoreReporter struct {
	kube      client.Client
	namespace string
	session   string
	component string
	start     time.Time
	log       logr.Logger
}

func (r *Runner) restoreReporter(start time.Time) *restoreReporter {
	if r.Options.RestoreSession == "" {
		return nil
	}
	ns := r.Options.RestoreSessionNamespace
	if ns == "" {
		ns = r.Options.Namespace
	}
	return &restoreReporter{log: r.Log, kube: r.Kube, namespace: ns, session: r.Options.RestoreSession,
		component: r.Options.Component, start: start}
}

// restoreComponent is the component's status: Running without an end,
// Succeeded with one, Failed with a reason (and a message free of secrets),
// with what the restore measured and found once it ended.
func restoreComponent(start, end time.Time, reason, msg string, res *restoreResult) corev1alpha1.ComponentRestoreStatus {
	c := corev1alpha1.ComponentRestoreStatus{Phase: corev1alpha1.RestoreRunning}
	if end.IsZero() {
		return c
	}
	c.Phase = corev1alpha1.RestoreSucceeded
	c.Duration = end.Sub(start).Round(time.Millisecond).String()
	if reason != "" {
		c.Phase = corev1alpha1.RestoreFailed
		c.Error = reason
		if msg != "" {
			c.Error += ": " + msg
		}
	}
	if res != nil {
		c.FilesRestored, c.BytesRestored, c.FilesChecked = res.filesRestored, res.bytesRestored, res.filesChecked
		c.Differences, c.TotalDifferences, c.DataChecked = res.diffs, res.totalDiffs, res.dataChecked
		c.Resources, c.TotalResources = res.resources, res.totalResources
	}
	return c
}

// restoreComponentPatch is the apply configuration of one component of a
// RestoreSession.
func restoreComponentPatch(namespace, session, component string, c corev1alpha1.ComponentRestoreStatus) ([]byte, error) {
	body := map[string]any{
		"apiVersion": corev1alpha1.GroupVersion.String(),
		"kind":       "RestoreSession",
		"metadata":   map[string]any{"name": session, "namespace": namespace},
		"status":     map[string]any{"components": map[string]any{component: c}},
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the restore status of component %q: %w", component, err)
	}
	return b, nil
}

// report writes the component; end zero means it is still running. The
// write outlives a cancelled run, so a failure is recorded even then.
func (w *restoreReporter) report(ctx context.Context, end time.Time, reason, msg string, res *restoreResult) error {
	if w == nil {
		return nil
	}
	b, err := restoreComponentPatch(w.namespace, w.session, w.component, restoreComponent(w.start, end, reason, msg, res))
	if err != nil {
		return err
	}
	// Unstructured, so that the agent's client needs no core types in its
	// scheme.
	rs := &unstructured.Unstructured{}
	rs.SetGroupVersionKind(corev1alpha1.GroupVersion.WithKind("RestoreSession"))
	rs.SetNamespace(w.namespace)
	rs.SetName(w.session)
	err = record(context.WithoutCancel(ctx), w.log, func(ctx context.Context) error {
		return w.kube.Status().Patch(ctx, rs, client.RawPatch(types.ApplyPatchType, b),
			client.FieldOwner(FieldManager(w.component)), client.ForceOwnership)
	})
	if err != nil {
		return fmt.Errorf("cannot write component %q of restoresession %q: %w", w.component, w.session, err)
	}
	return nil
}

// reportRunning writes the component as Running in the background; the
// function it returns waits for the write and returns its error, the same
// each time it is called.
func (w *restoreReporter) reportRunning(ctx context.Context) func() error {
	done := make(chan error, 1)
	go func() { done <- w.report(ctx, time.Time{}, "", "", nil) }()
	return sync.OnceValue(func() error { return <-done })
}
