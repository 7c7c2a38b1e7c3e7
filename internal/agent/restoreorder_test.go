package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

func TestHashAfterRestic(t *testing.T) {
	cases := map[string]struct {
		reason     string
		size, room int64
		want       bool
	}{
		"FitsTwice":     {reason: "The restore fits twice over in the room: hashed after restic.", size: 1 << 30, room: 2 << 30, want: true},
		"FitsOnce":      {reason: "The restore fits once but not twice: hashed beside restic, while its files are recent.", size: 1 << 30, room: 2<<30 - 1},
		"LargerThanAll": {reason: "A restore larger than the room: hashed beside restic.", size: 8 << 30, room: 1 << 30},
		"SizeUnknown":   {reason: "The backup recorded no size: hashed beside restic.", size: 0, room: 1 << 30},
		"RoomUnknown":   {reason: "The memory could not be read: hashed beside restic.", size: 1 << 20, room: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, hashAfterRestic(tc.size, tc.room)); diff != "" {
				t.Errorf("\n%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestMemoryRoom(t *testing.T) {
	const meminfo = "MemTotal:       24000000 kB\nMemFree:        20000000 kB\nMemAvailable:   10000000 kB\n"
	avail := int64(10000000) << 10
	cases := map[string]struct {
		reason string
		files  map[string]string
		want   int64
	}{
		"NoLimit": {reason: "No cgroup sets a memory limit: what the node has available.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
			"/sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max\n", "/sys/fs/cgroup/kubepods/pod1/ctr/memory.current": "1000\n",
		}, want: avail},
		"ContainerLimit": {reason: "The container's limit leaves less than the node has: what it leaves.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
			"/sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "1073741824\n", "/sys/fs/cgroup/kubepods/pod1/ctr/memory.current": "73741824\n",
		}, want: 1000000000},
		"PodLimitTighter": {reason: "A parent's limit leaves less than the container's: the tightest counts.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
			"/sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "1073741824\n", "/sys/fs/cgroup/kubepods/pod1/ctr/memory.current": "73741824\n",
			"/sys/fs/cgroup/kubepods/pod1/memory.max": "600000000\n", "/sys/fs/cgroup/kubepods/pod1/memory.current": "100000000\n",
		}, want: 500000000},
		"NamespacedCgroup": {reason: "Inside a cgroup namespace the process's cgroup is the root: its limit counts.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/\n",
			"/sys/fs/cgroup/memory.max": "536870912\n", "/sys/fs/cgroup/memory.current": "36870912\n",
		}, want: 500000000},
		"OverLimit": {reason: "A cgroup using more than its limit leaves nothing.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/a\n",
			"/sys/fs/cgroup/a/memory.max": "1000\n", "/sys/fs/cgroup/a/memory.current": "2000\n",
		}, want: 0},
		"HighBelowMax": {reason: "memory.high, where reclaim starts, is lower than memory.max: it counts.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/a\n",
			"/sys/fs/cgroup/a/memory.max": "1073741824\n", "/sys/fs/cgroup/a/memory.high": "600000000\n", "/sys/fs/cgroup/a/memory.current": "100000000\n",
		}, want: 500000000},
		"CgroupV1": {reason: "A cgroup v1 memory limit over the pod: what it leaves.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "12:memory:/kubepods/pod1/ctr\n11:cpu,cpuacct:/kubepods/pod1/ctr\n",
			"/sys/fs/cgroup/memory/kubepods/pod1/ctr/memory.limit_in_bytes": "9223372036854771712\n", "/sys/fs/cgroup/memory/kubepods/pod1/ctr/memory.usage_in_bytes": "5000\n",
			"/sys/fs/cgroup/memory/kubepods/pod1/memory.limit_in_bytes": "536870912\n", "/sys/fs/cgroup/memory/kubepods/pod1/memory.usage_in_bytes": "36870912\n",
		}, want: 500000000},
		"CgroupV1NoLimit": {reason: "cgroup v1 without a limit: what the node has available.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "12:memory:/a\n",
			"/sys/fs/cgroup/memory/a/memory.limit_in_bytes": "9223372036854771712\n", "/sys/fs/cgroup/memory/a/memory.usage_in_bytes": "5000\n",
		}, want: avail},
		"Hybrid": {reason: "A hybrid host: the v1 memory hierarchy's limit counts beside the v2 tree's.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "12:memory:/a\n0::/a\n",
			"/sys/fs/cgroup/memory/a/memory.limit_in_bytes": "300000000\n", "/sys/fs/cgroup/memory/a/memory.usage_in_bytes": "100000000\n",
		}, want: 200000000},
		"OtherControllers": {reason: "Only cgroup v1 lines of other controllers: what the node has available.", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "11:cpu,cpuacct:/a\n",
		}, want: avail},
		"NoMeminfo": {reason: "The node's memory cannot be read: unknown.", files: map[string]string{}, want: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			// The files under a root of their own, /proc/self a link to
			// the process's directory as on Linux.
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "proc", "42"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("42", filepath.Join(root, "proc", "self")); err != nil {
				t.Fatal(err)
			}
			for p, content := range tc.files {
				writeFile(t, filepath.Join(root, strings.Replace(p, "/proc/self/", "/proc/42/", 1)), content)
			}
			got := memoryRoom(filepath.Join(root, "proc"), filepath.Join(root, "sys", "fs", "cgroup"))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestRestoreHashesAfterOrBeside restores with real restic, through a
// wrapper that records restic's command lines: a restore whose recorded
// size fits twice over in the page cache's room runs restic without
// naming its files and compares every file after it; one too large for
// the room, or of no recorded size, has restic name each file (and hashes
// it as named). Every file is compared either way.
func TestRestoreHashesAfterOrBeside(t *testing.T) {
	ctx := context.Background()
	src, lb, m := backedUpTwoFiles(t)
	calls := filepath.Join(t.TempDir(), "calls")
	wrapper := filepath.Join(t.TempDir(), "restic")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nexec %s \"$@\"\n", calls, servers.Binary(t, "restic"))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	lb.r.Options.Restic = wrapper
	cases := map[string]struct {
		reason string
		size   string
		room   int64
		want   string
	}{
		"Fits":        {reason: "The restore fits in the room: restic names no file.", size: "40 B", room: 1 << 30, want: "restore"},
		"TooLarge":    {reason: "The restore is larger than half the room: restic names each file.", size: "1.00 GiB", room: 1 << 30, want: "restore --verbose=2"},
		"SizeUnknown": {reason: "The backup recorded no size: restic names each file.", room: 1 << 30, want: "restore --verbose=2"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_ = os.Remove(calls)
			snap := recordOf(m.ResticSnapshot, src)
			c := snap.Status.Components["dump"]
			c.Size = tc.size
			snap.Status.Components["dump"] = c
			res, err := lb.restoreWith(ctx, filepath.Join(t.TempDir(), "out"), snap, func() int64 { return tc.room })
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(calls)
			if err != nil {
				t.Fatal(err)
			}
			var restores []string
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] == "restore" {
					kind := "restore"
					if strings.Contains(line, "--verbose=2") {
						kind += " --verbose=2"
					}
					restores = append(restores, kind)
				}
			}
			if diff := cmp.Diff([]any{[]string{tc.want}, 2}, []any{restores, int(res.filesChecked)}); diff != "" {
				t.Errorf("\n%s\nrestic's restores and the files compared: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// backedUpTwoFiles backs twoFiles up once into a local storage with real
// restic, as backup app-0: its source, the backup and its manifest.
func backedUpTwoFiles(t *testing.T) (string, *localBackup, *Manifest) {
	t.Helper()
	src := twoFiles(t)
	lb := newLocalBackup(t, src, logr.Discard())
	if _, err := lb.run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	m, err := lb.manifest(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return src, lb, m
}
