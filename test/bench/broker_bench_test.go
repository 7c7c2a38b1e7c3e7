package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
// into storages of namespace platform, a host path and an S3 bucket prefix,
// each once reached directly (the volume mounted, or a copy of the
// credentials) and once through its broker (a grant over the repository,
// over HTTP to the storage's accessor), runs alternating within each pair.
// The figures are the ratios of the brokered Job's throughput to the
// direct one's.
func BenchmarkBrokeredBackup(b *testing.B) {
	loadBefore := loadAverage()
	bin := servers.Binary(b, "restic")
	work := b.TempDir()
	bulkDir := filepath.Join(work, "bulk")
	bulkSize := generate(b, bulkDir, bulkShape)
	s3 := servers.StartS3(b)
	s3.CreateBucket(b, "backups")

	kube := startProvider(b)
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: brokerPlatform}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: benchNamespace},
			Data: map[string][]byte{"RESTIC_PASSWORD": []byte(benchPassword)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: brokerPlatform}, Data: map[string][]byte{
			storagev1alpha1.SecretKeyAWSAccessKeyID: []byte(s3.AccessKey), storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
		}},
		workload("bulk", bulkDir, "/var/lib/bulk"),
	}
	// Four storages: a host path and an S3 bucket prefix, each reached
	// directly and through its broker.
	type side struct {
		kind   string // "host path" or "S3"
		access storagev1alpha1.StorageAccess
		name   string
		repo   func(repoName string) string // the restic repository's directory on this machine
	}
	var sides []side
	for _, access := range []storagev1alpha1.StorageAccess{storagev1alpha1.AccessDirect, storagev1alpha1.AccessBroker} {
		name := "disk-" + strings.ToLower(string(access))
		dir := filepath.Join(work, name)
		sides = append(sides, side{kind: "host path", access: access, name: name, repo: func(repo string) string {
			return filepath.Join(dir, "backups", layout.ResticPrefix(benchNamespace+"/"+repo, benchSession, storagev1alpha1.ComponentDump))
		}})
		objs = append(objs, benchStorage(name, dir))
	}
	for _, access := range []storagev1alpha1.StorageAccess{storagev1alpha1.AccessDirect, storagev1alpha1.AccessBroker} {
		name := "s3-" + strings.ToLower(string(access))
		objs = append(objs, &storagev1alpha1.BackupStorage{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
			Spec: storagev1alpha1.BackupStorageSpec{
				Storage:        storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Endpoint: s3.Endpoint, Bucket: "backups", Prefix: name, Region: "us-east-1", SecretName: "s3-creds"}},
				DeletionPolicy: storagev1alpha1.DeletionPolicyWipeOut,
			},
		})
		sides = append(sides, side{kind: "S3", access: access, name: name, repo: func(repo string) string {
			return filepath.Join(s3.Dir, "backups", name, layout.ResticPrefix(benchNamespace+"/"+repo, benchSession, storagev1alpha1.ComponentDump))
		}})
	}
	// sides holds pairs: each kind reached directly, then through its
	// broker.
	for _, o := range objs {
		if st, ok := o.(*storagev1alpha1.BackupStorage); ok {
			st.Namespace = brokerPlatform
			st.Spec.UsagePolicy = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
			if strings.HasSuffix(st.Name, "-broker") {
				st.Spec.Access = storagev1alpha1.AccessBroker
			}
		}
		if err := kube.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	for _, sd := range sides {
		waitFor(b, 2*time.Minute, "backupstorage "+sd.name+" did not become ready", func(ctx context.Context) (bool, error) {
			st := &storagev1alpha1.BackupStorage{}
			err := kube.Get(ctx, client.ObjectKey{Namespace: brokerPlatform, Name: sd.name}, st)
			return err == nil && st.Status.Phase == storagev1alpha1.BackupStorageReady && (sd.access == storagev1alpha1.AccessDirect || st.Status.BrokerEndpoint != ""), nil
		})
	}

	mbps := func(d time.Duration) float64 { return float64(bulkSize) / 1e6 / d.Seconds() }
	b.ResetTimer()
	for range b.N {
		got := map[string][]float64{}
		fmt.Printf("brokered backup: first backups of %.0f MiB from namespace %s into storages of namespace %s, direct and brokered alternating\n",
			float64(bulkSize)/(1<<20), benchNamespace, brokerPlatform)
		run := func(i int, sd side) {
			name := fmt.Sprintf("%s-%d", sd.name, i)
			bc := protect(name+"-backup", "bulk", sd.name, name, "/var/lib/bulk")
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
			repo := sd.repo(name)
			if rt := snapshotTimes(b, bin, repo, c.ResticStats[0].Summary.ID); int64(rt.Bytes) != bulkSize {
				b.Fatalf("the backup Job into %s backed up %d bytes of %d", sd.name, rt.Bytes, bulkSize)
			}
			got[sd.name] = append(got[sd.name], mbps(d))
			fmt.Printf("  %-10s %-6s run %d: %7.1f MB/s (%s)\n", sd.kind, sd.access, i+1, mbps(d), d.Round(10*time.Millisecond))
			_ = os.RemoveAll(repo)
		}
		for i := range brokerRuns {
			for pair := 0; pair < len(sides); pair += 2 {
				direct, brokered := sides[pair], sides[pair+1]
				// Alternate which side goes first, so that drift of a
				// shared machine does not favour one.
				if i%2 == 0 {
					run(i, direct)
					run(i, brokered)
				} else {
					run(i, brokered)
					run(i, direct)
				}
			}
		}
		b.StopTimer()
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Println()
		fmt.Fprintln(w, "figure\tmedian\tspread\ttarget\tverdict\t")
		for pair := 0; pair < len(sides); pair += 2 {
			direct, brokered := sides[pair], sides[pair+1]
			d, br := median(got[direct.name]), median(got[brokered.name])
			ratio := br / d
			unit := strings.ReplaceAll(direct.kind, " ", "-")
			b.ReportMetric(d, unit+"-direct-MB/s")
			b.ReportMetric(br, unit+"-brokered-MB/s")
			b.ReportMetric(ratio, unit+"-brokered/direct")
			fmt.Fprintf(w, "%s, backup Job reaching it directly\t%.1f MB/s\t±%.0f%%\t\t\t\n", direct.kind, d, spread(got[direct.name])/2)
			fmt.Fprintf(w, "%s, backup Job through the broker\t%.1f MB/s\t±%.0f%%\t\t\t\n", direct.kind, br, spread(got[brokered.name])/2)
			fmt.Fprintf(w, "%s, brokered / direct\t%.2f×\t\t≥%.2f×\t%s\t\n", direct.kind, ratio, brokerTarget, verdict(ratio >= brokerTarget))
		}
		_ = w.Flush()
		fmt.Printf("(medians of %d alternating runs, spread is half the range; each is the agent's whole run: storage, init, backup, check, manifest;\n"+
			" directly: a host path mounted, S3 with a copy of the credentials; brokered: a grant, through the storage's accessor)\n", brokerRuns)
		b.StartTimer()
	}
	b.StopTimer()
	fmt.Printf("machine load average (1, 5, 15 min) before: %s, after: %s\n", loadBefore, loadAverage())
}
