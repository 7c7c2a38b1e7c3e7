package agent

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/stashplane/stashplane/internal/restic"
)

// restoredHasher hashes the restored files of a manifest while restic
// restores them: restic reports each file it has finished, and one worker
// per core hashes it at once, mostly from the page cache, so that the
// comparison with the manifest overlaps the restore instead of following
// it. A hash taken during the restore is only a fast path: a file whose
// hash or size differs from the manifest's, or that was never reported, is
// hashed again once restic has exited, so an early read can never make a
// comparison fail, let alone pass.
type restoredHasher struct {
	// want are the restored locations of the manifest's files.
	want map[string]bool
	// place is where the backed-up files are restored.
	place placement
	// alg is the manifest's hash algorithm (Manifest.Algorithm).
	alg string

	mu     sync.Mutex
	queue  []string
	queued map[string]bool
	done   map[string]hashed
	closed bool
	wake   *sync.Cond
	wg     sync.WaitGroup
}

// newRestoredHasher starts the workers for the manifest's files, restored
// where place puts them, which hash them with alg, the manifest's
// algorithm.
func newRestoredHasher(files []ManifestFile, alg string, place placement) *restoredHasher {
	h := &restoredHasher{want: map[string]bool{}, place: place, alg: alg, queued: map[string]bool{}, done: map[string]hashed{}}
	h.wake = sync.NewCond(&h.mu)
	for _, f := range files {
		h.want[place.at(f.Path)] = true
	}
	for range runtime.GOMAXPROCS(0) {
		h.wg.Add(1)
		go h.work()
	}
	return h
}

func (h *restoredHasher) work() {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		for len(h.queue) == 0 && !h.closed {
			h.wake.Wait()
		}
		if len(h.queue) == 0 {
			h.mu.Unlock()
			return
		}
		p := h.queue[0]
		h.queue = h.queue[1:]
		h.mu.Unlock()
		f, err := hashFile(p, h.alg)
		h.mu.Lock()
		h.done[p] = hashed{file: f, err: err}
		h.mu.Unlock()
	}
}

// finished is restic's report of an item it restored under dest; it never
// blocks restic's output.
func (h *restoredHasher) finished(dest string) func(item string) {
	return func(item string) {
		p := filepath.Join(dest, item)
		if !h.want[p] {
			return
		}
		h.mu.Lock()
		if !h.queued[p] && !h.closed {
			h.queued[p] = true
			h.queue = append(h.queue, p)
			h.wake.Signal()
		}
		h.mu.Unlock()
	}
}

// restore runs restic's restore of snapshot into dest, hashing the files
// as restic finishes them.
func (h *restoredHasher) restore(ctx context.Context, rc *restic.Restic, snapshot, dest string, include ...string) (*restic.RestoreSummary, error) {
	return rc.RestoreItems(ctx, snapshot, dest, nil, h.finished(dest), include...)
}

// wait lets the workers finish what restic reported and stops them.
func (h *restoredHasher) wait() {
	h.mu.Lock()
	h.closed = true
	h.wake.Broadcast()
	h.mu.Unlock()
	h.wg.Wait()
}

// get is the hash of the manifest file f as restored, taken again now
// unless the one taken during the restore matched f.
func (h *restoredHasher) get(f ManifestFile) (ManifestFile, error) {
	p := h.place.at(f.Path)
	h.mu.Lock()
	r, ok := h.done[p]
	h.mu.Unlock()
	if ok && r.err == nil && r.file.Size == f.Size && r.file.Digest(h.alg) == f.Digest(h.alg) {
		return r.file, nil
	}
	return hashFile(p, h.alg)
}
