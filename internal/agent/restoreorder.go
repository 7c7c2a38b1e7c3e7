package agent

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"strconv"
	"strings"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// hashAfterRestic says whether a restore of size bytes runs restic without
// naming the files it restores and hashes them all once it has exited, on
// every core, rather than each file as restic reports it. It does when the
// restored files fit twice over in room, the memory the page cache may
// hold for this Job (cacheRoom): they are then still in the page cache
// when the hasher reads them. Hashing beside restic costs more than after
// it whenever that holds: restic naming every file, reading those lines
// and waking the hasher for them, and the hasher taking processor time
// from restic's own workers cost more than reading the cached files back
// (BenchmarkLocalRestore, docs/performance.md). A restore larger than
// that, or whose size or room is not known, hashes each file while it was
// written recently enough to be cached, as restic reports it.
func hashAfterRestic(size, room int64) bool {
	return size > 0 && room > 0 && size <= room/2
}

// componentSize is the size the backup recorded for the component, or 0.
func componentSize(s *storagev1alpha1.Snapshot, component string) int64 {
	if s == nil {
		return 0
	}
	n, err := storagev1alpha1.ParseSize(s.Status.Components[component].Size)
	if err != nil {
		return 0
	}
	return n
}

// cacheRoom is the memory the page cache may hold for this process: what
// the node has available (MemAvailable), less, under cgroup v2 memory
// limits, what the tightest limit over this process's cgroup and its
// parents leaves. 0 when it cannot be read.
func cacheRoom() int64 {
	return memoryRoom(os.ReadFile)
}

// memoryRoom is cacheRoom reading files with read (tests give their own).
func memoryRoom(read func(string) ([]byte, error)) int64 {
	room := memAvailable(read)
	if room <= 0 {
		return 0
	}
	data, err := read("/proc/self/cgroup")
	if err != nil {
		return room
	}
	for _, line := range strings.Split(string(data), "\n") {
		p, ok := strings.CutPrefix(line, "0::")
		if !ok {
			continue
		}
		for dir := path.Clean("/" + p); ; dir = path.Dir(dir) {
			if left, limited := cgroupLeft(read, path.Join("/sys/fs/cgroup", dir)); limited {
				room = min(room, left)
			}
			if dir == "/" {
				break
			}
		}
	}
	return max(room, 0)
}

// memAvailable is /proc/meminfo's MemAvailable in bytes, or 0.
func memAvailable(read func(string) ([]byte, error)) int64 {
	data, err := read("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}

// cgroupLeft is what the cgroup v2 directory dir's memory limit leaves
// above its use; limited is false when it sets none or cannot be read.
func cgroupLeft(read func(string) ([]byte, error), dir string) (left int64, limited bool) {
	maxData, err := read(path.Join(dir, "memory.max"))
	if err != nil {
		return 0, false
	}
	limit, err := strconv.ParseInt(strings.TrimSpace(string(maxData)), 10, 64)
	if err != nil {
		// "max": no limit here.
		return 0, false
	}
	curData, err := read(path.Join(dir, "memory.current"))
	if err != nil {
		return 0, false
	}
	used, err := strconv.ParseInt(strings.TrimSpace(string(curData)), 10, 64)
	if err != nil {
		return 0, false
	}
	return limit - used, true
}
