package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestWriteSnapshots(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	snap := func(name string, age time.Duration, st storagev1alpha1.SnapshotStatus) storagev1alpha1.Snapshot {
		return storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(now.Add(-age))}, Status: st}
	}
	pruned := &storagev1alpha1.Repository{}
	pruned.Status.LastPruneTime, pruned.Status.LastPruneFreed = &metav1.Time{Time: now.Add(-3 * time.Hour)}, "3 MiB"
	cases := map[string]struct {
		reason string
		repo   *storagev1alpha1.Repository
		snaps  []storagev1alpha1.Snapshot
		want   string
	}{
		"Empty": {reason: "No snapshot prints only the header.",
			want: "NAME   PHASE   VERIFICATION   SIZE   RESTORE-TIME   BYTES-RESTORED   AGE\n"},
		"Verified": {reason: "Newest first; a verified snapshot shows its restore time and bytes, an unverified one <none>.",
			snaps: []storagev1alpha1.Snapshot{
				snap("app-nightly-1", 26*time.Hour, storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotSucceeded,
					VerificationStatus: storagev1alpha1.SnapshotVerified, Size: "1.5 MiB", RestoreDuration: "12s", BytesRestored: 1572864}),
				snap("app-nightly-2", 90*time.Minute, storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotRunning}),
			},
			want: "NAME            PHASE       VERIFICATION   SIZE      RESTORE-TIME   BYTES-RESTORED   AGE\n" +
				"app-nightly-2   Running     <none>         <none>    <none>         <none>           90m\n" +
				"app-nightly-1   Succeeded   Verified       1.5 MiB   12s            1.5 MiB          26h\n"},
		"VerdictBeforePrune": {reason: "A verdict given before the last prune that freed data is marked and explained.",
			repo: pruned,
			snaps: []storagev1alpha1.Snapshot{
				snap("app-nightly-1", 26*time.Hour, storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotSucceeded,
					VerificationStatus: storagev1alpha1.SnapshotVerified, VerificationTime: &metav1.Time{Time: now.Add(-25 * time.Hour)}}),
				snap("app-nightly-2", 2*time.Hour, storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotSucceeded,
					VerificationStatus: storagev1alpha1.SnapshotVerified, VerificationTime: &metav1.Time{Time: now.Add(-time.Hour)}}),
			},
			want: "NAME            PHASE       VERIFICATION   SIZE     RESTORE-TIME   BYTES-RESTORED   AGE\n" +
				"app-nightly-2   Succeeded   Verified       <none>   <none>         <none>           120m\n" +
				"app-nightly-1   Succeeded   Verified*      <none>   <none>         <none>           26h\n" +
				"* verdict given before the last prune (2026-01-02T00:00:00Z, freed 3 MiB); the next verification checks the Snapshot again\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeSnapshots(&b, tc.snaps, tc.repo, now); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("%s\nwriteSnapshots(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestKubeNamespace(t *testing.T) {
	cases := map[string]struct {
		reason     string
		kubeconfig string
		want       string
	}{
		"ContextNamespace": {reason: "The current context's namespace is used, as kubectl does.",
			kubeconfig: kubeconfig("team"), want: "team"},
		"NoNamespace": {reason: "A context that names no namespace means default.",
			kubeconfig: kubeconfig(""), want: "default"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kubeconfig")
			if err := os.WriteFile(path, []byte(tc.kubeconfig), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := kubeNamespace(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path})
			if err != nil {
				t.Fatalf("kubeNamespace(): %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nkubeNamespace(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// kubeconfig is a kubeconfig whose current context has namespace ns.
func kubeconfig(ns string) string {
	return `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: "` + ns + `"}
current-context: ctx
`
}

func TestRepositorySnapshots(t *testing.T) {
	snap := func(name, ns, repo string, labelled bool) *storagev1alpha1.Snapshot {
		s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: storagev1alpha1.SnapshotSpec{Repository: repo}}
		if labelled {
			s.Labels = map[string]string{storagev1alpha1.LabelRepository: repo}
		}
		return s
	}
	scheme := runtime.NewScheme()
	if err := storagev1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		snap("app-1", "team", "app", true),
		snap("app-2", "team", "app", true),
		snap("db-1", "team", "db", true),
		snap("app-elsewhere", "other", "app", true),
		snap("app-unlabelled", "team", "app", false),
	).Build()
	cases := map[string]struct {
		reason         string
		ns, repository string
		want           []string
	}{
		"Repository": {reason: "Only the repository's labelled Snapshots in the namespace are listed.",
			ns: "team", repository: "app", want: []string{"app-1", "app-2"}},
		"OtherRepository": {reason: "Another repository's Snapshots are not.",
			ns: "team", repository: "db", want: []string{"db-1"}},
		"None": {reason: "A repository without Snapshots lists none.",
			ns: "team", repository: "gone"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			snaps, err := repositorySnapshots(context.Background(), c, tc.ns, tc.repository)
			if err != nil {
				t.Fatalf("repositorySnapshots(): %v", err)
			}
			var got []string
			for _, s := range snaps {
				got = append(got, s.Name)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nrepositorySnapshots(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
