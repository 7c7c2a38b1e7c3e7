//go:build linux

package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHashListed(t *testing.T) {
	cases := map[string]struct {
		content string
		// after changes the file between the walk and the hashing.
		after      func(t *testing.T, p string)
		wantSize   int64
		wantDigest string
		stable     bool
		notExist   bool
	}{
		"Stable":  {content: "alpha", wantSize: 5, wantDigest: sum("alpha"), stable: true},
		"Empty":   {content: "", wantSize: 0, wantDigest: sum(""), stable: true},
		"Large":   {content: string(make([]byte, 600<<10)), wantSize: 600 << 10, wantDigest: sum(string(make([]byte, 600<<10))), stable: true},
		"Grown":   {content: "alpha", after: func(t *testing.T, p string) { appendTo(t, p, "beta") }, wantSize: 9, wantDigest: sum("alphabeta")},
		"Shrunk":  {content: "alphabeta", after: func(t *testing.T, p string) { write(t, p, "al") }, wantSize: 2, wantDigest: sum("al")},
		"Removed": {content: "alpha", after: func(t *testing.T, p string) { _ = os.Remove(p) }, notExist: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			write(t, p, tc.content)
			files, err := walkSource([]string{filepath.Dir(p)}, nil)
			if err != nil || len(files) != 1 {
				t.Fatalf("walkSource: %v, %d files", err, len(files))
			}
			if tc.after != nil {
				time.Sleep(10 * time.Millisecond)
				tc.after(t, p)
			}
			h := hashListed(files[0])
			if tc.notExist {
				if !errors.Is(h.err, fs.ErrNotExist) {
					t.Fatalf("hashListed of a removed file: %v, want one saying it does not exist", h.err)
				}
				return
			}
			if h.err != nil {
				t.Fatal(h.err)
			}
			got := struct {
				Size   int64
				Digest string
				Stable bool
				State  bool
			}{h.file.Size, h.file.BLAKE3, h.stable, h.file.State != nil}
			want := got
			want.Size, want.Digest, want.Stable, want.State = tc.wantSize, tc.wantDigest, tc.stable, tc.stable
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("hashListed: -want +got:\n%s", diff)
			}
		})
	}
}

// TestHashListedKeepsAccessTime: the agent reading a source file for its
// hash leaves the file's access time as it was, where reading it plainly
// moves it.
func TestHashListedKeepsAccessTime(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-48 * time.Hour)
	atime := func(p string) time.Time {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return time.Unix(st.Atim.Unix())
	}
	control, p := filepath.Join(dir, "control"), filepath.Join(dir, "f")
	for _, f := range []string{control, p} {
		write(t, f, "alpha")
		if err := os.Chtimes(f, old, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.ReadFile(control); err != nil {
		t.Fatal(err)
	}
	if atime(control).Equal(old) {
		t.Skip("this file system does not record access times")
	}
	files, err := walkSource([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := hashListed(files[0]); h.err != nil || !h.stable {
		t.Fatalf("hashListed: %v, stable %v", h.err, h.stable)
	}
	if got := atime(p); !got.Equal(old) {
		t.Errorf("access time moved from %v to %v", old, got)
	}
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestHashFile(t *testing.T) {
	dir := t.TempDir()
	large := string(make([]byte, 600<<10))
	write(t, filepath.Join(dir, "alpha"), "alpha")
	write(t, filepath.Join(dir, "large"), large)
	write(t, filepath.Join(dir, "empty"), "")
	cases := map[string]struct {
		file, alg string
		want      ManifestFile
		notExist  bool
		fails     bool
	}{
		"BLAKE3": {file: "alpha", alg: HashBLAKE3, want: ManifestFile{Size: 5, BLAKE3: sum("alpha")}},
		"SHA256": {file: "alpha", alg: HashSHA256, want: ManifestFile{Size: 5, SHA256: sha256Sum("alpha")}},
		"Large":  {file: "large", alg: HashBLAKE3, want: ManifestFile{Size: 600 << 10, BLAKE3: sum(large)}},
		"Empty":  {file: "empty", alg: HashBLAKE3, want: ManifestFile{BLAKE3: sum("")}},
		// The pool gives back a used hasher: it starts afresh.
		"Again":   {file: "alpha", alg: HashBLAKE3, want: ManifestFile{Size: 5, BLAKE3: sum("alpha")}},
		"Missing": {file: "missing", alg: HashBLAKE3, notExist: true, fails: true},
		"Unknown": {file: "alpha", alg: "md5", fails: true},
	}
	for _, name := range []string{"BLAKE3", "SHA256", "Large", "Empty", "Again", "Missing", "Unknown"} {
		tc := cases[name]
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			got, err := hashFile(p, tc.alg)
			if tc.fails {
				if err == nil || errors.Is(err, fs.ErrNotExist) != tc.notExist {
					t.Fatalf("hashFile: %v; want an error, not existing %v", err, tc.notExist)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Path = p
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("hashFile: -want +got:\n%s", diff)
			}
		})
	}
}

// TestHashListedNamedPipe: a listed file replaced by a named pipe does not
// hold the hasher up waiting for a writer; it is not stable.
func TestHashListedNamedPipe(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "alpha")
	files, err := walkSource([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	hash := func() hashed {
		t.Helper()
		done := make(chan hashed, 1)
		go func() { done <- hashListed(files[0]) }()
		select {
		case h := <-done:
			return h
		case <-time.After(10 * time.Second):
			t.Fatal("hashListed waits on a named pipe")
		}
		return hashed{}
	}
	if h := hash(); h.err == nil && h.stable {
		t.Errorf("a file replaced by a named pipe is stable: %+v", h.file)
	}
	// With a writer that has written nothing, reading gives EAGAIN: the
	// file is one that changed, not one that cannot be read.
	w, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if h := hash(); h.err != nil || h.stable {
		t.Errorf("a file replaced by a named pipe with a writer: err %v, stable %v; want no error, not stable", h.err, h.stable)
	}
}
