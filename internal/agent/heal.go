package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
)

// ReasonDataLost: the run's own restic snapshot references data storage
// no longer holds, even after the repository was healed.
const ReasonDataLost = "DataLost"

// maxMissingPacks bounds the packs a component's healing names.
const maxMissingPacks = 20

// healRetry is how long the agent tries to forget the restic snapshot a
// healing backup made, while other runs hold the repository's locks.
var healRetry = time.Minute

// heal answers a failed post-backup check. When storage lost packs the
// index names, it finds the restic snapshots that used them, repairs the
// index and runs again (redo, when the source can be read again): restic
// stores again every file whose data is gone, which makes whole every
// snapshot holding the same content, the run's own first. The healing
// run's extra snapshot is forgotten. Then restic is asked which snapshots
// still lack data: those are lost, named with their files.
//
// heal returns what it found when the run's own snapshot is whole; an
// error when it is not (ReasonDataLost) or when the check failed for
// reasons no snapshot explains (checkErr).
func (r *Runner) heal(ctx context.Context, t *target, rc *restic.Restic, own string, check *restic.CheckSummary, checkErr error,
	redo func(context.Context) (*restic.BackupSummary, error)) (*storagev1alpha1.ComponentHealing, error) {
	h := &storagev1alpha1.ComponentHealing{}
	var using []string
	if check != nil && len(check.MissingPacks) > 0 {
		h.MissingPacks = check.MissingPacks[:min(len(check.MissingPacks), maxMissingPacks)]
		r.Log.Info("storage lost packs of the restic repository; healing it", "packs", len(check.MissingPacks), "repository", t.resticPath)
		var err error
		if using, err = rc.SnapshotsUsingPacks(ctx, check.MissingPacks); err != nil {
			return nil, fmt.Errorf("cannot find the restic snapshots that used the lost packs: %w", err)
		}
		if err := rc.RepairIndex(ctx); err != nil {
			return nil, fmt.Errorf("cannot repair the index of the restic repository: %w", err)
		}
		if redo != nil {
			again, err := redo(ctx)
			if err != nil {
				return nil, fmt.Errorf("cannot back up again to store the lost data: %w", err)
			}
			r.Log.Info("stored lost data again", "files", again.StoredAgain)
			if again.SnapshotID != own {
				r.forgetHealing(ctx, t, again.SnapshotID)
			}
		}
	}
	damaged, err := rc.DamagedSnapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot find the damaged restic snapshots: %w", err)
	}
	if len(h.MissingPacks) == 0 && len(damaged) == 0 {
		// No pack is missing and every snapshot is whole: the check
		// failed for a reason healing does not cover.
		return nil, checkErr
	}
	lost := map[string]bool{}
	for _, d := range damaged {
		lost[d.ID] = true
		if d.ID != own {
			h.LostSnapshots = append(h.LostSnapshots, storagev1alpha1.LostResticSnapshot{ID: d.ID, Files: d.Files})
		}
	}
	for _, id := range using {
		if !lost[id] && id != own {
			h.HealedSnapshots = append(h.HealedSnapshots, id)
		}
	}
	if lost[own] {
		i := slices.IndexFunc(damaged, func(d restic.DamagedSnapshot) bool { return d.ID == own })
		return h, &reasonError{reason: ReasonDataLost, msg: fmt.Sprintf(
			"storage lost data of this backup's restic snapshot (files %s); the index is repaired, so the next backup stores it again",
			strings.Join(damaged[i].Files, ", "))}
	}
	return h, nil
}

// forgetHealing forgets the restic snapshot a healing run made: it holds
// what the run's own snapshot holds and no Snapshot records it. Another
// run's lock makes it wait; if it cannot within healRetry, the snapshot is
// left, and named in the log.
func (r *Runner) forgetHealing(ctx context.Context, t *target, id string) {
	deadline := time.Now().Add(healRetry)
	for {
		err := layout.ForgetResticSnapshot(ctx, t.bucket, t.resticPath, id, time.Now())
		if err == nil {
			return
		}
		if !errors.Is(err, layout.ErrResticLocked) || time.Now().After(deadline) {
			r.Log.Error(err, "cannot forget the restic snapshot of the healing backup; it holds the same data as this run's", "resticSnapshot", id)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}
