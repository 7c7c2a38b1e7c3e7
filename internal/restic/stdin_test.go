package restic_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stashplane/stashplane/internal/restic"
)

// failingReader gives data, then fails instead of ending.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, f.err
	}
	return n, err
}

// TestBackupStdin: a stream is stored as one file that Dump gives back
// byte for byte; a stream that fails half way leaves no snapshot behind,
// and its error is what BackupStdin returns.
func TestBackupStdin(t *testing.T) {
	r := newRestic(t, t.TempDir(), password)
	if err := r.Init(ctx(t)); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("insert into t values (1);\n"), 100000)
	errHalfWay := errors.New("the dump failed half way")

	tests := map[string]struct {
		reason    string
		src       io.Reader
		wantErr   error
		snapshots int
	}{
		"FailedHalfWay": {
			reason:    "A read error interrupts restic before its input ends: no snapshot is made.",
			src:       &failingReader{r: bytes.NewReader(data[:len(data)/2]), err: errHalfWay},
			wantErr:   errHalfWay,
			snapshots: 0,
		},
		"Complete": {
			reason:    "A stream that ends is one snapshot holding the file.",
			src:       bytes.NewReader(data),
			snapshots: 1,
		},
	}
	for _, name := range []string{"FailedHalfWay", "Complete"} {
		tc := tests[name]
		t.Run(name, func(t *testing.T) {
			sum, err := r.BackupStdin(ctx(t), restic.BackupOptions{Host: "db", Tags: []string{"stdin"}}, "dumpfile.sql", tc.src, nil)
			if diff := cmp.Diff(tc.wantErr, err, cmpopts.EquateErrors()); diff != "" {
				t.Fatalf("%s\nBackupStdin(...): -want error, +got error:\n%s", tc.reason, diff)
			}
			snaps, err := r.Snapshots(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(snaps) != tc.snapshots {
				t.Fatalf("%s\nsnapshots: want %d, got %d", tc.reason, tc.snapshots, len(snaps))
			}
			if tc.wantErr != nil {
				return
			}
			var out bytes.Buffer
			if err := r.Dump(ctx(t), sum.SnapshotID, "/dumpfile.sql", &out); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), data) {
				t.Errorf("%s\nDump gave %d bytes, want the %d backed up", tc.reason, out.Len(), len(data))
			}
		})
	}
}
