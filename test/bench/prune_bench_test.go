package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stashplane/stashplane/apis"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// The prune benchmark's history: pruneBackups backups of a tree of
// pruneLarge incompressible files and pruneSmall text files, each backup
// after rewriting pruneChurnLarge of the large files and a tenth of the
// small ones. Retention then keeps the newest pruneKeep restic snapshots.
const (
	pruneLarge      = 6
	pruneLargeSize  = 16 << 20
	pruneSmall      = 1500
	pruneChurnLarge = 2
	pruneBackups    = 6
	pruneKeep       = 2
	pruneRepoPath   = "bench/db"
	pruneSession    = "nightly"
	pruneComponent  = "dump"
)

// BenchmarkPrune frees the data of the same forgotten restic snapshots on
// identical copies of one restic repository, alternately
//
//   - through Stashplane: the Snapshot controller's forget
//     (layout.ForgetResticSnapshot) and the prune Job's agent
//     (agent.Runner.Prune, restic behind the bridge over the storage
//     layer), on a local storage laid out as Stashplane lays it out, and
//   - with plain `restic forget --prune` on the restic repository's
//     directory,
//
// and prints the time of each, the ratio (plain's time over Stashplane's,
// target ≥ 0.9), the bytes each freed (must be equal) and the machine's
// load average beside each run.
func BenchmarkPrune(b *testing.B) {
	loadBefore := loadAverage()
	bin := servers.Binary(b, "restic")
	work := b.TempDir()
	master := filepath.Join(work, "master")
	ids := buildPruneHistory(b, bin, master, filepath.Join(work, "source"))
	forget := ids[:len(ids)-pruneKeep]
	password := filepath.Join(work, "password")
	if err := os.WriteFile(password, []byte(benchPassword), 0o600); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("prune: %d restic snapshots, %.1f MiB in the restic repository, forgetting the oldest %d\n",
		len(ids), float64(dirSize(b, master))/(1<<20), len(forget))

	type outcome struct {
		seconds []float64
		// freed is what went from the restic repository; packs, what
		// went from its data/ alone.
		freed, packs []int64
	}
	results := map[string]*outcome{"plain": {}, "stashplane": {}}
	run := func(mode string, i int) {
		dir := filepath.Join(work, fmt.Sprintf("%s-%d", mode, i))
		repo := dir
		if mode == "stashplane" {
			repo = filepath.Join(dir, filepath.FromSlash(layout.ResticPrefix(pruneRepoPath, pruneSession, pruneComponent)))
		}
		copyTree(b, master, repo)
		defer func() { _ = os.RemoveAll(dir) }()
		cache := filepath.Join(work, fmt.Sprintf("cache-%s-%d", mode, i))
		defer func() { _ = os.RemoveAll(cache) }()
		before, beforePacks := dirSize(b, repo), dirSize(b, filepath.Join(repo, "data"))
		load := loadAverage()
		var elapsed time.Duration
		if mode == "plain" {
			elapsed = plainForgetPrune(b, bin, repo, cache, forget)
		} else {
			elapsed = stashplanePrune(b, bin, dir, password, cache, forget)
		}
		freed, packs := before-dirSize(b, repo), beforePacks-dirSize(b, filepath.Join(repo, "data"))
		o := results[mode]
		o.seconds, o.freed, o.packs = append(o.seconds, elapsed.Seconds()), append(o.freed, freed), append(o.packs, packs)
		fmt.Printf("  %-10s run %d: %6.2f s, freed %d bytes, %d of them packs (load %s)\n", mode, i+1, elapsed.Seconds(), freed, packs, load)
	}
	b.ResetTimer()
	for range b.N {
		for i := range runsPerMode {
			// Alternate which side goes first, so that drift of a shared
			// machine does not favour one.
			modes := []string{"plain", "stashplane"}
			if i%2 == 1 {
				modes = []string{"stashplane", "plain"}
			}
			for _, m := range modes {
				run(m, i)
			}
		}
	}
	b.StopTimer()
	plain, sp := results["plain"], results["stashplane"]
	ratio := median(plain.seconds) / median(sp.seconds)
	b.ReportMetric(ratio, "plain/stashplane")
	verdict := "met"
	if ratio < 0.9 {
		verdict = "MISSED"
	}
	fmt.Printf("\nplain restic forget --prune %.2f s ±%.0f%%, Stashplane forget + prune Job %.2f s ±%.0f%%: time ratio plain/Stashplane %.2f× (target ≥0.90× %s; medians of %d alternating runs)\n",
		median(plain.seconds), spread(plain.seconds)/2, median(sp.seconds), spread(sp.seconds)/2, ratio, verdict, runsPerMode)
	// restic writes the index after a prune compressed, with its entries
	// in the order its workers finished, so the index, and with it the
	// total freed, differs by some bytes from run to run of restic
	// itself; the packs freed are the same in every run of either side.
	equal := "equal"
	for i := range plain.packs {
		if plain.packs[i] != sp.packs[i] || plain.packs[i] != plain.packs[0] {
			equal = "NOT EQUAL"
			b.Errorf("pack bytes freed differ: run %d plain %d, Stashplane %d (first plain run %d)", i+1, plain.packs[i], sp.packs[i], plain.packs[0])
		}
	}
	fmt.Printf("bytes freed: packs plain %d, Stashplane %d (%s in every run); in all (with the re-written compressed index) plain %s, Stashplane %s\n",
		plain.packs[0], sp.packs[0], equal, minMax(plain.freed), minMax(sp.freed))
	fmt.Printf("machine load average (1, 5, 15 min) before: %s, after: %s\n", loadBefore, loadAverage())
}

// buildPruneHistory backs up a changing tree pruneBackups times into a new
// restic repository at repo and returns the restic snapshot IDs, oldest
// first.
func buildPruneHistory(b *testing.B, bin, repo, src string) []string {
	b.Helper()
	ctx := context.Background()
	r, err := restic.New(restic.Options{Binary: bin, Repository: repo, Password: benchPassword})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Init(ctx); err != nil {
		b.Fatal(err)
	}
	words := strings.Fields("backup restore verify snapshot repository storage retention prune forget lock pack index")
	var ids []string
	for gen := range pruneBackups {
		for i := range pruneLarge {
			if gen == 0 || (i >= (gen*pruneChurnLarge)%pruneLarge && i < (gen*pruneChurnLarge)%pruneLarge+pruneChurnLarge) {
				writeFile(b, filepath.Join(src, "large", fmt.Sprintf("blob-%d.bin", i)), newRandom(uint64(gen*100+i)), pruneLargeSize)
			}
		}
		for i := range pruneSmall {
			if gen > 0 && i%10 != gen%10 {
				continue
			}
			rng := rand.New(rand.NewPCG(uint64(i), uint64(gen)))
			var sb strings.Builder
			for size := 64 + rng.IntN(16<<10); sb.Len() < size; {
				fmt.Fprintf(&sb, "%s %d\n", words[rng.IntN(len(words))], rng.Uint32())
			}
			writeFile(b, filepath.Join(src, "small", fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%04d.txt", i)), strings.NewReader(sb.String()), -1)
		}
		sum, err := r.Backup(ctx, restic.BackupOptions{Paths: []string{src}, Host: "bench"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, sum.SnapshotID)
	}
	return ids
}

// copyTree copies the directory from to to (which must not exist) with
// cp, keeping modes and times.
func copyTree(b *testing.B, from, to string) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		b.Fatalf("cannot copy the restic repository: %v: %s", err, out)
	}
}

// plainForgetPrune runs restic forget --prune on the restic repository at
// repo, as a user would on a workstation, and returns its time.
func plainForgetPrune(b *testing.B, bin, repo, cache string, ids []string) time.Duration {
	b.Helper()
	cmd := exec.Command(bin, append([]string{"forget", "--prune", "--quiet", "--cache-dir", cache, "--"}, ids...)...)
	cmd.Env = []string{"RESTIC_REPOSITORY=" + repo, "RESTIC_PASSWORD=" + benchPassword, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatalf("restic forget --prune: %v: %s", err, out)
	}
	return elapsed
}

// stashplanePrune forgets ids as the Snapshot controller does when
// retention removes their Snapshots, then prunes as the prune Job's agent
// does, on the local storage at root, and returns the time of both. The
// agent reads its Repository and BackupStorage from a fake API server
// (their reads and the status write are not what is measured).
func stashplanePrune(b *testing.B, bin, root, password, cache string, ids []string) time.Duration {
	b.Helper()
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(root, layout.MetadataKey), []byte("kind: BackendMeta\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	spec := storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: root}}
	bs := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "bench"}, Spec: storagev1alpha1.BackupStorageSpec{Storage: spec}}
	repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "db"},
		Spec: storagev1alpha1.RepositorySpec{Path: pruneRepoPath, StorageRef: storagev1alpha1.ObjectReference{Name: "bench"}}}
	s, err := apis.Scheme()
	if err != nil {
		b.Fatal(err)
	}
	kube := fake.NewClientBuilder().WithScheme(s).WithObjects(bs, repo).WithStatusSubresource(repo).Build()
	runner := &agent.Runner{Kube: kube, Log: logr.Discard(), Options: agent.Options{
		Namespace: benchNamespace, Storage: benchNamespace + "/bench", Repository: "db",
		PasswordFile: password, ScratchDir: cache, Restic: bin,
	}}

	start := time.Now()
	bucket, err := storage.Open(ctx, spec, nil, storage.OpenOptions{LocalRoot: root})
	if err != nil {
		b.Fatal(err)
	}
	prefix := layout.ResticPrefix(pruneRepoPath, pruneSession, pruneComponent)
	for _, id := range ids {
		if err := layout.ForgetResticSnapshot(ctx, bucket, prefix, id, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	_ = bucket.Close()
	if err := runner.Prune(ctx); err != nil {
		b.Fatalf("prune agent: %v", err)
	}
	elapsed := time.Since(start)
	if err := kube.Get(ctx, client.ObjectKeyFromObject(repo), repo); err != nil {
		b.Fatal(err)
	}
	if repo.Status.LastPruneFreed == "" {
		b.Fatal("the prune agent recorded no bytes freed on the Repository")
	}
	return elapsed
}

// minMax prints the range of xs.
func minMax(xs []int64) string {
	return fmt.Sprintf("%d–%d", slices.Min(xs), slices.Max(xs))
}
