package agent

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

// Download writes one component of a Snapshot to w as a tar archive of
// the files restic holds for it (restic dump --archive tar), paths as the
// backup read them without the leading slash. Only the restic snapshot the
// Snapshot recorded for the component is read, and nothing is written to
// the storage but restic's own lock. `stashplane download` runs it through
// exec in a download Job's pod, so the credentials stay in the cluster.
func (r *Runner) Download(ctx context.Context, w io.Writer) error {
	if err := r.Options.Validate(KindDownload); err != nil {
		return notRecorded(err)
	}
	t := &target{repo: &storagev1alpha1.Repository{}, storage: &storagev1alpha1.BackupStorage{}}
	if err := r.resolveStorage(ctx, t); err != nil {
		return notRecorded(err)
	}
	snap := &storagev1alpha1.Snapshot{}
	if err := r.Kube.Get(ctx, types.NamespacedName{Namespace: r.Options.Namespace, Name: r.Options.Snapshot}, snap); err != nil {
		return notRecorded(fmt.Errorf("cannot get snapshot %q: %w", r.Options.Snapshot, err))
	}
	id, err := RecordedResticSnapshot(snap, r.Options.Component)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	if err := r.connect(ctx, t); err != nil {
		reason, msg := failure(err, &bridgeErrors{log: r.Log}, t.redact)
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("cannot open the storage: %s: %s", reason, msg)}
	}
	defer t.bucket.Close()
	t.resticPath = layout.ResticPrefix(t.repo.Spec.Path, snap.Spec.Session, r.Options.Component)
	errs := &bridgeErrors{log: r.Log.WithName("bridge")}
	rc, stop, err := r.resticReading(ctx, t, errs)
	if err != nil {
		reason, msg := failure(err, errs, t.redact)
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("cannot open restic repository %q: %s: %s", t.resticPath, reason, msg)}
	}
	defer stop(context.WithoutCancel(ctx))
	if err := rc.DumpTar(ctx, id, w); err != nil {
		reason, msg := failure(err, errs, t.redact)
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("cannot download component %q of snapshot %q: %s: %s", r.Options.Component, snap.Name, reason, msg)}
	}
	return nil
}

// RecordedResticSnapshot is the restic snapshot a Snapshot recorded for
// one of its components; an error says why there is none to read.
func RecordedResticSnapshot(s *storagev1alpha1.Snapshot, component string) (string, error) {
	c, ok := s.Status.Components[component]
	if !ok {
		names := make([]string, 0, len(s.Status.Components))
		for n := range s.Status.Components {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", fmt.Errorf("snapshot %q has no component %q; it has %s", s.Name, component, strings.Join(names, ", "))
	}
	var ids []string
	for _, st := range c.ResticStats {
		// One restic snapshot may be recorded once per path it holds.
		if st.Summary != nil && st.Summary.ID != "" && !slices.ContainsFunc(ids, func(id string) bool { return sameResticID(id, st.Summary.ID) }) {
			ids = append(ids, st.Summary.ID)
		}
	}
	switch {
	case c.Phase != storagev1alpha1.ComponentSucceeded:
		return "", fmt.Errorf("component %q of snapshot %q is %s, not Succeeded: there is nothing whole to download", component, s.Name, c.Phase)
	case len(ids) == 0:
		return "", fmt.Errorf("component %q of snapshot %q recorded no restic snapshot", component, s.Name)
	case len(ids) > 1:
		return "", fmt.Errorf("component %q of snapshot %q recorded %d restic snapshots (%s); download reads one", component, s.Name, len(ids), strings.Join(ids, ", "))
	}
	return ids[0], nil
}
