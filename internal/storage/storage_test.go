package storage_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/storage"
	"github.com/stashplane/stashplane/internal/storage/storagetest"
)

const leaked = "sEcReT-value-that-must-never-leak-0123456789"

func TestOpenInvalidConfig(t *testing.T) {
	s3 := func(mut func(*storagev1alpha1.S3Spec)) storagev1alpha1.Backend {
		s := &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "creds", Endpoint: "http://127.0.0.1:9"}
		mut(s)
		return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: s}
	}
	s3Keys := map[string][]byte{
		storagev1alpha1.SecretKeyAWSAccessKeyID:     []byte("id-" + leaked),
		storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(leaked),
	}
	gcs := storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderGCS, GCS: &storagev1alpha1.GCSSpec{Bucket: "b", SecretName: "creds", Endpoint: "http://127.0.0.1:9/storage/v1/"}}
	azure := storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderAzure, Azure: &storagev1alpha1.AzureSpec{StorageAccount: "a", Container: "c", SecretName: "creds", Endpoint: "http://127.0.0.1:9/a"}}
	local := func(sub string) storagev1alpha1.Backend {
		return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: "/m", SubPath: sub}}
	}
	tests := map[string]struct {
		reason string
		spec   storagev1alpha1.Backend
		secret map[string][]byte
		opts   storage.OpenOptions
	}{
		"UnknownProvider": {reason: "A provider outside the API is refused.", spec: storagev1alpha1.Backend{Provider: "ftp"}},
		"MissingBlock":    {reason: "The block of the provider must be set.", spec: storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3}},
		"S3MissingKeys": {
			reason: "A named Secret without both AWS keys is refused.",
			spec:   s3(func(*storagev1alpha1.S3Spec) {}),
			secret: map[string][]byte{storagev1alpha1.SecretKeyAWSAccessKeyID: []byte("id-" + leaked)},
		},
		"S3BadCA": {
			reason: "CA_CERT_DATA that holds no certificate is refused.",
			spec:   s3(func(*storagev1alpha1.S3Spec) {}),
			secret: map[string][]byte{
				storagev1alpha1.SecretKeyAWSAccessKeyID:     s3Keys[storagev1alpha1.SecretKeyAWSAccessKeyID],
				storagev1alpha1.SecretKeyAWSSecretAccessKey: s3Keys[storagev1alpha1.SecretKeyAWSSecretAccessKey],
				storagev1alpha1.SecretKeyCACertData:         []byte("not a certificate"),
			},
		},
		"S3BadEndpoint": {
			reason: "An endpoint that is not an http(s) URL is refused.",
			spec:   s3(func(s *storagev1alpha1.S3Spec) { s.Endpoint = "ftp://x" }),
			secret: s3Keys,
		},
		"GCSKeyNotJSON": {
			reason: "A service account key that is not JSON is refused without quoting it.",
			spec:   gcs,
			secret: map[string][]byte{storagev1alpha1.SecretKeyGoogleServiceAccountJSON: []byte(leaked)},
		},
		"GCSKeyOtherType": {
			reason: "Credentials other than a service account key are refused.",
			spec:   gcs,
			secret: map[string][]byte{storagev1alpha1.SecretKeyGoogleServiceAccountJSON: []byte(`{"type":"external_account","audience":"` + leaked + `"}`)},
		},
		"GCSKeyBadPrivateKey": {
			reason: "A service account key whose private key does not parse is refused without quoting it.",
			spec:   gcs,
			secret: map[string][]byte{storagev1alpha1.SecretKeyGoogleServiceAccountJSON: []byte(`{"type":"service_account","client_email":"a@b","private_key":"` + leaked + `"}`)},
		},
		"AzureKeyNotBase64": {
			reason: "An account key that is not base64 is refused without quoting it.",
			spec:   azure,
			secret: map[string][]byte{storagev1alpha1.SecretKeyAzureAccountKey: []byte(leaked + "!!")},
		},
		"AzureMissingKey": {reason: "A named Secret without the account key is refused.", spec: azure, secret: map[string][]byte{}},
		"LocalNoRoot":     {reason: "The caller must say where the volume is mounted.", spec: local("x")},
		"LocalEscape": {
			reason: "A subPath may not leave the volume.",
			spec:   local("../etc"),
			opts:   storage.OpenOptions{LocalRoot: t.TempDir()},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := storage.Open(context.Background(), tc.spec, tc.secret, tc.opts)
			if err == nil {
				_ = b.Close()
			}
			if diff := cmp.Diff(storage.ReasonInvalidConfig, storage.Reason(err)); diff != "" {
				t.Errorf("%s\nReason(%v): -want +got:\n%s", tc.reason, err, diff)
			}
			storagetest.AssertNoSecret(t, err, leaked)
		})
	}
}

func TestReason(t *testing.T) {
	tests := map[string]struct {
		reason string
		err    error
		want   string
	}{
		"Nil":            {reason: "No error, no reason.", err: nil, want: ""},
		"S3NoSuchBucket": {reason: "S3's NoSuchBucket is a missing bucket.", err: &smithy.GenericAPIError{Code: "NoSuchBucket"}, want: storage.ReasonBucketNotFound},
		"S3Signature":    {reason: "A wrong S3 secret key is denied.", err: &smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}, want: storage.ReasonPermissionDenied},
		"S3UnknownKey":   {reason: "An unknown S3 access key is denied.", err: &smithy.GenericAPIError{Code: "InvalidAccessKeyId"}, want: storage.ReasonPermissionDenied},
		"S3GatewayKey":   {reason: "An access key versitygw does not know is denied.", err: &smithy.GenericAPIError{Code: "XAdminUserNotFound"}, want: storage.ReasonPermissionDenied},
		"AzureContainer": {
			reason: "Azure's ContainerNotFound is a missing bucket.",
			err:    &azcore.ResponseError{ErrorCode: "ContainerNotFound", StatusCode: http.StatusNotFound},
			want:   storage.ReasonBucketNotFound,
		},
		"AzureAuth": {
			reason: "Azure's AuthenticationFailed is denied.",
			err:    &azcore.ResponseError{ErrorCode: "AuthenticationFailed", StatusCode: http.StatusForbidden},
			want:   storage.ReasonPermissionDenied,
		},
		"GCSForbidden": {reason: "A GCS 403 is denied, not a missing object.", err: &googleapi.Error{Code: http.StatusForbidden}, want: storage.ReasonPermissionDenied},
		"GCSBucket": {
			reason: "A GCS 404 about the bucket is a missing bucket.",
			err:    &googleapi.Error{Code: http.StatusNotFound, Message: "The specified bucket does not exist."},
			want:   storage.ReasonBucketNotFound,
		},
		"Refused": {
			reason: "A refused connection is unreachable, however deeply wrapped.",
			err:    fmt.Errorf("cannot list: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}),
			want:   storage.ReasonUnreachable,
		},
		"DNS":      {reason: "A name that does not resolve is unreachable.", err: &net.DNSError{Name: "s3.invalid", IsNotFound: true}, want: storage.ReasonUnreachable},
		"Deadline": {reason: "A timeout is unreachable.", err: context.DeadlineExceeded, want: storage.ReasonUnreachable},
		"Other":    {reason: "Anything else is unknown.", err: errors.New("boom"), want: storage.ReasonUnknown},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, storage.Reason(tc.err)); diff != "" {
				t.Errorf("%s\nReason(%v): -want +got:\n%s", tc.reason, tc.err, diff)
			}
			if got := storage.Message(tc.err); (tc.err == nil) != (got == "") {
				t.Errorf("%s\nMessage(%v) = %q: want a message exactly when there is an error", tc.reason, tc.err, got)
			}
		})
	}
}

// TestUnreachable opens every network provider against a port nothing
// listens on.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	tests := map[string]struct {
		reason string
		spec   storagev1alpha1.Backend
		secret map[string][]byte
	}{
		"S3": {
			reason: "An S3 endpoint that refuses connections is unreachable.",
			spec:   storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Endpoint: "http://" + addr, Bucket: "b", SecretName: "c"}},
			secret: map[string][]byte{storagev1alpha1.SecretKeyAWSAccessKeyID: []byte("id"), storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(leaked)},
		},
		"Azure": {
			reason: "An Azure endpoint that refuses connections is unreachable.",
			spec:   storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderAzure, Azure: &storagev1alpha1.AzureSpec{Endpoint: "http://" + addr + "/a", StorageAccount: "a", Container: "c", SecretName: "c"}},
			secret: map[string][]byte{storagev1alpha1.SecretKeyAzureAccountKey: []byte("a2V5a2V5a2V5a2V5")},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := storagetest.MustOpen(t, tc.spec, tc.secret, storage.OpenOptions{})
			defer func() { _ = b.Close() }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := b.WriteAll(ctx, "metadata.yaml", []byte("x"), nil)
			if diff := cmp.Diff(storage.ReasonUnreachable, storage.Reason(err)); diff != "" {
				t.Errorf("%s\nReason(%v): -want +got:\n%s", tc.reason, err, diff)
			}
			storagetest.AssertNoSecret(t, err, leaked)
		})
	}
}

// TestMaxConnections checks that a bucket never has more operations in
// flight than maxConnections: a reader holds its slot until closed.
func TestMaxConnections(t *testing.T) {
	spec := storagev1alpha1.Backend{Provider: storage.ProviderMem, Local: &storagev1alpha1.LocalSpec{MaxConnections: 2}}
	b := storagetest.MustOpen(t, spec, nil, storage.OpenOptions{LocalRoot: t.Name()})
	defer func() { _ = b.Close() }()
	ctx := context.Background()
	for i := range 3 {
		if err := b.WriteAll(ctx, strconv.Itoa(i), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	r0, err := b.NewReader(ctx, "0", nil)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := b.NewReader(ctx, "1", nil)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := b.NewReader(short, "2", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("A third reader waits while two are open: got %v, want a deadline error", err)
	}
	_ = r0.Close()
	r2, err := b.NewReader(ctx, "2", nil)
	if err != nil {
		t.Errorf("A reader gets the slot another one released: %v", err)
	} else {
		_ = r2.Close()
	}
	_ = r1.Close()
	// The mem volume is shared by name: a second Open sees the objects.
	again := storagetest.MustOpen(t, spec, nil, storage.OpenOptions{LocalRoot: t.Name()})
	defer func() { _ = again.Close() }()
	if ok, err := again.Exists(ctx, "2"); err != nil || !ok {
		t.Errorf("A second Open of the same mem volume sees its objects: exists=%v err=%v", ok, err)
	}
}
