package restic_test

import (
	"bytes"
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/restic/bridge"
	"github.com/stashplane/stashplane/internal/storage"
	"github.com/stashplane/stashplane/internal/storage/storagetest"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

const password = "correct horse battery staple 42"

// source makes a small tree to back up: text, a few MiB of random bytes
// (several packs), an empty file, nested directories. It returns the
// directory and the number of files and bytes in it.
func source(t *testing.T) (string, uint64, uint64) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 5<<20+123)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	files := map[string][]byte{
		"hello.txt":              []byte("hello, stashplane\n"),
		"empty":                  {},
		"nested/deeper/big.bin":  big,
		"nested/deeper/copy.bin": big, // deduplicated
		"nested/notes.md":        bytes.Repeat([]byte("notes "), 10000),
	}
	var size uint64
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		size += uint64(len(data))
	}
	return dir, uint64(len(files)), size
}

// tree reads every regular file under dir, by path relative to dir.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

// serve starts a bridge over b, stopped when the test ends.
func serve(t *testing.T, b *blob.Bucket) *bridge.Server {
	t.Helper()
	srv, err := bridge.Start(b, bridge.Options{Log: logr.Discard(), VerifyUploads: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(context.Background()); err != nil {
			t.Error(err)
		}
		_ = b.Close()
	})
	return srv
}

func newRestic(t *testing.T, repo, pw string, env ...string) *restic.Restic {
	t.Helper()
	r, err := restic.New(restic.Options{
		Binary: servers.Binary(t, "restic"), Repository: repo, Password: pw, ProgressFPS: 20, Env: env,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// roundTrip backs src up into the repository, lists, restores and checks
// it, and with again backs up again to see the second run find everything
// unchanged.
func roundTrip(t *testing.T, r *restic.Restic, src string, files, size uint64, again bool) {
	t.Helper()
	var progress int
	sum, err := r.Backup(ctx(t), restic.BackupOptions{Paths: []string{src}, Tags: []string{"stashplane", "test"}, Host: "node-a"},
		func(restic.BackupProgress) { progress++ })
	if err != nil {
		t.Fatalf("cannot back up: %v", err)
	}
	type counts struct{ New, Changed, Unmodified, Files, Bytes uint64 }
	if diff := cmp.Diff(counts{New: files, Files: files, Bytes: size},
		counts{sum.FilesNew, sum.FilesChanged, sum.FilesUnmodified, sum.TotalFilesProcessed, sum.TotalBytesProcessed}); diff != "" {
		t.Errorf("The first backup finds every file new: -want +got:\n%s", diff)
	}
	if sum.SnapshotID == "" || sum.DataAdded == 0 || sum.Duration <= 0 {
		t.Errorf("The summary names the snapshot, the data added and the duration: %+v", sum)
	}
	if progress == 0 {
		t.Errorf("The backup reported no progress")
	}

	snaps, err := r.Snapshots(ctx(t))
	if err != nil {
		t.Fatalf("cannot list snapshots: %v", err)
	}
	type snap struct {
		ID, Host string
		Tags     []string
	}
	var got []snap
	for _, s := range snaps {
		got = append(got, snap{s.ID, s.Hostname, s.Tags})
	}
	if diff := cmp.Diff([]snap{{sum.SnapshotID, "node-a", []string{"stashplane", "test"}}}, got); diff != "" {
		t.Errorf("Snapshots lists the one backup: -want +got:\n%s", diff)
	}

	target := t.TempDir()
	rs, err := r.Restore(ctx(t), sum.SnapshotID, target, nil)
	if err != nil {
		t.Fatalf("cannot restore: %v", err)
	}
	if diff := cmp.Diff(tree(t, src), tree(t, filepath.Join(target, src))); diff != "" {
		t.Errorf("The restore gives back identical bytes: -want +got:\n%s", diff)
	}
	if rs == nil || rs.BytesRestored != size {
		t.Errorf("The restore summary counts %d bytes: %+v", size, rs)
	}

	cs, err := r.Check(ctx(t), restic.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatalf("check --read-data failed: %v", err)
	}
	if cs.NumErrors != 0 {
		t.Errorf("check --read-data finds no error: %+v", cs)
	}

	if !again {
		return
	}
	sum, err = r.Backup(ctx(t), restic.BackupOptions{Paths: []string{src}, Host: "node-a"}, nil)
	if err != nil {
		t.Fatalf("cannot back up again: %v", err)
	}
	if diff := cmp.Diff(counts{Unmodified: files, Files: files, Bytes: size},
		counts{sum.FilesNew, sum.FilesChanged, sum.FilesUnmodified, sum.TotalFilesProcessed, sum.TotalBytesProcessed}); diff != "" {
		t.Errorf("A second backup finds every file unmodified: -want +got:\n%s", diff)
	}
}

// TestBridge runs restic through the bridge on every backend of the
// storage suite, the backends in parallel.
func TestBridge(t *testing.T) {
	src, files, size := source(t)
	for name, be := range storagetest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, blob.PrefixedBucket(be.Open(t), "repos/app/"))
			r := newRestic(t, srv.Repository(), password)
			if err := r.Init(ctx(t)); err != nil {
				t.Fatalf("cannot init: %v", err)
			}
			// The incremental run is the same on every backend: once is enough.
			roundTrip(t, r, src, files, size, name == "s3")

			_, err := newRestic(t, srv.Repository(), "not the password").Snapshots(ctx(t))
			if diff := cmp.Diff(restic.ReasonWrongPassword, restic.Reason(err)); diff != "" {
				t.Errorf("A wrong password is told apart (%v): -want +got:\n%s", err, diff)
			}
			if err != nil && (strings.Contains(err.Error(), password) || strings.Contains(err.Error(), srv.Password())) {
				t.Errorf("An error quotes a credential: %v", err)
			}
		})
	}
}

// TestMissingRepository: a bridge over an empty prefix has no repository.
func TestMissingRepository(t *testing.T) {
	b := storagetest.MustOpen(t, storagev1alpha1.Backend{Provider: storage.ProviderMem, Local: &storagev1alpha1.LocalSpec{}}, nil,
		storage.OpenOptions{LocalRoot: t.Name()})
	srv := serve(t, b)
	_, err := newRestic(t, srv.Repository(), password).Snapshots(ctx(t))
	if diff := cmp.Diff(restic.ReasonRepositoryNotFound, restic.Reason(err)); diff != "" {
		t.Errorf("No repository is told apart (%v): -want +got:\n%s", err, diff)
	}
}

// TestInterop checks that the bridge on file storage and plain restic on
// the same directory read and write the same repository.
func TestInterop(t *testing.T) {
	src, files, size := source(t)
	root := t.TempDir()
	open := func(t *testing.T, sub string) *blob.Bucket {
		return storagetest.MustOpen(t, storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal,
			Local: &storagev1alpha1.LocalSpec{MountPath: "/backups", SubPath: sub}}, nil, storage.OpenOptions{LocalRoot: root})
	}

	t.Run("BridgeThenNative", func(t *testing.T) {
		srv := serve(t, open(t, "through-bridge"))
		viaBridge := newRestic(t, srv.Repository(), password)
		if err := viaBridge.Init(ctx(t)); err != nil {
			t.Fatalf("cannot init through the bridge: %v", err)
		}
		sum, err := viaBridge.Backup(ctx(t), restic.BackupOptions{Paths: []string{src}}, nil)
		if err != nil {
			t.Fatalf("cannot back up through the bridge: %v", err)
		}
		native := newRestic(t, filepath.Join(root, "through-bridge"), password)
		if _, err := native.Check(ctx(t), restic.CheckOptions{ReadData: true}); err != nil {
			t.Fatalf("plain restic cannot check a repository written through the bridge: %v", err)
		}
		target := t.TempDir()
		if _, err := native.Restore(ctx(t), sum.SnapshotID, target, nil); err != nil {
			t.Fatalf("plain restic cannot restore from a repository written through the bridge: %v", err)
		}
		if diff := cmp.Diff(tree(t, src), tree(t, filepath.Join(target, src))); diff != "" {
			t.Errorf("plain restic restores what the bridge stored: -want +got:\n%s", diff)
		}
		// And plain restic can write to it, the bridge reading that back.
		if _, err := native.Backup(ctx(t), restic.BackupOptions{Paths: []string{src}, Tags: []string{"native"}}, nil); err != nil {
			t.Fatalf("plain restic cannot back up into a repository made through the bridge: %v", err)
		}
		if _, err := viaBridge.Check(ctx(t), restic.CheckOptions{ReadData: true}); err != nil {
			t.Errorf("the bridge cannot check after plain restic wrote: %v", err)
		}
	})

	t.Run("NativeThenBridge", func(t *testing.T) {
		native := newRestic(t, filepath.Join(root, "native"), password)
		if err := native.Init(ctx(t)); err != nil {
			t.Fatalf("plain restic cannot init: %v", err)
		}
		srv := serve(t, open(t, "native"))
		// The whole round trip through the bridge, on a repository plain
		// restic made.
		roundTrip(t, newRestic(t, srv.Repository(), password), src, files, size, true)
		if _, err := native.Check(ctx(t), restic.CheckOptions{ReadData: true}); err != nil {
			t.Errorf("plain restic cannot check what the bridge wrote into its repository: %v", err)
		}
	})
}

// TestLocks: the locks of a repository are read without taking one, with
// the host and process that took them, even while another run holds one.
func TestLocks(t *testing.T) {
	repo := t.TempDir()
	bin := servers.Binary(t, "restic")
	r, err := restic.New(restic.Options{Binary: bin, Repository: repo, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Init(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got, err := r.Locks(ctx(t))
	if err != nil || len(got) != 0 {
		t.Fatalf("Locks of a repository nobody holds = %v, %v; want none", got, err)
	}
	// A backup from standard input holds its lock until the input ends.
	cmd := exec.Command(bin, "backup", "--stdin", "--no-cache", "-q")
	cmd.Env = []string{"RESTIC_REPOSITORY=" + repo, "RESTIC_PASSWORD=" + password}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Close(); _ = cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err = r.Locks(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	host, _ := os.Hostname()
	if len(got) != 1 || got[0].Exclusive || got[0].Hostname != host || got[0].PID != cmd.Process.Pid || got[0].ID == "" {
		t.Errorf("Locks while a backup runs = %+v; want one non-exclusive lock of host %q, pid %d", got, host, cmd.Process.Pid)
	}
}

// TestBackupListsFiles: the files a backup names (ListFiles) are the
// regular files restic's ls finds in its snapshot, on a first backup, on
// an incremental one where some files are unchanged, one changed, one
// new and one gone, and with an excluded file and a symbolic link, which
// the snapshot holds as no regular file.
func TestBackupListsFiles(t *testing.T) {
	src, _, _ := source(t)
	for name, data := range map[string]string{"odd/[x]*? name.txt": "odd", "skip.tmp": "excluded"} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("hello.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	r := newRestic(t, t.TempDir(), password)
	if err := r.Init(ctx(t)); err != nil {
		t.Fatal(err)
	}
	opts := restic.BackupOptions{Paths: []string{src}, Host: "lists", Args: []string{"--exclude=*.tmp"}, ListFiles: true}
	backup := func(t *testing.T) *restic.BackupSummary {
		t.Helper()
		sum, err := r.Backup(ctx(t), opts, nil)
		if err != nil {
			t.Fatalf("cannot back up: %v", err)
		}
		listed, err := r.Files(ctx(t), sum.SnapshotID)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(listed)
		got := slices.Sorted(slices.Values(sum.Files))
		if diff := cmp.Diff(listed, got); diff != "" {
			t.Errorf("The backup names the files restic ls lists: -ls +backup:\n%s", diff)
		}
		return sum
	}
	first := backup(t)
	if diff := cmp.Diff(6, len(first.Files)); diff != "" {
		t.Errorf("First backup: files named: -want +got:\n%s", diff)
	}
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello again\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "nested/deeper/new-later"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "nested/notes.md")); err != nil {
		t.Fatal(err)
	}
	second := backup(t)
	if second.FilesUnmodified == 0 {
		t.Errorf("The second backup found no unchanged file (%+v): it does not test them", second)
	}
	if diff := cmp.Diff(6, len(second.Files)); diff != "" {
		t.Errorf("Second backup: files named: -want +got:\n%s", diff)
	}
	// Unchanged are the files the first backup held as they are: not the
	// changed one, not the new one.
	wantUnchanged := []string{}
	for _, f := range first.Files {
		if f != filepath.Join(src, "hello.txt") && f != filepath.Join(src, "nested/notes.md") {
			wantUnchanged = append(wantUnchanged, f)
		}
	}
	slices.Sort(wantUnchanged)
	if diff := cmp.Diff(wantUnchanged, slices.Sorted(slices.Values(second.Unchanged))); diff != "" {
		t.Errorf("Second backup: unchanged files: -want +got:\n%s", diff)
	}

	// Against an older parent named with Parent, the file changed since
	// is not unchanged; against restic's own choice (the newest) it is.
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello a third time\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	third := backup(t)
	opts.Parent = second.SnapshotID
	againstSecond := backup(t)
	opts.Parent = ""
	hello := filepath.Join(src, "hello.txt")
	if slices.Contains(againstSecond.Unchanged, hello) {
		t.Errorf("Against parent %s, %s changed since, yet reported unchanged", second.SnapshotID, hello)
	}
	if slices.Contains(third.Unchanged, hello) || !slices.Contains(backup(t).Unchanged, hello) {
		t.Errorf("Against the newest snapshot, %s should be unchanged only once it was stored as it is", hello)
	}

	opts.ListFiles = false
	sum, err := r.Backup(ctx(t), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != nil {
		t.Errorf("Without ListFiles the summary names no files, got %d", len(sum.Files))
	}
}
