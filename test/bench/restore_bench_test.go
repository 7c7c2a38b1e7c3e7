package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
	"github.com/stashplane/stashplane/internal/verify"
)

const (
	restoreRuns       = 5
	verificationRuns  = 5
	restoreTarget     = 0.95 // restore Job over plain restic restore (#20)
	benchVerifierName = "bulk-verifier"
)

// restoreShapes are the data sets a restore Job is measured on: "bulk",
// the 216 MiB set the backup benchmark uses, where restic takes under two
// seconds and the Job's fixed overhead weighs; and "large", the bridge
// benchmark's 1.1 GiB set, long enough for a throughput figure.
// $STASHPLANE_BENCH_RESTORE_SHAPES picks some, comma-separated; the default
// is both.
var restoreShapes = map[string]shape{"bulk": bulkShape, "large": bridgeShape}

// selectedRestoreShapes are the names of the shapes to measure, in order.
func selectedRestoreShapes(b *testing.B) []string {
	env := os.Getenv("STASHPLANE_BENCH_RESTORE_SHAPES")
	if env == "" {
		return []string{"bulk", "large"}
	}
	var names []string
	for _, n := range strings.Split(env, ",") {
		n = strings.TrimSpace(n)
		if _, ok := restoreShapes[n]; !ok {
			b.Fatalf("cannot measure restore shape %q: want bulk or large", n)
		}
		names = append(names, n)
	}
	return names
}

// BenchmarkRestoreAndVerify backs each selected data set up once on a dev
// cluster with the provider running and prints, for each:
//
//   - the throughput of a restore Job (the agent's whole run: storage,
//     snapshot lookup, restic's restore, and the comparison of every
//     restored file with the content manifest) against plain `restic
//     restore` on the host from the same repository, runs alternating;
//   - the Job's fixed overhead: its duration less plain restic's, per
//     pair of runs, median;
//
// and, on the bulk set, the time of a RestoreOnly verification
// (BackupVerificationSession created to Succeeded) against the time of the
// backup that made the Snapshot (BackupSession created to Snapshot
// Succeeded, a first backup into a fresh repository), pairs one after
// another.
func BenchmarkRestoreAndVerify(b *testing.B) {
	loadBefore := loadAverage()
	bin := servers.Binary(b, "restic")
	work := b.TempDir()
	storageDir := filepath.Join(work, "storage")
	names := selectedRestoreShapes(b)
	dirs, sizes := map[string]string{}, map[string]int64{}
	objs := []client.Object{bulkVerifier()}
	for _, n := range names {
		dirs[n] = filepath.Join(work, n)
		if n == "large" {
			// Generated once and reused across runs, as by the bridge
			// benchmark.
			dirs[n] = dataDir(b)
		}
		sizes[n] = generate(b, dirs[n], restoreShapes[n])
		objs = append(objs, workload(n, dirs[n], "/var/lib/bulk"))
	}
	_, withBulk := sizes["bulk"]

	kube := startProvider(b)
	createBenchObjects(b, kube, storageDir, objs...)

	b.ResetTimer()
	for range b.N {
		measured := map[string]restoreTimes{}
		for _, n := range names {
			measured[n] = measureRestore(b, kube, bin, work, storageDir, n, sizes[n])
		}
		var backups, verifications, ratios []float64
		if withBulk {
			backups, verifications = measureVerification(b, kube, sizes["bulk"])
			for i := range verifications {
				ratios = append(ratios, verifications[i]/backups[i])
			}
		}
		b.StopTimer()

		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Println()
		fmt.Fprintln(w, "figure\tmedian\tp90 / spread\ttarget\tverdict\t")
		for _, n := range names {
			rt := measured[n]
			mib := float64(sizes[n]) / (1 << 20)
			ratio := median(rt.job) / median(rt.plain)
			b.ReportMetric(median(rt.plain), n+"-plain-restore-MB/s")
			b.ReportMetric(median(rt.job), n+"-job-restore-MB/s")
			b.ReportMetric(ratio, n+"-restore-job/plain")
			b.ReportMetric(median(rt.overhead), n+"-restore-overhead-s")
			fmt.Fprintf(w, "%s (%.0f MiB): plain restic restore\t%.1f MB/s\t±%.0f%%\t\t\t\n", n, mib, median(rt.plain), spread(rt.plain)/2)
			fmt.Fprintf(w, "%s: restore Job\t%.1f MB/s\t±%.0f%%\t\t\t\n", n, median(rt.job), spread(rt.job)/2)
			fmt.Fprintf(w, "%s: restore Job / plain restic\t%.2f×\t\t≥%.2f×\t%s\t\n", n, ratio, restoreTarget, verdict(ratio >= restoreTarget))
			fmt.Fprintf(w, "%s: plain restic restore, then its files synced\t%.1f MB/s\t±%.0f%%\t\t\t\n", n, median(rt.plainSynced), spread(rt.plainSynced)/2)
			fmt.Fprintf(w, "%s: restore Job / plain restic synced\t%.2f×\t\t\t\t\n", n, median(rt.job)/median(rt.plainSynced))
			b.ReportMetric(median(rt.job)/median(rt.plainSynced), n+"-restore-job/plain-synced")
			fmt.Fprintf(w, "%s: Job's fixed overhead (Job − plain, per pair)\t%.2f s\t%.2f s\t\t\t\n", n, median(rt.overhead), percentile(rt.overhead, 90))
			fmt.Fprintf(w, "%s: restore session, created to Succeeded\t%.2f s\t%.2f s\t\t\t\n", n, median(rt.session), percentile(rt.session, 90))
		}
		if withBulk {
			b.ReportMetric(median(ratios), "verification/backup")
			fmt.Fprintf(w, "backup, session created to Snapshot Succeeded\t%.2f s\t%.2f s\t\t\t\n", median(backups), percentile(backups, 90))
			fmt.Fprintf(w, "verification, created to Succeeded\t%.2f s\t%.2f s\t\t\t\n", median(verifications), percentile(verifications, 90))
			fmt.Fprintf(w, "verification / backup (per pair)\t%.2f×\t%.2f×\t\t\t\n", median(ratios), percentile(ratios, 90))
		}
		_ = w.Flush()
		for _, n := range names {
			fmt.Printf("(%s: %.0f MiB, %d large + %d small files)\n", n, float64(sizes[n])/(1<<20), restoreShapes[n].large, restoreShapes[n].small)
		}
		fmt.Printf("(restore: medians of %d alternating runs, spread is half the range; the overhead's p90 is nearest-rank;\n"+
			" plain restic is `restic restore <id>` on the host from the repository's directory, then its files synced (syncfs), timed apart;\n"+
			" the Job is the agent's whole run as its component records it, its files synced;\n"+
			" verification: %d pairs of a first backup into a fresh repository and the RestoreOnly verification of its Snapshot, p90 is nearest-rank)\n",
			restoreRuns, verificationRuns)
		b.StartTimer()
	}
	b.StopTimer()
	fmt.Printf("machine load average (1, 5, 15 min) before: %s, after: %s\n", loadBefore, loadAverage())
}

// bulkVerifier restores into a scratch claim made for each session, with
// the pvc-addon mounting it where the backup read the files.
func bulkVerifier() *corev1alpha1.BackupVerifier {
	return &corev1alpha1.BackupVerifier{
		ObjectMeta: metav1.ObjectMeta{Name: benchVerifierName, Namespace: benchNamespace},
		Spec: corev1alpha1.BackupVerifierSpec{
			Type:      corev1alpha1.VerificationRestoreOnly,
			Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 3 1 1 *"},
			RestoreOption: corev1alpha1.RestoreOption{
				Target: storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "scratch"},
				AddonInfo: corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{
					Name: "logical-backup-restore", Params: &runtime.RawExtension{Raw: []byte(`{"mountPath": "/var/lib/bulk"}`)},
				}}},
			},
		},
	}
}

// restoreTimes are MB/s per run of plain restic and of the restore Job,
// the Job's seconds over plain restic's per pair of runs, and the restore
// session's time from creation to Succeeded.
type restoreTimes struct {
	plain, job, overhead, session []float64
	// plainSynced is plain restic's restore and the sync of its files.
	plainSynced []float64
}

// syncDir writes to the disk what the filesystem of dir still holds in
// the page cache, and says how long that took.
func syncDir(b *testing.B, dir string) time.Duration {
	b.Helper()
	f, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		b.Fatalf("cannot sync %s: %v", dir, err)
	}
	return time.Since(start)
}

// measureRestore backs the data set of Deployment name up once, then
// restores its Snapshot alternately with plain restic on the host and with
// a RestoreSession into a Deployment whose volume is an empty host
// directory.
func measureRestore(b *testing.B, kube client.WithWatch, bin, work, storageDir, name string, size int64) restoreTimes {
	b.Helper()
	ctx := context.Background()
	repo := name + "-restore"
	bc := protect(repo+"-backup", name, "local", repo, "/var/lib/bulk")
	if err := kube.Create(ctx, bc); err != nil {
		b.Fatal(err)
	}
	snap := fullSnapshot(b, kube, bc.Name)
	c := snap.Status.Components[storagev1alpha1.ComponentDump]
	if len(c.ResticStats) == 0 || c.ResticStats[0].Summary == nil {
		b.Fatalf("snapshot %s: component without restic summary: %+v", snap.Name, c)
	}
	resticID := c.ResticStats[0].Summary.ID
	repoDir := resticDir(storageDir, repo)
	mbps := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	var rt restoreTimes
	var plainSeconds, jobSeconds float64
	fmt.Printf("restore throughput (%s): %.0f MiB from snapshot %s, plain restic and a restore Job alternating\n", name, float64(size)/(1<<20), snap.Name)

	runPlain := func(i int) {
		dir, cache := filepath.Join(work, fmt.Sprintf("%s-plain-restore-%d", name, i)), filepath.Join(work, fmt.Sprintf("%s-plain-restore-%d-cache", name, i))
		defer func() { _ = os.RemoveAll(dir); _ = os.RemoveAll(cache) }()
		r, err := restic.New(restic.Options{Binary: bin, Repository: repoDir, Password: benchPassword, CacheDir: cache})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sum, err := r.Restore(ctx, resticID, dir, nil)
		elapsed := time.Since(start)
		if err != nil {
			b.Fatalf("plain restic restore: %v", err)
		}
		if int64(sum.BytesRestored) != size {
			b.Fatalf("plain restic restored %d bytes of %d", sum.BytesRestored, size)
		}
		// The Job's files are on the disk when it reports (it syncs
		// their filesystem): plain restic's are too only once synced.
		// Synced, neither side leaves the other pages to write.
		synced := elapsed + syncDir(b, dir)
		rt.plain, rt.plainSynced, plainSeconds = append(rt.plain, mbps(elapsed)), append(rt.plainSynced, mbps(synced)), elapsed.Seconds()
		fmt.Printf("  plain restic restore run %d: %7.1f MB/s (%s; synced %s)\n", i+1, mbps(elapsed), elapsed.Round(10*time.Millisecond), synced.Round(10*time.Millisecond))
	}
	runJob := func(i int) {
		target := fmt.Sprintf("%s-restored-%d", name, i)
		dir := filepath.Join(work, target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = os.RemoveAll(dir) }()
		if err := kube.Create(ctx, workload(target, dir, "/var/lib/bulk")); err != nil {
			b.Fatal(err)
		}
		rs := bulkRestore(target, repo, snap.Name)
		var done *corev1alpha1.RestoreSession
		elapsed := timeUntil(b, kube, &corev1alpha1.RestoreSessionList{}, rs, func(o client.Object) (bool, error) {
			s, ok := o.(*corev1alpha1.RestoreSession)
			if !ok {
				return false, nil
			}
			switch s.Status.Phase {
			case corev1alpha1.RestoreSucceeded:
				done = s
				return true, nil
			case corev1alpha1.RestoreFailed, corev1alpha1.RestoreInvalid:
				return false, fmt.Errorf("restoresession %s is %s: %+v", s.Name, s.Status.Phase, s.Status)
			}
			return false, nil
		})
		agent, err := time.ParseDuration(done.Status.Components[storagev1alpha1.ComponentDump].Duration)
		if err != nil {
			b.Fatalf("restoresession %s: component without duration: %+v", rs.Name, done.Status.Components)
		}
		if got := dirSize(b, dir); got != size {
			b.Fatalf("the restore Job restored %d bytes of %d", got, size)
		}
		rt.job, rt.session, jobSeconds = append(rt.job, mbps(agent)), append(rt.session, elapsed.Seconds()), agent.Seconds()
		fmt.Printf("  restore Job          run %d: %7.1f MB/s (%s; session created to Succeeded %s)\n", i+1, mbps(agent),
			agent.Round(10*time.Millisecond), elapsed.Round(10*time.Millisecond))
		fmt.Printf("  restore Job          run %d, the agent's steps: %s\n", i+1, phasesLine(ctx, kube, rs.Name))
	}
	for i := range restoreRuns {
		if i%2 == 0 {
			runPlain(i)
			runJob(i)
		} else {
			runJob(i)
			runPlain(i)
		}
		rt.overhead = append(rt.overhead, jobSeconds-plainSeconds)
		fmt.Printf("  fixed overhead       run %d: %+.2f s\n", i+1, jobSeconds-plainSeconds)
	}
	return rt
}

// bulkRestore restores the Snapshot of repository into the Deployment.
func bulkRestore(deployment, repository, snapshot string) *corev1alpha1.RestoreSession {
	params, _ := json.Marshal(map[string]any{"paths": []string{"/var/lib/bulk"}})
	return &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: deployment, Namespace: benchNamespace},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: deployment},
			DataSource: corev1alpha1.RestoreDataSource{Repository: repository, Snapshot: snapshot},
			Addon: &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{
				Name: "logical-backup-restore", Params: &runtime.RawExtension{Raw: params},
			}}},
			RestoreTimeout: &metav1.Duration{Duration: sessionWaitTimeout},
		},
	}
}

// dirSize is the total size of the regular files under dir.
func dirSize(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// measureVerification runs pairs of a first backup of the bulk data set
// into a fresh repository linked to the verifier and a verification of
// its Snapshot, one after another, and returns the seconds of each.
func measureVerification(b *testing.B, kube client.WithWatch, size int64) (backups, verifications []float64) {
	b.Helper()
	fmt.Printf("verification: %d pairs of a first backup of %.0f MiB and the RestoreOnly verification of its Snapshot\n", verificationRuns, float64(size)/(1<<20))
	for i := range verificationRuns {
		name := fmt.Sprintf("bulk-v%d", i)
		bc := protect(name+"-backup", "bulk", "local", name, "/var/lib/bulk")
		bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: benchVerifierName}
		backup := timeFirstBackup(b, kube, bc)
		snap := fullSnapshot(b, kube, bc.Name)

		bvs := verify.Session(benchNamespace, benchVerifierName, snap, time.Now())
		verification := timeUntil(b, kube, &corev1alpha1.BackupVerificationSessionList{}, bvs, func(o client.Object) (bool, error) {
			s, ok := o.(*corev1alpha1.BackupVerificationSession)
			if !ok {
				return false, nil
			}
			switch s.Status.Phase {
			case corev1alpha1.VerificationSessionSucceeded:
				return true, nil
			case corev1alpha1.VerificationSessionFailed, corev1alpha1.VerificationSessionSkipped:
				return false, fmt.Errorf("backupverificationsession %s is %s: %+v", s.Name, s.Status.Phase, s.Status.Conditions)
			}
			return false, nil
		})
		backups, verifications = append(backups, backup.Seconds()), append(verifications, verification.Seconds())
		fmt.Printf("  pair %d: backup %6.2fs, verification %6.2fs, ratio %.2f×\n", i+1, backup.Seconds(), verification.Seconds(), verification.Seconds()/backup.Seconds())
	}
	return backups, verifications
}

// timeFirstBackup creates a configuration and times its first backup from
// the moment its BackupSession is seen created to the moment its Snapshot
// is seen Succeeded, through one watch of each.
func timeFirstBackup(b *testing.B, kube client.WithWatch, bc *corev1alpha1.BackupConfiguration) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sessionWaitTimeout)
	defer cancel()
	labels := client.MatchingLabels{corev1alpha1.LabelInvokerName: bc.Name}
	sessions, err := kube.Watch(ctx, &corev1alpha1.BackupSessionList{}, client.InNamespace(benchNamespace), labels)
	if err != nil {
		b.Fatalf("cannot watch backupsessions: %v", err)
	}
	defer sessions.Stop()
	snaps, err := kube.Watch(ctx, &storagev1alpha1.SnapshotList{}, client.InNamespace(benchNamespace), labels)
	if err != nil {
		b.Fatalf("cannot watch snapshots: %v", err)
	}
	defer snaps.Stop()
	if err := kube.Create(ctx, bc); err != nil {
		b.Fatal(err)
	}
	var created time.Time
	for {
		select {
		case <-ctx.Done():
			b.Fatalf("the first backup of %s did not succeed within %s", bc.Name, sessionWaitTimeout)
		case ev, ok := <-sessions.ResultChan():
			if !ok {
				b.Fatalf("the watch of backupsessions ended while %s ran", bc.Name)
			}
			if ev.Type == watch.Added && created.IsZero() {
				created = time.Now()
			}
		case ev, ok := <-snaps.ResultChan():
			if !ok {
				b.Fatalf("the watch of snapshots ended while %s ran", bc.Name)
			}
			s, ok := ev.Object.(*storagev1alpha1.Snapshot)
			if !ok || s.Spec.Type != storagev1alpha1.SnapshotFullBackup {
				continue
			}
			switch s.Status.Phase {
			case storagev1alpha1.SnapshotSucceeded:
				if created.IsZero() {
					b.Fatalf("snapshot %s succeeded before its session was seen", s.Name)
				}
				return time.Since(created)
			case storagev1alpha1.SnapshotFailed:
				b.Fatalf("snapshot %s failed: %+v", s.Name, s.Status)
			}
		}
	}
}

// timeUntil creates obj and returns the time until done says it is
// finished, as a watch of its list sees it.
func timeUntil(b *testing.B, kube client.WithWatch, list client.ObjectList, obj client.Object, done func(client.Object) (bool, error)) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sessionWaitTimeout)
	defer cancel()
	w, err := kube.Watch(ctx, list, client.InNamespace(benchNamespace))
	if err != nil {
		b.Fatalf("cannot watch %T: %v", list, err)
	}
	defer w.Stop()
	start := time.Now()
	if err := kube.Create(ctx, obj); err != nil {
		b.Fatal(err)
	}
	for {
		select {
		case <-ctx.Done():
			b.Fatalf("%s did not finish within %s", obj.GetName(), sessionWaitTimeout)
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatalf("the watch ended while %s ran", obj.GetName())
			}
			o, isObj := ev.Object.(client.Object)
			if ev.Type == watch.Error || !isObj || o.GetName() != obj.GetName() {
				continue
			}
			finished, err := done(o)
			if err != nil {
				b.Fatal(err)
			}
			if finished {
				return time.Since(start)
			}
		}
	}
}
