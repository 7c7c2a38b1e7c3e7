package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/restic"
)

// componentState is what the agent knows about its component at one
// moment of a run.
type componentState struct {
	// ResticPath is the component's restic repository, relative to the
	// storage.
	ResticPath string
	Phase      storagev1alpha1.ComponentPhase
	// Paths backed up.
	Paths []string
	// Start of the run; End once it ended.
	Start, End time.Time
	// Summary of a finished restic backup.
	Summary *restic.BackupSummary
	// Progress of a running one.
	Progress *restic.BackupProgress
	// Integrity: the result of the check after the backup, nil before.
	Integrity *bool
	// Reason and Message of a failure, already free of secrets.
	Reason, Message string
	// Healing: what the backup found lost from the repository.
	Healing *storagev1alpha1.ComponentHealing
}

// buildComponent turns a state into the Snapshot's component.
func buildComponent(s componentState) storagev1alpha1.Component {
	c := storagev1alpha1.Component{
		Path:      s.ResticPath,
		Phase:     s.Phase,
		Driver:    storagev1alpha1.DriverRestic,
		Integrity: s.Integrity,
		Healing:   s.Healing,
	}
	if !s.End.IsZero() {
		c.Duration = s.End.Sub(s.Start).Round(time.Millisecond).String()
	}
	if s.Reason != "" {
		c.Error = s.Reason
		if s.Message != "" {
			c.Error += ": " + s.Message
		}
	}
	hostPath := strings.Join(s.Paths, ",")
	switch {
	case s.Summary != nil:
		sum := s.Summary
		c.Size = formatBytes(sum.TotalBytesProcessed)
		stats := &storagev1alpha1.ResticSummary{
			ID:       sum.SnapshotID,
			Uploaded: formatBytes(sum.DataAdded),
			HostPath: hostPath,
			Size:     formatBytes(sum.TotalBytesProcessed),
			Files:    clampInt64(sum.TotalFilesProcessed),
		}
		if !sum.Start.IsZero() {
			stats.StartTime = ptr.To(metav1.NewTime(sum.Start))
		}
		if !sum.End.IsZero() {
			stats.EndTime = ptr.To(metav1.NewTime(sum.End))
		}
		c.ResticStats = []storagev1alpha1.ResticStats{{Summary: stats}}
	case s.Progress != nil:
		p := s.Progress
		c.ResticStats = []storagev1alpha1.ResticStats{{Progress: &storagev1alpha1.ResticProgress{
			PercentDone:    int32(math.Round(math.Min(math.Max(p.PercentDone, 0), 1) * 100)),
			TotalFiles:     clampInt64(p.TotalFiles),
			FilesDone:      clampInt64(p.FilesDone),
			TotalBytes:     clampInt64(p.TotalBytes),
			BytesDone:      clampInt64(p.BytesDone),
			SecondsElapsed: int64(p.Elapsed / time.Second),
		}}}
	}
	return c
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

var byteUnits = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// formatBytes writes a byte count for people, in binary units with two
// decimals ("12.50 MiB"); ParseSize of the storage API reads it back.
func formatBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for v >= 1024 && i < len(byteUnits)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.2f %s", v, byteUnits[i])
}

// FieldManager is the server-side apply field manager of a component's
// agent: each agent owns exactly status.components[<component>] of its
// Snapshot and nothing else.
func FieldManager(component string) string { return "stashplane-agent-" + component }

// statusWriter records a component in its Snapshot.
type statusWriter interface {
	writeComponent(ctx context.Context, c storagev1alpha1.Component) error
}

// applyWriter writes a component with a server-side apply of the
// Snapshot's status that names only that component, so agents of other
// components and the Snapshot controller keep their fields.
type applyWriter struct {
	kube      client.Client
	namespace string
	snapshot  string
	component string
}

// componentPatch is the apply configuration of one component.
func componentPatch(namespace, snapshot, component string, c storagev1alpha1.Component) ([]byte, error) {
	body := map[string]any{
		"apiVersion": storagev1alpha1.GroupVersion.String(),
		"kind":       "Snapshot",
		"metadata":   map[string]any{"name": snapshot, "namespace": namespace},
		"status":     map[string]any{"components": map[string]any{component: c}},
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the status of component %q: %w", component, err)
	}
	return b, nil
}

func (w *applyWriter) writeComponent(ctx context.Context, c storagev1alpha1.Component) error {
	b, err := componentPatch(w.namespace, w.snapshot, w.component, c)
	if err != nil {
		return err
	}
	snap := &storagev1alpha1.Snapshot{}
	snap.SetNamespace(w.namespace)
	snap.SetName(w.snapshot)
	err = w.kube.Status().Patch(ctx, snap, client.RawPatch(types.ApplyPatchType, b),
		client.FieldOwner(FieldManager(w.component)), client.ForceOwnership)
	if err != nil {
		return fmt.Errorf("cannot write component %q of snapshot %q: %w", w.component, w.snapshot, err)
	}
	return nil
}
