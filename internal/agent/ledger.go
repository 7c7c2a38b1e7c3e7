package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/stashplane/stashplane/internal/layout"
)

// A backup builds on what its restic repository already holds: restic
// stores only the data its index lacks. restic's structural check proves
// that base whole (every pack the index names is in storage, with the
// size the index gives, so every earlier snapshot's trees are whole), but
// each run of restic pays its key derivation, about half a second of one
// core, and on two cores that competes with the backup itself.
//
// The ledger keeps what the check vouched for: the name and size of every
// pack and index file in storage when it passed. Those files are named by
// their content and never change; only a prune (or a repair) removes or
// rewrites them. A later backup lists the repository's packs and index
// files, and when every file of the ledger is still there with its size,
// the check's verdict still holds and restic's check is not run again.
// When one is missing or changed, when there is no ledger, or when the
// check is older than ledgerMaxAge, the backup runs restic's check as
// before. After a backup succeeds, the ledger keeps what it vouched for
// plus what the backup added (restic verifies what it uploads before it
// does), so a file lost during a run is still missed by the next.

// ledgerMaxAge is how long a check's verdict stands without restic's check
// running again: one full structural check a day, whatever the ledger says
// (a file changed in place with its size kept shows only to restic).
const ledgerMaxAge = 24 * time.Hour

// ledger is what restic's structural check last vouched for.
type ledger struct {
	// Checked is when the check that vouched for Files began.
	Checked time.Time `json:"checked"`
	// Files are keys relative to the restic repository ("data/ab/ab12…",
	// "index/…") and their sizes.
	Files map[string]int64 `json:"files"`
	// Manifest names the Snapshot whose content manifest the backup that
	// wrote the ledger stored: the next backup of the component takes the
	// hashes of unchanged files from it.
	Manifest string `json:"manifest,omitempty"`
	// ResticSnapshot is the restic snapshot that manifest describes: the
	// next backup names it as restic's parent, so that what restic finds
	// unchanged is unchanged since that manifest.
	ResticSnapshot string `json:"resticSnapshot,omitempty"`
	// QuietNext: the next backup starts restic without a line per file
	// (quiet.go), because the backup that wrote the ledger found its
	// source unchanged, saw it hold still over the run (a source without
	// exclude patterns), or had no earlier backup to compare it with.
	QuietNext bool `json:"quietNext,omitempty"`
	// Source is the digest of the source as that manifest describes it
	// (manifestState): a quiet restic is let past its lock only when the
	// next backup's walk gives the same. Empty when a file of the
	// manifest was taken from restic's copy.
	Source string `json:"source,omitempty"`
}

// ledgerDirs are the directories of a restic repository the structural
// check vouches for. Snapshot files come and go with retention, keys with
// password changes, locks with every run; none of them is data a backup
// builds on.
var ledgerDirs = []string{"data/", "index/"}

// listLedger lists the packs and index files of the restic repository
// under resticPath, with their sizes.
func listLedger(ctx context.Context, bucket *blob.Bucket, resticPath string) (map[string]int64, error) {
	prefix := strings.TrimSuffix(resticPath, "/") + "/"
	files := map[string]int64{}
	for _, dir := range ledgerDirs {
		it := bucket.List(&blob.ListOptions{Prefix: prefix + dir})
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("cannot list the restic repository's %s: %w", strings.TrimSuffix(dir, "/"), err)
			}
			if obj.IsDir {
				continue
			}
			files[strings.TrimPrefix(obj.Key, prefix)] = obj.Size
		}
	}
	return files, nil
}

// readLedger reads a component's ledger; nil when it has none.
func readLedger(ctx context.Context, bucket *blob.Bucket, key string) (*ledger, error) {
	b, err := bucket.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the ledger: %w", err)
	}
	l := &ledger{}
	if err := json.Unmarshal(b, l); err != nil || l.Checked.IsZero() || l.Files == nil {
		return nil, fmt.Errorf("cannot read the ledger %s: it is not one", key)
	}
	return l, nil
}

// holds says why the ledger's verdict does not stand for the repository
// whose files are now, at time at; "" when it does.
func (l *ledger) holds(now map[string]int64, at time.Time) string {
	if l == nil {
		return "no ledger"
	}
	if age := at.Sub(l.Checked); age > ledgerMaxAge || age < -ledgerMaxAge {
		return fmt.Sprintf("the last check was at %s", l.Checked.UTC().Format(time.RFC3339))
	}
	var missing, changed []string
	for k, size := range l.Files {
		got, ok := now[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case got != size:
			changed = append(changed, k)
		}
	}
	switch {
	case len(missing) > 0:
		return fmt.Sprintf("storage lost %d file(s) the last check saw, among them %s", len(missing), firstOf(missing))
	case len(changed) > 0:
		return fmt.Sprintf("%d file(s) changed size since the last check, among them %s", len(changed), firstOf(changed))
	}
	return ""
}

// firstOf is the least of keys, for a message that names one file the same
// way each time.
func firstOf(keys []string) string {
	least := keys[0]
	for _, k := range keys[1:] {
		if k < least {
			least = k
		}
	}
	return least
}

// next is the ledger after a backup that stored the manifest of snapshot
// succeeded on top of l's verdict: what l vouched for (a file of it lost
// during the run is then missed by the next run) and the files in storage
// now.
func (l *ledger) next(now map[string]int64, snapshot, resticSnapshot string, quietNext bool, source string) *ledger {
	n := &ledger{Checked: l.Checked, Files: make(map[string]int64, len(now)+len(l.Files)), Manifest: snapshot, ResticSnapshot: resticSnapshot, QuietNext: quietNext, Source: source}
	for k, size := range l.Files {
		n.Files[k] = size
	}
	for k, size := range now {
		if _, ok := n.Files[k]; !ok {
			n.Files[k] = size
		}
	}
	return n
}

// writeLedger records the ledger of t's component after a successful
// backup on top of base (nil: nothing to build on, no ledger is written);
// manifest names the Snapshot whose manifest holds reusable hashes, or is
// empty. A ledger that cannot be written costs the next backup a check,
// not this one its success.
func (r *Runner) writeLedger(ctx context.Context, t *target, base *ledger, manifest, resticSnapshot string, quietNext bool, source string) {
	if base == nil {
		return
	}
	now, err := listLedger(ctx, t.bucket, t.resticPath)
	if err == nil {
		var b []byte
		if b, err = json.Marshal(base.next(now, manifest, resticSnapshot, quietNext, source)); err == nil {
			err = t.bucket.WriteAll(ctx, layout.LedgerKey(t.repo.Spec.Path, t.session, r.Options.Component), b, &blob.WriterOptions{ContentType: "application/json"})
		}
	}
	if err != nil {
		r.Log.Error(errors.New(t.redact.redact(err.Error())), "cannot record the ledger; the next backup runs restic's check")
	}
}

// openPrevious starts reading the manifest the ledger names, for
// startHashing; its wait gives nil when there is none or it cannot be read
// (every file is then hashed). The manifest is sealed with the repository's
// password and names its Snapshot and component, so a ledger, which is
// not sealed, can only point at a manifest the component's own backups
// wrote.
func (r *Runner) openPrevious(ctx context.Context, t *target, l *ledger) *pendingPrevious {
	p := &pendingPrevious{done: make(chan struct{})}
	if l == nil || l.Manifest == "" {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		rd, err := t.bucket.NewReader(ctx, layout.ManifestKey(t.repo.Spec.Path, l.Manifest, r.Options.Component), nil)
		if err != nil {
			r.Log.Info("hashing every file: cannot read the previous content manifest", "snapshot", l.Manifest, "reason", gcerrors.Code(err).String())
			return
		}
		defer rd.Close()
		m, err := decodeManifest(rd, t.manifestKeys(), l.Manifest, r.Options.Component)
		if err != nil || m.Algorithm() != backupHash {
			r.Log.Info("hashing every file: the previous content manifest is not one to take hashes from", "snapshot", l.Manifest)
			return
		}
		files := make(map[string]ManifestFile, len(m.Files))
		for _, f := range m.Files {
			files[f.Path] = f
		}
		p.m = &previousManifest{files: files, list: m.Files, resticSnapshot: m.ResticSnapshot}
	}()
	return p
}

// pendingPrevious is the previous manifest while it is read.
type pendingPrevious struct {
	done chan struct{}
	m    *previousManifest
}

// wait returns the previous manifest once it is read, nil when there is
// none to take hashes from.
func (p *pendingPrevious) wait() *previousManifest {
	<-p.done
	return p.m
}

// previousManifest is the component's previous content manifest, as far
// as a backup uses it.
type previousManifest struct {
	// files by path.
	files map[string]ManifestFile
	// list are the same files in the manifest's order.
	list []ManifestFile
	// resticSnapshot is the restic snapshot the manifest describes, as
	// sealed in it.
	resticSnapshot string
}

// resticParent is the restic snapshot a backup names as restic's parent:
// the one the ledger says the previous manifest describes, when it is
// still in the repository; "" (restic chooses) otherwise.
func resticParent(ctx context.Context, t *target, l *ledger) string {
	if l == nil || l.Manifest == "" || !layout.IsResticID(l.ResticSnapshot) {
		return ""
	}
	if ok, err := t.bucket.Exists(ctx, layout.ResticSnapshotKey(t.resticPath, l.ResticSnapshot)); err != nil || !ok {
		return ""
	}
	return l.ResticSnapshot
}

// unchangedSincePrevious are the previous manifest's entries of the files
// restic reports unchanged against parent: restic stored the parent's
// content for them, content and metadata equal, so the entry that
// describes the parent describes them, whatever happened to the file on
// disk around the run. Only when the sealed manifest names parent itself.
func unchangedSincePrevious(prev *previousManifest, parent string, unchanged []string) map[string]ManifestFile {
	if prev == nil || parent == "" || prev.resticSnapshot != parent {
		return nil
	}
	out := make(map[string]ManifestFile, len(unchanged))
	for _, p := range unchanged {
		if f, ok := prev.files[p]; ok {
			out[p] = f
		}
	}
	return out
}
