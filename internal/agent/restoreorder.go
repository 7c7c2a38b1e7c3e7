package agent

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"slices"
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
// the node has available (MemAvailable) or, when it is less, what the
// tightest cgroup memory limit over this process's cgroup and its parents
// leaves (cgroup v2's memory.high or memory.max, whichever is lower, less
// memory.current; cgroup v1's memory.limit_in_bytes less
// memory.usage_in_bytes). Inside a cgroup namespace only the container's
// own cgroup is visible, so a pod's limit over it is not seen. 0 when the
// node's memory cannot be read.
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
		// hierarchy-ID:controllers:path; cgroup v2's is 0 with no
		// controllers, v1's memory hierarchy names "memory".
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		var root string
		var left func(dir string) (int64, bool)
		switch {
		case f[0] == "0" && f[1] == "":
			root, left = "/sys/fs/cgroup", func(dir string) (int64, bool) { return cgroupLeft(read, dir) }
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			root, left = "/sys/fs/cgroup/memory", func(dir string) (int64, bool) { return cgroupV1Left(read, dir) }
		default:
			continue
		}
		for dir := path.Clean(f[2]); ; dir = path.Dir(dir) {
			if l, limited := left(path.Join(root, dir)); limited {
				room = min(room, l)
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

// cgroupLeft is what the cgroup v2 directory dir's memory limits leave
// above its use: the lower of memory.high, where the kernel starts to
// reclaim, and memory.max. limited is false when it sets neither or they
// cannot be read.
func cgroupLeft(read func(string) ([]byte, error), dir string) (left int64, limited bool) {
	limit, limited := int64(0), false
	for _, name := range []string{"memory.high", "memory.max"} {
		// "max", or a file this kernel lacks: no limit there.
		if n, ok := readInt(read, path.Join(dir, name)); ok && (!limited || n < limit) {
			limit, limited = n, true
		}
	}
	if !limited {
		return 0, false
	}
	used, ok := readInt(read, path.Join(dir, "memory.current"))
	if !ok {
		return 0, false
	}
	return limit - used, true
}

// cgroupV1Left is what the cgroup v1 memory directory dir's limit leaves
// above its use (a cgroup without a limit reports a huge one, which the
// node's memory then bounds).
func cgroupV1Left(read func(string) ([]byte, error), dir string) (left int64, limited bool) {
	limit, ok := readInt(read, path.Join(dir, "memory.limit_in_bytes"))
	if !ok {
		return 0, false
	}
	used, ok := readInt(read, path.Join(dir, "memory.usage_in_bytes"))
	if !ok {
		return 0, false
	}
	return limit - used, true
}

// readInt reads the file p holding one integer.
func readInt(read func(string) ([]byte, error), p string) (int64, bool) {
	data, err := read(p)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n, err == nil
}
