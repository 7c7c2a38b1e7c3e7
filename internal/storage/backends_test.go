package storage_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"gocloud.dev/blob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/storage"
	"github.com/stashplane/stashplane/internal/storage/storagetest"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// backend is one storage the suite runs against: a spec and Secret that
// reach it, and the variants that must fail.
type backend struct {
	spec   storagev1alpha1.Backend
	secret map[string][]byte
	opts   storage.OpenOptions
	// missing reaches a bucket that does not exist.
	missing storagev1alpha1.Backend
	// wrong holds credentials the backend refuses (nil: the backend checks
	// none, as files and memory).
	wrong map[string][]byte
	// known gaps of the test server.
	known []storagetest.Limitation
}

func mustOpen(t *testing.T, spec storagev1alpha1.Backend, secret map[string][]byte, opts storage.OpenOptions) *blob.Bucket {
	t.Helper()
	b, err := storage.Open(context.Background(), spec, secret, opts)
	if err != nil {
		t.Fatalf("cannot open the bucket: %v", err)
	}
	return b
}

// Backends starts every backend of the suite, each with a bucket named
// bucket. The servers stop when t ends.
func startBackends(t *testing.T) map[string]backend {
	root := t.TempDir()
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "backups")
	gcs := servers.StartGCS(t)
	gcs.CreateBucket(t, "backups")
	az := servers.StartAzure(t)
	az.CreateContainer(t, "backups")
	gcsKey := serviceAccountKey(t)

	s3Spec := func(bucket string) storagev1alpha1.Backend {
		return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{
			Endpoint: s3.Endpoint, Bucket: bucket, Prefix: "stash", SecretName: "s3-creds", MaxConnections: 8,
		}}
	}
	gcsSpec := func(bucket string) storagev1alpha1.Backend {
		return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderGCS, GCS: &storagev1alpha1.GCSSpec{
			Endpoint: gcs.Endpoint, Bucket: bucket, Prefix: "stash", SecretName: "gcs-creds",
		}}
	}
	azSpec := func(container string) storagev1alpha1.Backend {
		return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderAzure, Azure: &storagev1alpha1.AzureSpec{
			Endpoint: az.Endpoint, StorageAccount: az.Account, Container: container, Prefix: "stash", SecretName: "az-creds",
		}}
	}
	localSpec := func(sub string) storagev1alpha1.Backend {
		return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{
			MountPath: "/stash", SubPath: sub, MaxConnections: 4,
		}}
	}
	wrongAzureKey := make([]byte, 64)
	_, _ = rand.Read(wrongAzureKey)
	return map[string]backend{
		"file": {
			spec: localSpec("backups"), opts: storage.OpenOptions{LocalRoot: root},
			missing: localSpec("backups"),
		},
		"mem": {
			spec: storagev1alpha1.Backend{Provider: storage.ProviderMem, Local: &storagev1alpha1.LocalSpec{SubPath: "backups"}},
			opts: storage.OpenOptions{LocalRoot: t.Name()},
		},
		"s3": {
			spec: s3Spec("backups"),
			secret: map[string][]byte{
				storagev1alpha1.SecretKeyAWSAccessKeyID:     []byte(s3.AccessKey),
				storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
			},
			missing: s3Spec("no-such-bucket"),
			wrong: map[string][]byte{
				storagev1alpha1.SecretKeyAWSAccessKeyID:     []byte(s3.AccessKey),
				storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte("wrong-" + s3.SecretKey),
			},
		},
		"gcs": {
			spec:    gcsSpec("backups"),
			secret:  map[string][]byte{storagev1alpha1.SecretKeyGoogleServiceAccountJSON: gcsKey},
			missing: gcsSpec("no-such-bucket"),
			known:   []storagetest.Limitation{storagetest.NoPaging},
		},
		"azure": {
			spec:    azSpec("backups"),
			secret:  map[string][]byte{storagev1alpha1.SecretKeyAzureAccountKey: []byte(az.Key)},
			missing: azSpec("no-such-container"),
			wrong:   map[string][]byte{storagev1alpha1.SecretKeyAzureAccountKey: []byte(base64.StdEncoding.EncodeToString(wrongAzureKey))},
		},
	}
}

// serviceAccountKey makes a Google service account key for a test. The
// GCS emulator accepts any token, so the key only has to be well formed.
func serviceAccountKey(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "stashplane-test",
		"private_key_id": "test",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "backup@stashplane-test.iam.gserviceaccount.com",
		"token_uri":      "http://127.0.0.1:9/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBackends runs the conformance suite on every backend, then opens each
// with a missing bucket and with wrong credentials.
func TestBackends(t *testing.T) {
	for name, be := range startBackends(t) {
		t.Run(name, func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) *blob.Bucket { return mustOpen(t, be.spec, be.secret, be.opts) }, be.known...)
			if be.missing.Provider != "" {
				t.Run("MissingBucket", func(t *testing.T) {
					opts := be.opts
					if be.missing.Provider == storagev1alpha1.ProviderLocal {
						// The volume is not mounted where the caller says.
						opts.LocalRoot = filepath.Join(t.TempDir(), "not-mounted")
						_, err := storage.Open(context.Background(), be.missing, be.secret, opts)
						if got := storage.Reason(err); got != storage.ReasonBucketNotFound {
							t.Errorf("Opening a local storage whose volume is missing: Reason(%v) = %q, want %q", err, got, storage.ReasonBucketNotFound)
						}
						return
					}
					storagetest.RunMissingBucket(t, mustOpen(t, be.missing, be.secret, opts))
				})
			}
			if be.wrong != nil {
				t.Run("WrongCredentials", func(t *testing.T) {
					var secrets []string
					for _, v := range be.wrong {
						secrets = append(secrets, string(v))
					}
					for _, v := range be.secret {
						secrets = append(secrets, string(v))
					}
					storagetest.RunWrongCredentials(t, mustOpen(t, be.spec, be.wrong, be.opts), secrets...)
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
	b := mustOpen(t, spec, nil, storage.OpenOptions{LocalRoot: root})
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
