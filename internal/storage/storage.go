// Package storage opens the gocloud.dev/blob bucket behind a BackupStorage.
//
// Every part of Stashplane that touches a backend (the BackupStorage and
// Repository controllers, the restic bridge inside backup Jobs) opens it
// here, from the storage spec and the data of its credential Secret, so that
// credentials, TLS, prefix scoping, connection limits and error reasons are
// handled once. Each provider has one opener, and the table that maps a
// provider to its opener (providers, in providers.go) is the only place a
// backend is registered: nothing relies on gocloud's URL schemes or on
// drivers registering themselves.
package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gocloud.dev/blob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// ProviderMem is an in-process backend for tests of code that opens
// buckets. It is not part of the API (a BackupStorage cannot name it): it
// reads the local block like ProviderLocal, and OpenOptions.LocalRoot names
// an in-memory volume shared by every Open in the process, so that two Opens
// of the same spec see the same objects.
const ProviderMem storagev1alpha1.StorageProvider = "mem"

// OpenOptions are the facts about the calling process that the spec cannot
// know.
type OpenOptions struct {
	// LocalRoot is where the volume of a local provider is mounted in the
	// calling process (for example an accessor pod's mount, or a backup
	// Job's). The caller resolves it: Open never assumes it can reach the
	// volume the spec names, such as a hostPath on some node. Required for
	// ProviderLocal; for ProviderMem it names the in-memory volume.
	LocalRoot string
}

// Open opens the bucket that spec describes, using the data of its
// credential Secret (nil when the spec names no Secret), scoped to the
// spec's prefix or subPath. The bucket bounds its concurrent operations to
// the spec's maxConnections, and no error it returns carries a value of
// secret. The caller closes the bucket.
//
// Open checks the configuration but does not contact the backend: the first
// operation on the bucket reports an unreachable endpoint, a missing bucket
// or refused credentials, and Reason classifies that error.
func Open(ctx context.Context, spec storagev1alpha1.Backend, secret map[string][]byte, opts OpenOptions) (*blob.Bucket, error) {
	open, ok := providers[spec.Provider]
	if !ok {
		return nil, invalidConfigf("unknown storage provider %q", spec.Provider)
	}
	o, err := open(ctx, spec, secret, opts)
	if err != nil {
		return nil, redactError(err, secret)
	}
	w := newWrapped(o.bucket, o.maxConnections, secret, o.closers...)
	w.shared = o.shared
	b := blob.NewBucket(w)
	if p := cleanPrefix(o.prefix); p != "" {
		b = blob.PrefixedBucket(b, p)
	}
	return b, nil
}

// opened is what a provider's opener hands back to Open.
type opened struct {
	bucket         *blob.Bucket
	prefix         string
	maxConnections int64
	// closers release what the opener made beside the bucket, such as an
	// HTTP transport, when the bucket is closed.
	closers []func()
	// shared buckets (ProviderMem) are not closed with the returned one.
	shared bool
}

// opener opens the bucket of one provider.
type opener func(ctx context.Context, spec storagev1alpha1.Backend, secret map[string][]byte, opts OpenOptions) (opened, error)

// cleanPrefix turns a prefix from the spec into a key prefix ending in "/",
// or "" for the root of the bucket.
func cleanPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// configError is an error in the spec or the Secret, found before the
// backend was contacted.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func invalidConfigf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// IsInvalidConfig reports whether err is a problem of the spec or the
// Secret rather than of the backend.
func IsInvalidConfig(err error) bool {
	var c *configError
	return errors.As(err, &c)
}
