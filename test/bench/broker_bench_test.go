package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

const (
	brokerRuns   = 3
	brokerTarget = 0.9 // a brokered storage's backup Job over a direct one's
	// brokerPlatform is the namespace of the platform team's storages,
	// which the bench's Jobs reach from benchNamespace.
	brokerPlatform = "platform"
)

// BenchmarkBrokeredBackup measures what the storage broker costs a tenant's
// backup: first backups of the bulk data set by a Job in benchNamespace
// into two host path storages of namespace platform, one reached directly
// (the Job mounts the volume) and one through its broker (the Job holds a
// grant over its repository and reaches the storage over HTTP), runs
// alternating. The figure is the ratio of the brokered Job's throughput to
// the direct one's.
func BenchmarkBrokeredBackup(b *testing.B) {
	loadBefore := loadAverage()
	bin := servers.Binary(b, "restic")
	work := b.TempDir()
	bulkDir := filepath.Join(work, "bulk")
	bulkSize := generate(b, bulkDir, bulkShape)
	dirs := map[storagev1alpha1.StorageAccess]string{
		storagev1alpha1.AccessDirect: filepath.Join(work, "direct"),
		storagev1alpha1.AccessBroker: filepath.Join(work, "brokered"),
	}

	kube := startProvider(b)
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: brokerPlatform}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: benchNamespace},
			Data: map[string][]byte{"RESTIC_PASSWORD": []byte(benchPassword)}},
		workload("bulk", bulkDir, "/var/lib/bulk"),
	}
	for access, dir := range dirs {
		st := benchStorage(storageName(access), dir)
		st.Namespace, st.Spec.Access = brokerPlatform, access
		st.Spec.UsagePolicy = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
		objs = append(objs, st)
	}
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, 2*time.Minute, "the brokered storage's broker did not serve", func(ctx context.Context) (bool, error) {
		st := &storagev1alpha1.BackupStorage{}
		err := kube.Get(ctx, client.ObjectKey{Namespace: brokerPlatform, Name: storageName(storagev1alpha1.AccessBroker)}, st)
		return err == nil && st.Status.BrokerEndpoint != "" && st.Status.Phase == storagev1alpha1.BackupStorageReady, nil
	})

	mbps := func(d time.Duration) float64 { return float64(bulkSize) / 1e6 / d.Seconds() }
	b.ResetTimer()
	for range b.N {
		got := map[storagev1alpha1.StorageAccess][]float64{}
		fmt.Printf("brokered backup: first backups of %.0f MiB from namespace %s into storages of namespace %s, direct and brokered alternating\n",
			float64(bulkSize)/(1<<20), benchNamespace, brokerPlatform)
		run := func(i int, access storagev1alpha1.StorageAccess) {
			name := fmt.Sprintf("%s-%d", map[storagev1alpha1.StorageAccess]string{storagev1alpha1.AccessDirect: "direct", storagev1alpha1.AccessBroker: "broker"}[access], i)
			bc := protect(name+"-backup", "bulk", storageName(access), name, "/var/lib/bulk")
			bc.Spec.Backends[0].StorageRef.Namespace = brokerPlatform
			if err := kube.Create(ctx, bc); err != nil {
				b.Fatal(err)
			}
			snap := fullSnapshot(b, kube, bc.Name)
			c := snap.Status.Components[storagev1alpha1.ComponentDump]
			d, err := time.ParseDuration(c.Duration)
			if err != nil || len(c.ResticStats) == 0 || c.ResticStats[0].Summary == nil {
				b.Fatalf("snapshot %s: component without duration or restic summary: %+v", snap.Name, c)
			}
			repo := filepath.Join(dirs[access], "backups", layout.ResticPrefix(benchNamespace+"/"+name, benchSession, storagev1alpha1.ComponentDump))
			if rt := snapshotTimes(b, bin, repo, c.ResticStats[0].Summary.ID); int64(rt.Bytes) != bulkSize {
				b.Fatalf("the %s backup Job backed up %d bytes of %d", access, rt.Bytes, bulkSize)
			}
			got[access] = append(got[access], mbps(d))
			fmt.Printf("  %-8s run %d: %7.1f MB/s (%s)\n", access, i+1, mbps(d), d.Round(10*time.Millisecond))
			_ = os.RemoveAll(filepath.Join(dirs[access], "backups", layout.ResticSessionsPrefix(benchNamespace+"/"+name)))
		}
		for i := range brokerRuns {
			// Alternate which side goes first, so that drift of a shared
			// machine does not favour one.
			if i%2 == 0 {
				run(i, storagev1alpha1.AccessDirect)
				run(i, storagev1alpha1.AccessBroker)
			} else {
				run(i, storagev1alpha1.AccessBroker)
				run(i, storagev1alpha1.AccessDirect)
			}
		}
		b.StopTimer()
		direct, brokered := median(got[storagev1alpha1.AccessDirect]), median(got[storagev1alpha1.AccessBroker])
		ratio := brokered / direct
		b.ReportMetric(direct, "direct-MB/s")
		b.ReportMetric(brokered, "brokered-MB/s")
		b.ReportMetric(ratio, "brokered/direct")
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Println()
		fmt.Fprintln(w, "figure\tmedian\tspread\ttarget\tverdict\t")
		fmt.Fprintf(w, "backup Job, storage mounted\t%.1f MB/s\t±%.0f%%\t\t\t\n", direct, spread(got[storagev1alpha1.AccessDirect])/2)
		fmt.Fprintf(w, "backup Job, through the broker\t%.1f MB/s\t±%.0f%%\t\t\t\n", brokered, spread(got[storagev1alpha1.AccessBroker])/2)
		fmt.Fprintf(w, "brokered / direct\t%.2f×\t\t≥%.2f×\t%s\t\n", ratio, brokerTarget, verdict(ratio >= brokerTarget))
		_ = w.Flush()
		fmt.Printf("(medians of %d alternating runs, spread is half the range; each is the agent's whole run: storage, init, backup, check, manifest)\n", brokerRuns)
		b.StartTimer()
	}
	b.StopTimer()
	fmt.Printf("machine load average (1, 5, 15 min) before: %s, after: %s\n", loadBefore, loadAverage())
}

func storageName(access storagev1alpha1.StorageAccess) string {
	if access == storagev1alpha1.AccessBroker {
		return "brokered"
	}
	return "direct"
}
