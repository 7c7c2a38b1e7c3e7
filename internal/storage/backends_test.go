package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gocloud.dev/blob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/storage"
	"github.com/stashplane/stashplane/internal/storage/storagetest"
)

// TestBackends runs the conformance suite on every backend, then opens each
// with a missing bucket and with wrong credentials.
func TestBackends(t *testing.T) {
	for name, be := range storagetest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) *blob.Bucket { return be.Open(t) }, be.Known...)
			if be.Missing.Provider != "" {
				t.Run("MissingBucket", func(t *testing.T) {
					opts := be.Opts
					if be.Missing.Provider == storagev1alpha1.ProviderLocal {
						// The volume is not mounted where the caller says.
						opts.LocalRoot = filepath.Join(t.TempDir(), "not-mounted")
						_, err := storage.Open(context.Background(), be.Missing, be.Secret, opts)
						if got := storage.Reason(err); got != storage.ReasonBucketNotFound {
							t.Errorf("Opening a local storage whose volume is missing: Reason(%v) = %q, want %q", err, got, storage.ReasonBucketNotFound)
						}
						return
					}
					storagetest.RunMissingBucket(t, storagetest.MustOpen(t, be.Missing, be.Secret, opts))
				})
			}
			if be.Wrong != nil {
				t.Run("WrongCredentials", func(t *testing.T) {
					var secrets []string
					for _, v := range be.Wrong {
						secrets = append(secrets, string(v))
					}
					for _, v := range be.Secret {
						secrets = append(secrets, string(v))
					}
					storagetest.RunWrongCredentials(t, storagetest.MustOpen(t, be.Spec, be.Wrong, be.Opts), secrets...)
				})
			}
		})
	}
}

// TestLocalLayout checks that the local provider keeps objects as plain
// files under the subPath: restic and users read them there.
func TestLocalLayout(t *testing.T) {
	root := t.TempDir()
	spec := storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: "/m", SubPath: "team/a"}}
	b := storagetest.MustOpen(t, spec, nil, storage.OpenOptions{LocalRoot: root})
	defer func() { _ = b.Close() }()
	if err := b.WriteAll(context.Background(), "repo/config", []byte("cfg"), nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "team", "a", "repo", "config"))
	if err != nil {
		t.Fatalf("The object is the file subPath/key: %v", err)
	}
	if string(got) != "cfg" {
		t.Errorf("The file holds the object's bytes: got %q", got)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "team", "a", "repo"))
	if len(entries) != 1 {
		t.Errorf("No sidecar files beside an object: got %d entries", len(entries))
	}
}
