package agent

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
)

// BenchmarkLocalRestore restores a backup of 512 MiB (4 incompressible
// files of 128 MiB) from a local storage, without a cluster, six ways,
// taking turns to go first, each after the last one's files were removed
// and written back:
//
//   - plain: `restic restore` of the repository's directory, nothing else;
//   - beside: the same restic restore naming each file it finishes, with
//     the agent's hasher beside it hashing each as reported (the rest
//     after), and nothing else of the agent;
//   - after: restic restoring without naming its files, then every file
//     hashed on every core (hashAfterRestic), and nothing else of the
//     agent;
//   - hashing: only the hashing of "after", of files restored (untimed)
//     just before, from the page cache;
//   - job: the agent's restore as a Job runs it (the content manifest read
//     and its seal opened, restic, the hasher, the comparison, the sync),
//     with the machine's memory deciding when it hashes (hashAfterRestic);
//   - job-beside: the same, made to hash beside restic, as it does for a
//     restore larger than the page cache may hold.
//
// It reports each side's median time and processor time (the agent's and
// restic's), and each side's speed over plain restic's.
// STASHPLANE_BENCH_CPUPROFILE=FILE profiles the benchmark process (the
// agent's side) over the measured runs. STASHPLANE_BENCH_SET=mixed adds
// BenchmarkFirstBackup's 20,000 small files (40 MiB) beside the large
// ones, where the restore's work is also per file.
func BenchmarkLocalRestore(b *testing.B) {
	ctx := context.Background()
	src := b.TempDir()
	if os.Getenv("STASHPLANE_BENCH_SET") == "mixed" {
		src = smallFiles(b)
	}
	for i := range 4 {
		f, err := os.Create(filepath.Join(src, fmt.Sprintf("large-%d.bin", i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, 128<<20); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	lb := newLocalBackup(b, src, logr.Discard())
	if _, err := lb.run(ctx, 0); err != nil {
		b.Fatal(err)
	}
	m, err := lb.manifest(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	repoDir := filepath.Join(lb.storeDir, filepath.FromSlash(layout.ResticPrefix(lb.repo.Spec.Path, "nightly", "dump")))
	o := lb.r.Options
	plain := func(dest string) error {
		cmd := exec.Command(o.Restic, "-r", repoDir, "--password-file", o.PasswordFile, "--no-cache", "-q", "restore", m.ResticSnapshot, "--target", dest)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("plain restic restore: %v: %s", err, out)
		}
		return nil
	}
	// compareAll hashes what h has not and compares every file.
	compareAll := func(h *restoredHasher) error {
		var all []string
		for _, f := range m.Files {
			all = append(all, f.Path)
		}
		h.finish(all)
		for _, f := range m.Files {
			if got, err := h.get(f); err != nil || got.Digest(m.Algorithm()) != f.Digest(m.Algorithm()) {
				return fmt.Errorf("restored %s differs: %v", f.Path, err)
			}
		}
		return nil
	}
	beside := func(dest string) error {
		rc, err := restic.New(restic.Options{Binary: o.Restic, Repository: repoDir, PasswordFile: o.PasswordFile})
		if err != nil {
			return err
		}
		h := newRestoredHasher(m.Files, m.Algorithm(), placementFor(Options{Target: dest}, m.Paths))
		defer h.wait()
		if _, err := h.restore(ctx, rc, m.ResticSnapshot, dest, false); err != nil {
			return err
		}
		return compareAll(h)
	}
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	// The Snapshot's status as the backup's Job records it.
	snap := &storagev1alpha1.Snapshot{}
	snap.Name = "app-0"
	snap.Status.Components = map[string]storagev1alpha1.Component{"dump": {Phase: storagev1alpha1.ComponentSucceeded,
		Size:        formatBytes(uint64(size)),
		ResticStats: []storagev1alpha1.ResticStats{{Summary: &storagev1alpha1.ResticSummary{ID: m.ResticSnapshot, HostPath: src}}}}}
	jobWith := func(room func() int64) func(dest string) error {
		return func(dest string) error {
			res, err := lb.restoreWith(ctx, dest, snap, room)
			if err == nil && res.filesChecked != int64(len(m.Files)) {
				err = fmt.Errorf("%d restored files compared with the manifest, want %d", res.filesChecked, len(m.Files))
			}
			return err
		}
	}
	if !hashAfterRestic(componentSize(snap, "dump"), cacheRoom()) {
		b.Logf("this machine's memory makes the Job hash beside restic: %s restored, %s of room", snap.Status.Components["dump"].Size, formatBytes(uint64(cacheRoom())))
	}
	hashing := func(dest string) error {
		h := newRestoredHasher(m.Files, m.Algorithm(), placementFor(Options{Target: dest}, m.Paths))
		return compareAll(h)
	}
	after := func(dest string) error {
		rc, err := restic.New(restic.Options{Binary: o.Restic, Repository: repoDir, PasswordFile: o.PasswordFile})
		if err != nil {
			return err
		}
		if _, err := rc.RestoreItems(ctx, m.ResticSnapshot, dest, nil, nil); err != nil {
			return err
		}
		return hashing(dest)
	}
	defer profileCPU(b)()
	type side struct {
		name            string
		run             func(dest string) error
		prepare         func(dest string) error
		wall, self, chl []float64
	}
	sides := []*side{{name: "plain", run: plain}, {name: "beside", run: beside}, {name: "after", run: after},
		{name: "hashing", run: hashing, prepare: plain}, {name: "job", run: jobWith(nil)}, {name: "job-beside", run: jobWith(func() int64 { return 0 })}}
	load := loadAverage()
	b.ResetTimer()
	for i := range b.N {
		for k := range sides {
			sd := sides[(i+k)%len(sides)]
			dest := b.TempDir()
			if sd.prepare != nil {
				if err := sd.prepare(dest); err != nil {
					b.Fatal(err)
				}
			}
			syscall.Sync()
			self0, children0 := cpuSpent()
			start := time.Now()
			err := sd.run(dest)
			wall := time.Since(start)
			self1, children1 := cpuSpent()
			if err != nil {
				b.Fatalf("%s: %v", sd.name, err)
			}
			sd.wall = append(sd.wall, wall.Seconds())
			sd.self = append(sd.self, (self1 - self0).Seconds())
			sd.chl = append(sd.chl, (children1 - children0).Seconds())
			_ = os.RemoveAll(dest)
		}
	}
	b.StopTimer()
	for _, sd := range sides {
		b.ReportMetric(median(sd.wall), sd.name+"-s")
		b.ReportMetric(median(sd.self), sd.name+"-agent-cpu-s")
		b.ReportMetric(median(sd.chl), sd.name+"-restic-cpu-s")
	}
	plainS := median(sides[0].wall)
	for _, sd := range sides[1:] {
		if sd.prepare == nil {
			b.ReportMetric(plainS/median(sd.wall), sd.name+"/plain-speed")
		}
	}
	b.Logf("medians of %d runs each; machine load (1, 5, 15 min) before: %s, after: %s", b.N, load, loadAverage())
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	var one, five, fifteen string
	_, _ = fmt.Sscan(string(b), &one, &five, &fifteen)
	return one + " " + five + " " + fifteen
}

// manifest reads the content manifest of Snapshot app-<i>.
func (lb *localBackup) manifest(ctx context.Context, i int) (*Manifest, error) {
	rd, err := lb.bucket.NewReader(ctx, layout.ManifestKey(lb.repo.Spec.Path, fmt.Sprintf("app-%d", i), "dump"), nil)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return DecodeManifest(rd, "local", fmt.Sprintf("app-%d", i), "dump")
}

// restoreWith restores the backup app-0, whose Snapshot is snap, into dest
// as a restore Job does, from the storage mounted in the container.
//
// room, when not nil, is the memory the page cache may hold for the run
// (Runner.memoryRoom); nil reads the machine's.
func (lb *localBackup) restoreWith(ctx context.Context, dest string, snap *storagev1alpha1.Snapshot, room func() int64) (*restoreResult, error) {
	ph := &phases{last: time.Now()}
	r := &Runner{Log: logr.Discard(), Options: lb.r.Options, syncfs: lb.r.syncfs, memoryRoom: room}
	r.Options.Snapshot = "app-0"
	r.Options.Target = dest
	r.Options.Paths = nil
	_ = os.RemoveAll(r.Options.ScratchDir)
	t := &target{bucket: lb.bucket, open: lb.open, repo: lb.repo, snapshot: snap, session: "nightly", password: "local",
		resticPath: layout.ResticPrefix(lb.repo.Spec.Path, "nightly", "dump"), localRoot: lb.storeDir}
	res := &restoreResult{}
	err := r.restore(ctx, t, &bridgeErrors{log: logr.Discard()}, res, func() error { return nil }, ph)
	return res, err
}
