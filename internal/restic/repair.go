package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Lines of restic's output the repair of a repository reads. restic
// prints these as text even with --json; the pinned version's wording is
// held by repair_test.go.
var (
	// check: a pack the index names is not in storage.
	missingPackLine = regexp.MustCompile(`pack ([0-9a-f]{64}): does not exist`)
	// repair snapshots --dry-run: a snapshot's block starts here.
	repairSnapshotLine = regexp.MustCompile(`^snapshot ([0-9a-f]{8,64}) of `)
	// repair snapshots --dry-run: an entry of that snapshot that lost data.
	repairItemLine = regexp.MustCompile(`^\s+(?:file|dir) "(.*)": `)
	// backup: a file some of whose blobs the index lacks is read again.
	storedAgainLine = "not found in the repository index; storing the file again"
)

// maxDamagedFiles bounds the files named for one damaged snapshot.
const maxDamagedFiles = 10

// missingPacks adds to packs the pack named by a check's error message.
func missingPacks(packs []string, msg string) []string {
	for _, m := range missingPackLine.FindAllStringSubmatch(msg, -1) {
		if !slices.Contains(packs, m[1]) {
			packs = append(packs, m[1])
		}
	}
	return packs
}

// RepairIndex rebuilds the repository's index from the packs storage
// holds, so that blobs of packs storage lost are no longer taken as
// stored: the next backup stores them again from its source. It takes
// restic's exclusive lock.
func (r *Restic) RepairIndex(ctx context.Context) error {
	return r.run(ctx, "repair", []string{"index"}, nil)
}

// SnapshotsUsingPacks lists, sorted, the snapshots that reference a blob
// of any of packs, as the index names the packs' blobs. It must run before
// RepairIndex drops the lost packs from the index.
func (r *Restic) SnapshotsUsingPacks(ctx context.Context, packs []string) ([]string, error) {
	if len(packs) == 0 {
		return nil, nil
	}
	var out bytes.Buffer
	args := append([]string{"--no-lock", "--pack"}, packs...)
	if err := r.run(ctx, "find", args, func(line []byte) {
		out.Write(line)
		out.WriteByte('\n')
	}); err != nil {
		return nil, err
	}
	var found []string
	dec := json.NewDecoder(&out)
	for dec.More() {
		var matches []struct {
			Snapshot string `json:"snapshot"`
		}
		if err := dec.Decode(&matches); err != nil {
			return nil, fmt.Errorf("cannot read what restic find printed: %w", err)
		}
		for _, m := range matches {
			if m.Snapshot != "" && !slices.Contains(found, m.Snapshot) {
				found = append(found, m.Snapshot)
			}
		}
	}
	slices.Sort(found)
	return found, nil
}

// DamagedSnapshot is a snapshot some of whose data the repository lacks.
type DamagedSnapshot struct {
	// ID of the snapshot.
	ID string
	// Files and directories that lost data, at most maxDamagedFiles.
	Files []string
}

// DamagedSnapshots lists the snapshots that reference data the index
// does not hold, as `restic repair snapshots --dry-run` finds them. It
// changes nothing and takes no lock.
func (r *Restic) DamagedSnapshots(ctx context.Context) ([]DamagedSnapshot, error) {
	var damaged []DamagedSnapshot
	var cur *DamagedSnapshot
	if err := r.run(ctx, "repair", []string{"snapshots", "--no-lock", "--dry-run"}, func(line []byte) {
		s := string(line)
		if m := repairSnapshotLine.FindStringSubmatch(s); m != nil {
			damaged = append(damaged, DamagedSnapshot{ID: m[1]})
			cur = &damaged[len(damaged)-1]
			return
		}
		if m := repairItemLine.FindStringSubmatch(s); m != nil && cur != nil {
			if len(cur.Files) < maxDamagedFiles {
				cur.Files = append(cur.Files, m[1])
			}
		}
	}); err != nil {
		return nil, err
	}
	damaged = slices.DeleteFunc(damaged, func(d DamagedSnapshot) bool { return d.Files == nil })
	if len(damaged) == 0 {
		return nil, nil
	}
	// restic names snapshots by their short ID here: the full ones come
	// from the list.
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for i := range damaged {
		for _, s := range all {
			if strings.HasPrefix(s.ID, damaged[i].ID) {
				damaged[i].ID = s.ID
				break
			}
		}
	}
	return damaged, nil
}
