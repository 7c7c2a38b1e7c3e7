package agent

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/stashplane/stashplane/internal/restic"
)

// restoredHasher hashes the restored files of a manifest, on one worker
// per core (fileWorkers): all of them once restic has exited (finish), or,
// for a restore too large for the page cache to keep until then
// (hashAfterRestic), while restic restores them: restic reports each file
// it has finished, and a worker hashes it soon after (hashWakeEvery),
// mostly from the page cache. A hash taken during the restore is
// only a fast path: a file whose hash or size differs from the manifest's,
// or that was never reported, is hashed again once restic has exited, so
// an early read can never make a comparison fail, let alone pass.
type restoredHasher struct {
	// place is where the backed-up files are restored.
	place placement

	mu sync.Mutex
	// want are the restored locations of the manifest's files.
	want map[string]bool
	// alg is the manifest's hash algorithm (Manifest.Algorithm).
	alg string
	// pending: the manifest is still being read (newPendingHasher); what
	// restic reports meanwhile waits in early until expect names the
	// files.
	pending bool
	early   []string
	// abandoned: no manifest was read for the lookup; restic's reports
	// are not kept (a restore of millions of files would hold them all),
	// and a manifest read for the comparison is hashed after restic.
	abandoned bool
	queue     []string
	queued    map[string]bool
	done      map[string]hashed
	closed    bool
	// stop is closed with closed: the ticker ends.
	stop chan struct{}
	wake *sync.Cond
	wg   sync.WaitGroup
}

// An idle worker is woken when hashWakeBatch files wait, or at the next
// tick of hashWakeEvery. restic reports its files one by one, and a
// restore of many small files reports them faster than it takes to wake a
// worker for each (a futex call on both sides and a trip through the
// scheduler, more than hashing a small file from the page cache costs);
// an idle worker is woken for a file within a tick, while the file is
// still in the page cache.
const (
	hashWakeBatch = 32
	hashWakeEvery = 20 * time.Millisecond
)

// newRestoredHasher starts the workers for the manifest's files, restored
// where place puts them, which hash them with alg, the manifest's
// algorithm.
func newRestoredHasher(files []ManifestFile, alg string, place placement) *restoredHasher {
	h := newPendingHasher(place)
	h.expect(files, alg)
	return h
}

// newPendingHasher starts the workers of a restore whose manifest is still
// being read: restic's reports are kept until expect names the manifest's
// files, and hashed then.
func newPendingHasher(place placement) *restoredHasher {
	h := &restoredHasher{want: map[string]bool{}, place: place, alg: backupHash, pending: true, queued: map[string]bool{}, done: map[string]hashed{}, stop: make(chan struct{})}
	h.wake = sync.NewCond(&h.mu)
	for range fileWorkers() {
		h.wg.Add(1)
		go h.work()
	}
	h.wg.Add(1)
	go h.tick()
	return h
}

// tick wakes the idle workers every hashWakeEvery while files wait, until
// the workers are stopped.
func (h *restoredHasher) tick() {
	defer h.wg.Done()
	every(hashWakeEvery, h.stop, func() {
		h.mu.Lock()
		if len(h.queue) > 0 {
			h.wake.Broadcast()
		}
		h.mu.Unlock()
	})
}

// fileWorkers is how many files the agent works on at once when it
// spreads them over the cores: a restore's hashers, the look after a
// quiet backup. One per core the agent may use, at most 8: a Job without
// a CPU limit sees every core of its node, each hasher holds a read buffer
// (hashBufferSize), and past a few workers the hashing of a large file is
// spread over the cores by the BLAKE3 hasher itself.
func fileWorkers() int { return min(runtime.GOMAXPROCS(0), 8) }

// expect names the manifest's files and its algorithm, and queues those
// restic has reported finished already.
func (h *restoredHasher) expect(files []ManifestFile, alg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.pending {
		return
	}
	h.pending = false
	h.alg = alg
	for _, f := range files {
		h.want[h.place.at(f.Path)] = true
	}
	for _, p := range h.early {
		h.add(p)
	}
	h.early = nil
}

// abandon stops keeping restic's reports for a manifest that could not be
// read; expect may still name the files, which finish then hashes.
func (h *restoredHasher) abandon() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.abandoned = true
	h.early = nil
}

// add queues p for a worker, once; h.mu is held.
func (h *restoredHasher) add(p string) {
	if h.want[p] && !h.queued[p] && !h.closed {
		h.queued[p] = true
		h.queue = append(h.queue, p)
		if len(h.queue) >= hashWakeBatch {
			h.wake.Signal()
		}
	}
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
		p, alg := h.queue[0], h.alg
		h.queue = h.queue[1:]
		h.mu.Unlock()
		f, err := hashFile(p, alg)
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
		h.mu.Lock()
		if h.pending {
			if !h.abandoned {
				h.early = append(h.early, p)
			}
		} else {
			h.add(p)
		}
		h.mu.Unlock()
	}
}

// restore runs restic's restore of snapshot into dest, hashing the files
// as restic finishes them; after, when restic need not name them: the
// files are then hashed by finish, once restic has exited
// (hashAfterRestic).
func (h *restoredHasher) restore(ctx context.Context, rc *restic.Restic, snapshot, dest string, after bool, include ...string) (*restic.RestoreSummary, error) {
	h.mu.Lock()
	none := len(h.want) == 0 && !h.pending
	h.mu.Unlock()
	if none || after {
		// Nothing to hash now: restic need not name what it restored.
		return rc.RestoreItems(ctx, snapshot, dest, nil, nil, include...)
	}
	return rc.RestoreItems(ctx, snapshot, dest, nil, h.finished(dest), include...)
}

// finish hashes those of files (paths in the manifest) that restic did
// not report, on every core rather than one by one in the comparison, and
// stops the workers.
func (h *restoredHasher) finish(files []string) {
	h.mu.Lock()
	for _, f := range files {
		h.add(h.place.at(f))
	}
	h.mu.Unlock()
	h.wait()
}

// wait lets the workers finish what restic reported and stops them.
func (h *restoredHasher) wait() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.stop)
	}
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
	alg := h.alg
	h.mu.Unlock()
	if ok && r.err == nil && r.file.Size == f.Size && r.file.Digest(alg) == f.Digest(alg) {
		return r.file, nil
	}
	return hashFile(p, alg)
}
