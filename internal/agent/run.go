package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"gocloud.dev/blob"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/restic/bridge"
	"github.com/stashplane/stashplane/internal/storage"
)

// Exit codes of the agent.
const (
	// ExitFailed: the run failed and the failure is recorded in the
	// Snapshot's component (backup) or the logs (restore).
	ExitFailed = 1
	// ExitNotRecorded: the run could not start or could not record its
	// outcome: bad arguments, unreadable credentials, or the Snapshot,
	// Repository or BackupStorage could not be read or written.
	ExitNotRecorded = 2
)

// ExitError is a failed run with the process exit code it asks for.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the exit code of the process.
func (e *ExitError) ExitCode() int { return e.Code }

func notRecorded(err error) error { return &ExitError{Code: ExitNotRecorded, Err: err} }

// Runner runs the agent against one cluster.
type Runner struct {
	// Kube reads the Repository, BackupStorage and Snapshot and writes the
	// Snapshot's status.
	Kube client.Client
	// Discovery lists the API's resources, for dumps of a namespace or of
	// the cluster, which hold custom resources too; nil holds none.
	Discovery discovery.DiscoveryInterface
	// Log receives progress; never a secret.
	Log logr.Logger
	// Options from the command line.
	Options Options

	// walk walks a backup's source; walkTree when nil (tests slow it).
	walk func(paths, exclude []string) (files, dirs []sourceFile, err error)
	// syncfs writes a restore target's filesystem to its disk
	// (targetSync); unix.Syncfs when nil (tests make it fail).
	syncfs func(fd int) error
	// memoryRoom is cacheRoom, the memory the page cache may hold for
	// this Job; tests give their own.
	memoryRoom func() int64
}

// target is everything a run resolved before it touches data.
type target struct {
	snapshot   *storagev1alpha1.Snapshot
	repo       *storagev1alpha1.Repository
	storage    *storagev1alpha1.BackupStorage
	session    string
	resticPath string
	password   string
	redact     redactor
	// bucket is the storage's root, for the agent's own records.
	bucket *blob.Bucket
	// open opens the storage again: the restic bridge gets a bucket of its
	// own, since scoping a bucket to a prefix closes the original.
	open func(ctx context.Context) (*blob.Bucket, error)
	// healing is what a backup found lost from the restic repository, and
	// healed (heal.go); nil when its check passed.
	healing *storagev1alpha1.ComponentHealing
	// phases times the run's steps for its last log line.
	phases *phases
	// locksAfter, when not nil, holds restic's locks back
	// (bridge.Options.LocksAfter).
	locksAfter func() <-chan struct{}
	// localRoot is the root of a local storage mounted in this container,
	// or "" for a storage reached over the network or through the broker.
	localRoot string

	keysOnce sync.Once
	keys     *manifestKeys
}

// manifestKeys seals and opens the run's content manifests: one per run,
// so a key derived to open one manifest seals the next.
func (t *target) manifestKeys() *manifestKeys {
	t.keysOnce.Do(func() { t.keys = newManifestKeys(t.password) })
	return t.keys
}

// resolve reads the Snapshot, Repository and BackupStorage of a run and
// checks that they belong together.
func (r *Runner) resolve(ctx context.Context) (*target, error) {
	o := r.Options
	t := &target{snapshot: &storagev1alpha1.Snapshot{}, repo: &storagev1alpha1.Repository{}, storage: &storagev1alpha1.BackupStorage{}}
	if err := r.Kube.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: o.Snapshot}, t.snapshot); err != nil {
		return nil, fmt.Errorf("cannot get snapshot %q: %w", o.Snapshot, err)
	}
	if t.snapshot.Spec.Repository != o.Repository {
		return nil, fmt.Errorf("cannot use snapshot %q: it belongs to repository %q, not %q", o.Snapshot, t.snapshot.Spec.Repository, o.Repository)
	}
	t.session = t.snapshot.Spec.Session
	if t.session == "" {
		t.session = t.snapshot.Spec.BackupSession
	}
	if t.session == "" {
		return nil, fmt.Errorf("cannot use snapshot %q: it names neither a session nor a backup session", o.Snapshot)
	}
	if err := r.resolveStorage(ctx, t); err != nil {
		return nil, err
	}
	t.resticPath = layout.ResticPrefix(t.repo.Spec.Path, t.session, o.Component)
	t.redact = redactor{}
	return t, nil
}

// resolveStorage reads the run's Repository and BackupStorage and checks
// that the Repository uses that storage.
func (r *Runner) resolveStorage(ctx context.Context, t *target) error {
	o := r.Options
	if err := r.Kube.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: o.Repository}, t.repo); err != nil {
		return fmt.Errorf("cannot get repository %q: %w", o.Repository, err)
	}
	sns, sname, err := o.StorageRef()
	if err != nil {
		return err
	}
	ref := t.repo.Spec.StorageRef
	if ref.Namespace == "" {
		ref.Namespace = t.repo.Namespace
	}
	if ref.Namespace != sns || ref.Name != sname {
		return fmt.Errorf("cannot use storage %q: repository %q uses %s/%s", o.Storage, o.Repository, ref.Namespace, ref.Name)
	}
	if err := r.Kube.Get(ctx, types.NamespacedName{Namespace: sns, Name: sname}, t.storage); err != nil {
		return fmt.Errorf("cannot get backupstorage %q: %w", o.Storage, err)
	}
	return nil
}

// Reasons the agent could not reach its data.
const (
	// ReasonCredentialsUnreadable: the password file or the storage
	// Secret's files could not be read.
	ReasonCredentialsUnreadable = "CredentialsUnreadable"
	// ReasonStorageNotMounted: a local storage's volume is not where the
	// storage says, or holds no storage.
	ReasonStorageNotMounted = "StorageNotMounted"
)

// connect reads the mounted credentials and opens the storage. Its errors
// carry a reason and are free of secrets.
func (r *Runner) connect(ctx context.Context, t *target) error {
	o := r.Options
	var err error
	if t.password, err = readPassword(o.PasswordFile); err != nil {
		return &reasonError{reason: ReasonCredentialsUnreadable, msg: err.Error()}
	}
	secret, err := ReadSecretDir(o.StorageSecretDir)
	if err != nil {
		return &reasonError{reason: ReasonCredentialsUnreadable, msg: err.Error()}
	}
	t.redact = newRedactor(t.password, secret)
	if t.storage.Brokered() && t.storage.Namespace != o.Namespace {
		return r.connectBroker(ctx, t, secret)
	}
	spec, opts, err := openOptions(t.storage.Spec.Storage)
	if err != nil {
		return &reasonError{reason: ReasonStorageNotMounted, msg: err.Error()}
	}
	t.localRoot = opts.LocalRoot
	t.open = func(ctx context.Context) (*blob.Bucket, error) {
		b, err := storage.Open(ctx, spec, secret, opts)
		if err != nil {
			return nil, &reasonError{reason: "Storage" + storage.Reason(err), msg: "cannot open the storage: " + storage.Message(err)}
		}
		return b, nil
	}
	t.bucket, err = t.open(ctx)
	return err
}

// ReasonStorageBrokerNotReady: a brokered storage's broker is not
// serving (the storage records no endpoint) or refused the run's grant.
const ReasonStorageBrokerNotReady = "StorageBrokerNotReady"

// connectBroker opens a brokered storage of another namespace through its
// broker, with the grant the run's owner holds (its Repositories' prefixes
// alone); the Job holds no credential and mounts no storage volume.
func (r *Runner) connectBroker(ctx context.Context, t *target, secret map[string][]byte) error {
	grant := strings.TrimSpace(string(secret[agentapi.SecretKeyStorageGrant]))
	if grant == "" {
		return &reasonError{reason: ReasonCredentialsUnreadable, msg: fmt.Sprintf("backupstorage %s/%s is brokered, and the storage secret directory holds no %s", t.storage.Namespace, t.storage.Name, agentapi.SecretKeyStorageGrant)}
	}
	cert := secret[agentapi.SecretKeyStorageBrokerCertificate]
	if len(cert) == 0 {
		return &reasonError{reason: ReasonCredentialsUnreadable, msg: fmt.Sprintf("backupstorage %s/%s is brokered, and the storage secret directory holds no %s", t.storage.Namespace, t.storage.Name, agentapi.SecretKeyStorageBrokerCertificate)}
	}
	hc, err := accessor.HTTPClient(cert)
	if err != nil {
		return &reasonError{reason: ReasonCredentialsUnreadable, msg: fmt.Sprintf("backupstorage %s/%s is brokered, and %s: %v", t.storage.Namespace, t.storage.Name, agentapi.SecretKeyStorageBrokerCertificate, err)}
	}
	t.open = func(ctx context.Context) (*blob.Bucket, error) {
		endpoint := t.storage.Status.BrokerEndpoint
		if endpoint == "" {
			// The broker may have moved since the run began: read again.
			st := &storagev1alpha1.BackupStorage{}
			if err := r.Kube.Get(ctx, client.ObjectKeyFromObject(t.storage), st); err == nil {
				endpoint = st.Status.BrokerEndpoint
			}
		}
		if endpoint == "" {
			return nil, &reasonError{reason: ReasonStorageBrokerNotReady, msg: fmt.Sprintf("the broker of backupstorage %s/%s is not serving: the storage records no endpoint", t.storage.Namespace, t.storage.Name)}
		}
		b, err := accessor.OpenBucket(endpoint, grant, hc)
		if err != nil {
			return nil, &reasonError{reason: ReasonStorageBrokerNotReady, msg: "cannot open the storage through its broker: " + err.Error()}
		}
		return b, nil
	}
	t.bucket, err = t.open(ctx)
	return err
}

// openOptions says where a local storage's volume is in this container.
// The rendered Jobs mount the volume with the storage's subPath at its
// mountPath, so the storage's root is the mountPath itself; a Job that
// mounts the whole volume has it at mountPath/subPath. The root is the one
// that holds the storage's metadata.yaml, which also proves that the
// volume is mounted and initialised: an empty directory in its place would
// otherwise receive the backup and lose it with the container.
func openOptions(spec storagev1alpha1.Backend) (storagev1alpha1.Backend, storage.OpenOptions, error) {
	if spec.Provider != storagev1alpha1.ProviderLocal || spec.Local == nil {
		return spec, storage.OpenOptions{}, nil
	}
	l := *spec.Local
	for _, root := range []string{l.MountPath, path.Join(l.MountPath, l.SubPath)} {
		if _, err := os.Stat(filepath.Join(root, layout.MetadataKey)); err == nil {
			l.SubPath = ""
			spec.Local = &l
			return spec, storage.OpenOptions{LocalRoot: root}, nil
		}
	}
	return spec, storage.OpenOptions{}, fmt.Errorf("cannot find the local storage at %q: no %s there or under its subPath %q (the storage volume is not mounted, or the storage is not initialised)",
		l.MountPath, layout.MetadataKey, l.SubPath)
}

// resticReading is resticFor for runs that read the repository (restores,
// downloads): a local storage mounted in the container is handed to restic
// as the directory it is (localRestic), with no bridge between them.
func (r *Runner) resticReading(ctx context.Context, t *target, errs *bridgeErrors) (*restic.Restic, func(context.Context), error) {
	if t.localRoot == "" {
		return r.resticFor(ctx, t, errs)
	}
	rc, err := r.localRestic(t)
	if err != nil {
		return nil, nil, err
	}
	return rc, func(context.Context) {}, nil
}

// localRestic is a driver of restic on its own local backend, on the
// component's repository in the local storage mounted in this container
// (t.localRoot not empty). The bridge lays a repository out on files
// exactly as restic's local backend does, so both read and write the same
// files; restic reading and writing them itself saves every byte a trip
// through the bridge's HTTP on loopback, which on two cores cost a restore
// of 512 MiB about a sixth of its time and a backup of 1.1 GiB some of
// restic's speed (BenchmarkLocalRestore, BenchmarkFirstBackup,
// docs/performance.md), and its writes are synced to the disk before
// restic counts them stored. What only the bridge gives stays with it: an
// init whose config and keys are written only where none are, and a
// backup's lock held until the source is listed (a backup on the local
// backend is held at restic.BackupOptions.Gate instead).
func (r *Runner) localRestic(t *target) (*restic.Restic, error) {
	bin, err := r.Options.resticBinary()
	if err != nil {
		return nil, err
	}
	dir := localRepository(t)
	rc, err := r.newRestic(bin, "local:"+dir)
	if err != nil {
		return nil, err
	}
	r.Log.Info("restic reaches the repository in the mounted storage itself", "directory", dir)
	return rc, nil
}

// localRepository is the directory of the component's restic repository
// in the local storage mounted in this container.
func localRepository(t *target) string {
	return filepath.Join(t.localRoot, filepath.FromSlash(t.resticPath))
}

// newRestic is the driver of restic on repository, with the run's password
// file, cache and restic's tuning from the agent's environment.
func (r *Runner) newRestic(bin, repository string) (*restic.Restic, error) {
	return restic.New(restic.Options{
		Binary:       bin,
		Repository:   repository,
		PasswordFile: r.Options.PasswordFile,
		CacheDir:     filepath.Join(r.Options.ScratchDir, "cache"),
		ProgressFPS:  0.5,
		Env:          agentapi.ResticTuning(os.Environ()),
	})
}

// resticFor serves the component's restic repository and returns a driver
// for it; stop ends the bridge.
func (r *Runner) resticFor(ctx context.Context, t *target, errs *bridgeErrors) (*restic.Restic, func(context.Context), error) {
	bin, err := r.Options.resticBinary()
	if err != nil {
		return nil, nil, err
	}
	root, err := t.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	b := blob.PrefixedBucket(root, t.resticPath)
	srv, err := bridge.Start(b, bridge.Options{Log: logr.New(errs), LocksAfter: t.locksAfter})
	if err != nil {
		_ = b.Close()
		return nil, nil, err
	}
	stop := func(ctx context.Context) {
		if err := srv.Close(ctx); err != nil {
			r.Log.Error(err, "cannot stop the restic bridge")
		}
		_ = b.Close()
	}
	rc, err := r.newRestic(bin, srv.Repository())
	if err != nil {
		stop(context.Background())
		return nil, nil, err
	}
	return rc, stop, nil
}

// failure turns an error of a run into a reason and a message free of
// secrets. A restic failure caused by the storage reports the storage's
// reason, as the bridge saw it.
func failure(err error, errs *bridgeErrors, red redactor) (string, string) {
	var se *reasonError
	var re *restic.Error
	var fe Failure
	reason, msg := restic.ReasonResticFailed, err.Error()
	switch {
	case errors.As(err, &se):
		reason, msg = se.reason, se.msg
	case errors.As(err, &fe):
		reason, msg = fe.FailureReason()
	case errors.As(err, &re):
		reason, msg = re.Reason, re.Message
		switch serr := errs.last(); {
		case serr == nil:
		case re.Reason == restic.ReasonResticFailed:
			// restic failed because the storage did.
			reason, msg = "Storage"+storage.Reason(serr), storage.Message(serr)
		default:
			msg += " (the storage was failing: " + storage.Reason(serr) + ": " + storage.Message(serr) + ")"
		}
	case storage.Reason(err) != storage.ReasonUnknown:
		reason, msg = "Storage"+storage.Reason(err), storage.Message(err)
	}
	msg = red.redact(msg)
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	return reason, msg
}

// Failure is an error of a stream's source or sink (a database dump or
// load) that carries its own reason and a message free of secrets.
type Failure interface {
	error
	FailureReason() (reason, message string)
}

// maxMessage bounds a component's error.
const maxMessage = 1024

// reasonSourceIncomplete is restic's reason for unreadable files, used for
// what the agent finds unreadable itself.
const reasonSourceIncomplete = restic.ReasonSourceIncomplete

// bridgeErrors keeps the last storage error the bridge met, to explain a
// restic failure by its cause. It is a logr sink that records errors only.
type bridgeErrors struct {
	mu  sync.Mutex
	err error
	log logr.Logger
}

func (b *bridgeErrors) last() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// clear forgets the failures seen so far.
func (b *bridgeErrors) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = nil
}

func (b *bridgeErrors) Init(logr.RuntimeInfo)          {}
func (b *bridgeErrors) Enabled(int) bool               { return false }
func (b *bridgeErrors) Info(int, string, ...any)       {}
func (b *bridgeErrors) WithValues(...any) logr.LogSink { return b }
func (b *bridgeErrors) WithName(string) logr.LogSink   { return b }
func (b *bridgeErrors) Error(err error, msg string, kv ...any) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
	// storage.Message never quotes a backend's text, so never a credential.
	b.log.Info("storage request failed", "what", msg, "reason", storage.Reason(err), "message", storage.Message(err))
}

// hostName is the host restic records for the component: stable across
// runs, so each backup finds the previous one as its parent.
func hostName(o Options) string {
	return strings.Join([]string{o.Component, o.Repository, o.Namespace}, ".")
}

// tags name the Snapshot, session and component in the restic snapshot.
func tags(o Options, session string) []string {
	return []string{"snapshot=" + o.Snapshot, "session=" + session, "component=" + o.Component}
}

// cacheRoom is the memory the page cache may hold for this Job.
func (r *Runner) cacheRoom() int64 {
	if r.memoryRoom != nil {
		return r.memoryRoom()
	}
	return cacheRoom()
}
