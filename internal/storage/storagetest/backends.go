package storagetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"

	"gocloud.dev/blob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/storage"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// Backend is one storage the suite runs against: a spec and Secret that
// reach it, and the variants that must fail.
type Backend struct {
	Spec   storagev1alpha1.Backend
	Secret map[string][]byte
	Opts   storage.OpenOptions
	// Missing reaches a bucket that does not exist.
	Missing storagev1alpha1.Backend
	// Wrong holds credentials the backend refuses (nil: the backend checks
	// none, as files and memory, or the test server checks none, as
	// fake-gcs-server).
	Wrong map[string][]byte
	// Known gaps of the test server.
	Known []Limitation
}

// Open opens the backend's bucket, failing the test if it cannot.
func (b Backend) Open(t testing.TB) *blob.Bucket {
	t.Helper()
	return MustOpen(t, b.Spec, b.Secret, b.Opts)
}

// MustOpen opens a bucket, failing the test if it cannot.
func MustOpen(t testing.TB, spec storagev1alpha1.Backend, secret map[string][]byte, opts storage.OpenOptions) *blob.Bucket {
	t.Helper()
	b, err := storage.Open(context.Background(), spec, secret, opts)
	if err != nil {
		t.Fatalf("cannot open the bucket: %v", err)
	}
	return b
}

// Backends starts a server for every network backend (versitygw,
// fake-gcs-server, Azurite) and returns every backend of the suite by name
// (file, mem, s3, gcs, azure), each with an empty bucket "backups" and the
// prefix "stash". The servers stop when t ends.
func Backends(t *testing.T) map[string]Backend {
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
	return map[string]Backend{
		"file": {
			Spec: localSpec("backups"), Opts: storage.OpenOptions{LocalRoot: root},
			Missing: localSpec("backups"),
		},
		"mem": {
			Spec: storagev1alpha1.Backend{Provider: storage.ProviderMem, Local: &storagev1alpha1.LocalSpec{SubPath: "backups"}},
			Opts: storage.OpenOptions{LocalRoot: t.Name()},
		},
		"s3": {
			Spec: s3Spec("backups"),
			Secret: map[string][]byte{
				storagev1alpha1.SecretKeyAWSAccessKeyID:     []byte(s3.AccessKey),
				storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
			},
			Missing: s3Spec("no-such-bucket"),
			Wrong: map[string][]byte{
				storagev1alpha1.SecretKeyAWSAccessKeyID:     []byte(s3.AccessKey),
				storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte("wrong-" + s3.SecretKey),
			},
		},
		"gcs": {
			Spec:    gcsSpec("backups"),
			Secret:  map[string][]byte{storagev1alpha1.SecretKeyGoogleServiceAccountJSON: gcsKey},
			Missing: gcsSpec("no-such-bucket"),
			Known:   []Limitation{NoPaging},
		},
		"azure": {
			Spec:    azSpec("backups"),
			Secret:  map[string][]byte{storagev1alpha1.SecretKeyAzureAccountKey: []byte(az.Key)},
			Missing: azSpec("no-such-container"),
			Wrong:   map[string][]byte{storagev1alpha1.SecretKeyAzureAccountKey: []byte(base64.StdEncoding.EncodeToString(wrongAzureKey))},
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
