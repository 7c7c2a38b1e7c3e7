package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
	"github.com/stashplane/stashplane/internal/trigger"
)

// The session benchmark's data sets: a small one for the session overhead;
// for the throughput of a backup Job, one of about 216 MiB (a few large
// incompressible files and many small text-like ones), one of about
// 1.1 GiB (the bridge's and the restore's set, bridgeShape) and one of
// 20,000 small files, where restic's work is per file rather than per
// byte.
var (
	smallShape = shape{small: 300, smallMax: 16 << 10}
	bulkShape  = shape{large: 3, largeSize: 64 << 20, small: 2000, smallMax: 24 << 10}
	filesShape = shape{small: 20000, smallMax: 4 << 10}
)

// dataSet is a data set whose backups are timed: a host directory, and
// the Deployment that mounts it at mountPath.
type dataSet struct {
	name, mountPath, dir string
	shape                shape
	size                 int64
}

const (
	overheadSessions   = 10
	throughputRuns     = 5
	overheadTarget     = 2.0  // seconds, median
	throughputTarget   = 0.95 // in-Job over plain restic
	unchangedTarget    = 1.2  // the Job's time over plain restic's, unchanged data
	sessionWaitTimeout = 5 * time.Minute
)

// BenchmarkBackupSession runs BackupSessions on a dev cluster with the
// provider running and prints two figures:
//
//   - the session overhead: BackupSession created to Snapshot Succeeded,
//     less restic's own backup time, over sessions started one after another
//     for a Deployment whose volume holds a small data set;
//   - the throughput of a backup Job against plain restic on the same data,
//     each a first backup into a fresh repository, runs alternating.
func BenchmarkBackupSession(b *testing.B) {
	loadBefore := loadAverage()
	bin := servers.Binary(b, "restic")
	work := b.TempDir()
	smallDir, storageDir := filepath.Join(work, "small"), filepath.Join(work, "storage")
	generate(b, smallDir, smallShape)
	sets := []*dataSet{
		{name: "bulk", mountPath: "/var/lib/bulk", dir: filepath.Join(work, "bulk"), shape: bulkShape},
		{name: "large", mountPath: "/var/lib/large", dir: filepath.Join(work, "large"), shape: bridgeShape},
		{name: "files", mountPath: "/var/lib/files", dir: filepath.Join(work, "files"), shape: filesShape},
	}
	// STASHPLANE_BENCH_ONLY=files (or bulk, large) measures that data set alone,
	// without the session overhead, for a quicker look at one figure.
	if only := os.Getenv("STASHPLANE_BENCH_ONLY"); only != "" {
		sets = slices.DeleteFunc(sets, func(s *dataSet) bool { return s.name != only })
		if len(sets) == 0 {
			b.Fatalf("STASHPLANE_BENCH_ONLY=%s names no data set (bulk, large, files)", only)
		}
	}
	objs := []client.Object{workload("app", smallDir, "/var/lib/app")}
	for _, set := range sets {
		set.size = generate(b, set.dir, set.shape)
		objs = append(objs, workload(set.name, set.dir, set.mountPath))
	}

	kube := startProvider(b)
	createBenchObjects(b, kube, storageDir, objs...)

	b.ResetTimer()
	for range b.N {
		var overheads []float64
		if os.Getenv("STASHPLANE_BENCH_ONLY") == "" {
			overheads = measureOverhead(b, kube, bin, storageDir, smallDir)
		}
		tps := make([]throughput, len(sets))
		for i, set := range sets {
			tps[i] = measureThroughput(b, kube, bin, work, storageDir, set)
		}
		b.StopTimer()

		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Println()
		fmt.Fprintln(w, "figure\tmedian\tp90 / spread\ttarget\tverdict\t")
		if len(overheads) > 0 {
			med, p90 := median(overheads), percentile(overheads, 90)
			b.ReportMetric(med, "overhead-median-s")
			b.ReportMetric(p90, "overhead-p90-s")
			fmt.Fprintf(w, "session overhead (%d sessions)\t%.2f s\t%.2f s\t≤%.0f s median\t%s\t\n",
				len(overheads), med, p90, overheadTarget, verdict(med <= overheadTarget))
		}
		for i, set := range sets {
			tp := tps[i]
			ratio := median(tp.job) / median(tp.plain)
			resticRatio := median(tp.jobRestic) / median(tp.plainRestic)
			againRatio := median(tp.jobAgain) / median(tp.plainAgain)
			b.ReportMetric(againRatio, set.name+"-unchanged-job/plain-time")
			b.ReportMetric(median(tp.plain), set.name+"-plain-restic-MB/s")
			b.ReportMetric(median(tp.job), set.name+"-job-MB/s")
			b.ReportMetric(ratio, set.name+"-job/plain")
			fmt.Fprintf(w, "%s: %.0f MiB, %d large + %d small files\t\t\t\t\t\n", set.name, float64(set.size)/(1<<20), set.shape.large, set.shape.small)
			fmt.Fprintf(w, "plain restic first backup\t%.1f MB/s\t±%.0f%%\t\t\t\n", median(tp.plain), spread(tp.plain)/2)
			fmt.Fprintf(w, "backup Job first backup\t%.1f MB/s\t±%.0f%%\t\t\t\n", median(tp.job), spread(tp.job)/2)
			fmt.Fprintf(w, "Job / plain restic\t%.2f×\t\t≥%.2f×\t%s\t\n", ratio, throughputTarget, verdict(ratio >= throughputTarget))
			fmt.Fprintf(w, "  restic's backup alone, plain\t%.1f MB/s\t±%.0f%%\t\t\t\n", median(tp.plainRestic), spread(tp.plainRestic)/2)
			fmt.Fprintf(w, "  restic's backup alone, in the Job\t%.1f MB/s\t±%.0f%%\t\t\t\n", median(tp.jobRestic), spread(tp.jobRestic)/2)
			fmt.Fprintf(w, "  in the Job / plain\t%.2f×\t\t\t\t\n", resticRatio)
			fmt.Fprintf(w, "plain restic, unchanged again\t%.2f s\t±%.0f%%\t\t\t\n", median(tp.plainAgain), spread(tp.plainAgain)/2)
			fmt.Fprintf(w, "backup Job, unchanged again\t%.2f s\t±%.0f%%\t\t\t\n", median(tp.jobAgain), spread(tp.jobAgain)/2)
			fmt.Fprintf(w, "Job / plain restic time, unchanged\t%.2f×\t\t≤%.1f×\t%s\t\n", againRatio, unchangedTarget, verdict(againRatio <= unchangedTarget))
		}
		_ = w.Flush()
		fmt.Printf("(throughput: medians of %d alternating runs, spread is half the range;\n"+
			" plain restic is `restic init` + `restic backup` on the host; the Job is the agent's whole run: storage, init, backup, check, manifest;\n"+
			" restic's backup alone is its summary's backup_start to backup_end; overhead is session created to Snapshot Succeeded less that)\n",
			throughputRuns)
		b.StartTimer()
	}
	b.StopTimer()
	fmt.Printf("machine load average (1, 5, 15 min) before: %s, after: %s\n", loadBefore, loadAverage())
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// percentile is the nearest-rank percentile p of xs.
func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// measureOverhead protects the small workload, lets its configuration's
// own first backup initialise the repository, then starts sessions one
// after another, each once the one before it has finished, with a small
// change to the data in between. It returns each session's overhead in
// seconds and prints where the time went.
func measureOverhead(b *testing.B, kube client.WithWatch, bin, storageDir, dataDir string) []float64 {
	b.Helper()
	ctx := context.Background()
	bc := protect("app-backup", "app", "local", "app", "/var/lib/app")
	if err := kube.Create(ctx, bc); err != nil {
		b.Fatal(err)
	}
	fullSnapshot(b, kube, bc.Name)
	if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), bc); err != nil {
		b.Fatal(err)
	}

	fmt.Printf("session overhead: %d sessions of a Deployment with %d small files, one after another\n", overheadSessions, smallShape.small)
	fmt.Printf("  %-28s %8s %8s %8s %8s %8s %9s\n", "session", "total", "restic", "overhead", "to agent", "in agent", "after")
	var overheads []float64
	last := time.Now()
	for i := range overheadSessions {
		if err := os.WriteFile(filepath.Join(dataDir, fmt.Sprintf("change-%d.txt", i)), []byte(fmt.Sprintf("change %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
		// Sessions are named by the second they start in: make each
		// start in a second of its own.
		at := time.Now()
		if at.Unix() <= last.Unix() {
			at = time.Unix(last.Unix()+1, 0)
		}
		last = at
		tl := runSession(b, kube, bc, at)
		rt := snapshotTimes(b, bin, resticDir(storageDir, "app"), tl.resticID)
		total := tl.succeeded.Sub(tl.created)
		overhead := total - rt.duration()
		// Where the overhead went: before the agent started, inside the
		// agent besides restic's backup (open the storage, unlock, check,
		// manifest, status), and after the agent reported.
		agentStart := tl.componentDone.Add(-tl.agent)
		fmt.Printf("  %-28s %7.2fs %7.2fs %7.2fs %7.2fs %7.2fs %8.2fs\n", tl.session,
			total.Seconds(), rt.duration().Seconds(), overhead.Seconds(),
			agentStart.Sub(tl.created).Seconds(), (tl.agent - rt.duration()).Seconds(), tl.succeeded.Sub(tl.componentDone).Seconds())
		overheads = append(overheads, overhead.Seconds())
		waitSession(b, kube, tl.session)
	}
	return overheads
}

// timeline is one session as the benchmark saw it, through a watch on the
// Snapshots, so that the times are not rounded to seconds as the objects'
// own timestamps are.
type timeline struct {
	session string
	// created is just before the BackupSession was created.
	created time.Time
	// componentDone is when the component was first seen Succeeded;
	// succeeded when the Snapshot was.
	componentDone, succeeded time.Time
	// agent is the agent's run as the component records it.
	agent    time.Duration
	resticID string
}

// runSession starts a session of the configuration at the given time and
// follows its Snapshot until it succeeds.
func runSession(b *testing.B, kube client.WithWatch, bc *corev1alpha1.BackupConfiguration, at time.Time) timeline {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sessionWaitTimeout)
	defer cancel()
	w, err := kube.Watch(ctx, &storagev1alpha1.SnapshotList{}, client.InNamespace(benchNamespace))
	if err != nil {
		b.Fatalf("cannot watch snapshots: %v", err)
	}
	defer w.Stop()
	tl := timeline{created: time.Now()}
	bs, err := trigger.Create(ctx, kube, bc, benchSession, at)
	if err != nil {
		b.Fatal(err)
	}
	tl.session = bs.Name
	name := bc.Spec.Sessions[0].Repositories[0].Name + "-" + bs.Name
	for {
		select {
		case <-ctx.Done():
			b.Fatalf("snapshot %s did not succeed within %s", name, sessionWaitTimeout)
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatalf("the watch of snapshots ended while snapshot %s ran", name)
			}
			s, isSnap := ev.Object.(*storagev1alpha1.Snapshot)
			if ev.Type == watch.Error || !isSnap || s.Name != name {
				continue
			}
			now := time.Now()
			c := s.Status.Components[storagev1alpha1.ComponentDump]
			if c.Phase == storagev1alpha1.ComponentSucceeded && tl.componentDone.IsZero() {
				tl.componentDone = now
				d, err := time.ParseDuration(c.Duration)
				if err != nil || len(c.ResticStats) == 0 || c.ResticStats[0].Summary == nil {
					b.Fatalf("snapshot %s: component without duration or restic summary: %+v", name, c)
				}
				tl.agent, tl.resticID = d, c.ResticStats[0].Summary.ID
			}
			switch s.Status.Phase {
			case storagev1alpha1.SnapshotSucceeded:
				tl.succeeded = now
				if tl.componentDone.IsZero() {
					b.Fatalf("snapshot %s succeeded before its component was seen to", name)
				}
				return tl
			case storagev1alpha1.SnapshotFailed:
				b.Fatalf("snapshot %s failed: %+v", name, s.Status)
			}
		}
	}
}

// fullSnapshot waits for the Snapshot of the first backup a configuration
// starts on its own, and then for every session of the configuration to
// end, so that nothing of it runs beside the next measurement.
func fullSnapshot(b *testing.B, kube client.Client, invoker string) *storagev1alpha1.Snapshot {
	b.Helper()
	snap := &storagev1alpha1.Snapshot{}
	waitFor(b, sessionWaitTimeout, fmt.Sprintf("the first backup of backupconfiguration %s did not succeed", invoker), func(ctx context.Context) (bool, error) {
		list := &storagev1alpha1.SnapshotList{}
		if err := kube.List(ctx, list, client.InNamespace(benchNamespace), client.MatchingLabels{corev1alpha1.LabelInvokerName: invoker}); err != nil {
			return false, nil
		}
		for _, s := range list.Items {
			if s.Spec.Type != storagev1alpha1.SnapshotFullBackup {
				continue
			}
			switch s.Status.Phase {
			case storagev1alpha1.SnapshotSucceeded:
				*snap = s
				return true, nil
			case storagev1alpha1.SnapshotFailed:
				return false, fmt.Errorf("snapshot %s failed: %+v", s.Name, s.Status)
			}
		}
		return false, nil
	})
	waitFor(b, sessionWaitTimeout, fmt.Sprintf("sessions of backupconfiguration %s did not end", invoker), func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace(benchNamespace), client.MatchingLabels{corev1alpha1.LabelInvokerName: invoker}); err != nil {
			return false, nil
		}
		for _, s := range list.Items {
			switch s.Status.Phase {
			case corev1alpha1.BackupSessionSucceeded, corev1alpha1.BackupSessionFailed, corev1alpha1.BackupSessionSkipped:
			default:
				return false, nil
			}
		}
		return true, nil
	})
	return snap
}

// waitSession waits until a BackupSession has succeeded, so that the next
// one of the same configuration is not skipped as concurrent.
func waitSession(b *testing.B, kube client.Client, name string) {
	b.Helper()
	waitFor(b, sessionWaitTimeout, fmt.Sprintf("backupsession %s did not succeed", name), func(ctx context.Context) (bool, error) {
		bs := &corev1alpha1.BackupSession{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: name}, bs); err != nil {
			return false, nil
		}
		switch bs.Status.Phase {
		case corev1alpha1.BackupSessionSucceeded:
			return true, nil
		case corev1alpha1.BackupSessionFailed, corev1alpha1.BackupSessionSkipped:
			return false, fmt.Errorf("backupsession %s is %s: %+v", name, bs.Status.Phase, bs.Status.Conditions)
		}
		return false, nil
	})
}

// throughput is MB/s per run: plain restic (init and backup) and its
// backup alone; the backup Job (the agent's whole run) and restic's backup
// alone inside it.
type throughput struct {
	plain, plainRestic, job, jobRestic []float64
	// plainAgain and jobAgain are the seconds of a second backup of the
	// unchanged data into the same repository: restic's backup on the
	// host, and the backup Job's whole run.
	plainAgain, jobAgain []float64
}

// measureThroughput backs a data set up alternately with plain restic on
// the host and with a backup Job of a new BackupConfiguration, each into a
// fresh repository.
func measureThroughput(b *testing.B, kube client.WithWatch, bin, work, storageDir string, set *dataSet) throughput {
	b.Helper()
	var tp throughput
	dataDir, size := set.dir, set.size
	fmt.Printf("throughput of %s: first backups of %.0f MiB (%d files) into fresh repositories, plain restic and a backup Job alternating\n",
		set.name, float64(size)/(1<<20), set.shape.large+set.shape.small)
	mbps := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	runPlain := func(i int) {
		dir, cache := filepath.Join(work, fmt.Sprintf("plain-%s-%d", set.name, i)), filepath.Join(work, fmt.Sprintf("plain-%s-%d-cache", set.name, i))
		defer func() { _ = os.RemoveAll(dir); _ = os.RemoveAll(cache) }()
		r, err := restic.New(restic.Options{Binary: bin, Repository: dir, Password: benchPassword, CacheDir: cache})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		start := time.Now()
		if err := r.Init(ctx); err != nil {
			b.Fatalf("plain restic: %v", err)
		}
		sum, err := r.Backup(ctx, restic.BackupOptions{Paths: []string{dataDir}, Host: "bench"}, nil)
		elapsed := time.Since(start)
		if err != nil {
			b.Fatalf("plain restic: %v", err)
		}
		if int64(sum.TotalBytesProcessed) != size {
			b.Fatalf("plain restic backed up %d bytes of %d", sum.TotalBytesProcessed, size)
		}
		start = time.Now()
		cpuBefore := childrenCPU()
		if _, err := r.Backup(ctx, restic.BackupOptions{Paths: []string{dataDir}, Host: "bench"}, nil); err != nil {
			b.Fatalf("plain restic, unchanged: %v", err)
		}
		again := time.Since(start)
		againCPU := childrenCPU() - cpuBefore
		tp.plain, tp.plainRestic = append(tp.plain, mbps(elapsed)), append(tp.plainRestic, mbps(sum.End.Sub(sum.Start)))
		tp.plainAgain = append(tp.plainAgain, again.Seconds())
		fmt.Printf("  plain restic run %d: %7.1f MB/s (%s; its backup alone %s); unchanged again %s (restic's CPU %s)\n", i+1, mbps(elapsed),
			elapsed.Round(10*time.Millisecond), sum.End.Sub(sum.Start).Round(10*time.Millisecond), again.Round(10*time.Millisecond), againCPU.Round(time.Millisecond))
	}
	runJob := func(i int) {
		ctx := context.Background()
		name := fmt.Sprintf("%s-%d", set.name, i)
		bc := protect(name+"-backup", set.name, "local", name, set.mountPath)
		if err := kube.Create(ctx, bc); err != nil {
			b.Fatal(err)
		}
		snap := fullSnapshot(b, kube, bc.Name)
		c := snap.Status.Components[storagev1alpha1.ComponentDump]
		agent, err := time.ParseDuration(c.Duration)
		if err != nil || len(c.ResticStats) == 0 || c.ResticStats[0].Summary == nil {
			b.Fatalf("snapshot %s: component without duration or restic summary: %+v", snap.Name, c)
		}
		dir := resticDir(storageDir, name)
		rt := snapshotTimes(b, bin, dir, c.ResticStats[0].Summary.ID)
		if int64(rt.Bytes) != size {
			b.Fatalf("the backup Job backed up %d bytes of %d", rt.Bytes, size)
		}
		fmt.Printf("  backup Job   run %d, first, the agent's steps: %s\n", i+1, phasesLine(ctx, kube, snap.Spec.BackupSession))
		// The same data again, unchanged, into the same repository.
		again := runSession(b, kube, bc, time.Now())
		waitSession(b, kube, again.session)
		fmt.Printf("  backup Job   run %d, unchanged, the agent's steps: %s\n", i+1, phasesLine(ctx, kube, again.session))
		// The Job's data goes; its records stay, they are small.
		_ = os.RemoveAll(dir)
		tp.job, tp.jobRestic = append(tp.job, mbps(agent)), append(tp.jobRestic, mbps(rt.duration()))
		tp.jobAgain = append(tp.jobAgain, again.agent.Seconds())
		fmt.Printf("  backup Job   run %d: %7.1f MB/s (%s; restic's backup alone %s); unchanged again %s\n", i+1, mbps(agent),
			agent.Round(10*time.Millisecond), rt.duration().Round(10*time.Millisecond), again.agent.Round(10*time.Millisecond))
	}
	for i := range throughputRuns {
		// Alternate which side goes first, so that drift of a shared
		// machine does not favour one.
		if i%2 == 0 {
			runPlain(i)
			runJob(i)
		} else {
			runJob(i)
			runPlain(i)
		}
	}
	return tp
}

// childrenCPU is the processor time, user and system, of this process's
// ended children: the plain restic runs (the dev cluster's processes run on
// until the end, so they are not counted).
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
