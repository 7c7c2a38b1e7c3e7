package agent

import (
	"runtime"
	"sync"
)

// restoredHashes are the restored files' hashes, taken before the restore
// compares them with the manifest, by one worker per core: restored files
// are mostly in the page cache, so hashing is bound by the processor, and
// a restore Job has the node's cores to itself at that point.
type restoredHashes map[string]hashed

// hashRestored hashes every manifest file under paths where the restore
// put it (restoredPath(target, file)).
func hashRestored(files []ManifestFile, paths []string, target string) restoredHashes {
	var todo []string
	for _, f := range files {
		if underAny(f.Path, paths) {
			todo = append(todo, f.Path)
		}
	}
	results := make([]hashed, len(todo))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(todo), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f, err := hashFile(restoredPath(target, todo[i]))
				results[i] = hashed{file: f, err: err}
			}
		}()
	}
	for i := range todo {
		next <- i
	}
	close(next)
	wg.Wait()
	out := make(restoredHashes, len(todo))
	for i, p := range todo {
		out[p] = results[i]
	}
	return out
}

// get is the hash of the file restored for the manifest's path p.
func (h restoredHashes) get(p string) (ManifestFile, error) {
	r := h[p]
	return r.file, r.err
}
