package agent

import (
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"

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
	return memoryRoom(procfs.DefaultMountPoint, "/sys/fs/cgroup")
}

// memoryRoom is cacheRoom with proc mounted at procRoot and the cgroup
// filesystems at cgroupRoot (tests give their own).
func memoryRoom(procRoot, cgroupRoot string) int64 {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return 0
	}
	mem, err := fs.Meminfo()
	if err != nil || mem.MemAvailableBytes == nil {
		return 0
	}
	room := int64(min(*mem.MemAvailableBytes, math.MaxInt64))
	self, err := fs.Self()
	if err != nil {
		return room
	}
	groups, err := self.Cgroups()
	if err != nil {
		return room
	}
	for _, g := range groups {
		var files memoryFiles
		switch {
		case g.HierarchyID == 0 && len(g.Controllers) == 0:
			files = cgroupV2Memory
		case slices.Contains(g.Controllers, "memory"):
			files = cgroupV1Memory
		default:
			continue
		}
		if !strings.HasPrefix(g.Path, "/") {
			continue
		}
		for dir := path.Clean(g.Path); ; dir = path.Dir(dir) {
			if l, limited := files.left(filepath.Join(cgroupRoot, files.mount, dir)); limited {
				room = min(room, l)
			}
			if dir == "/" {
				break
			}
		}
	}
	return max(room, 0)
}

// memoryFiles name a cgroup version's memory files: where its memory
// hierarchy is mounted under the cgroup root, its limits, and its use.
type memoryFiles struct {
	mount  string
	limits []string
	usage  string
}

var (
	// cgroupV2Memory: memory.high is where the kernel starts to reclaim.
	cgroupV2Memory = memoryFiles{limits: []string{"memory.high", "memory.max"}, usage: "memory.current"}
	// A cgroup v1 without a limit reports a huge one, which the node's
	// memory then bounds.
	cgroupV1Memory = memoryFiles{mount: "memory", limits: []string{"memory.limit_in_bytes"}, usage: "memory.usage_in_bytes"}
)

// left is what the lowest of the cgroup directory dir's memory limits
// leaves above its use; limited is false when it sets none ("max", or a
// file this kernel lacks) or its use cannot be read.
func (m memoryFiles) left(dir string) (left int64, limited bool) {
	var limit int64
	for _, name := range m.limits {
		if n, ok := readInt(filepath.Join(dir, name)); ok && (!limited || n < limit) {
			limit, limited = n, true
		}
	}
	if !limited {
		return 0, false
	}
	used, ok := readInt(filepath.Join(dir, m.usage))
	if !ok {
		return 0, false
	}
	return limit - used, true
}

// readInt reads the file p holding one integer.
func readInt(p string) (int64, bool) {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n, err == nil
}
