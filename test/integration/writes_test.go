package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/backupconfiguration"
	"github.com/stashplane/stashplane/controllers/backupstorage"
	repositorycontroller "github.com/stashplane/stashplane/controllers/repository"
	snapshotcontroller "github.com/stashplane/stashplane/controllers/snapshot"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
	"github.com/stashplane/stashplane/internal/storagekind"
)

// writeCounter counts the writes a manager sends, by method and path.
type writeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost {
			c.mu.Lock()
			c.n[r.Method+" "+r.URL.Path]++
			c.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

// of returns the writes counted to paths ending in each suffix.
func (c *writeCounter) of(suffixes ...string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		for _, s := range suffixes {
			if strings.HasSuffix(k, s) {
				out[k] = v
				break
			}
		}
	}
	return out
}

// runCounted runs the controllers setup adds, with the storage kinds'
// options (a half-second poll) and the Snapshots' index, on a manager whose
// writes are counted.
func runCounted(t *testing.T, setup func(ctrl.Manager, storagekind.Options) error) *writeCounter {
	t.Helper()
	counted := &writeCounter{n: map[string]int{}}
	cfg := rest.CopyConfig(restConfig)
	cfg.Wrap(counted.wrap)
	runControllerOn(t, cfg, func(mgr ctrl.Manager) error {
		if err := mgr.GetFieldIndexer().IndexField(context.Background(), &storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotRepositoryField, storagev1alpha1.SnapshotRepository); err != nil {
			return err
		}
		opener := &storagekind.Opener{Client: mgr.GetClient()}
		return setup(mgr, storagekind.Options{Log: mgr.GetLogger(), Opener: opener, Reason: storagekind.Classify, PollInterval: 500 * time.Millisecond})
	})
	return counted
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The Snapshot controller, against a real API server and an S3 server,
// sends the API server only the writes that change something: recording a
// new Snapshot takes one write of the object (the create's result, which
// carries the finalizer and the mark of the pending create) and the status
// writes of its conditions; then polls that find the record as it was
// write nothing. Ten thousand Snapshots arriving at once are what the API
// server spends its time on (docs/scale.md).
func TestSnapshotRecordedWithFewWrites(t *testing.T) {
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "writes")
	counted := runCounted(t, func(mgr ctrl.Manager, so storagekind.Options) error {
		return snapshotcontroller.Setup(mgr, so)
	})
	ctx := testContext(t)
	const ns = testNamespace
	bs, repo, snap := s3Chain(t, s3, "writes", "few-writes", "few-writes-app", "")
	// Every version of the Snapshot, to see what the write that ends its
	// create holds.
	w := watchNamed(ctx, t, &storagev1alpha1.SnapshotList{}, ns, snap.Name)
	createAll(ctx, t, s3Secret(s3, "writes-s3"), bs, repo, snap)
	eventually(t, 30*time.Second, "the Snapshot was not recorded", func(ctx context.Context) (bool, string) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(snap), snap); err != nil {
			return false, err.Error()
		}
		c := snap.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded)
		return c.Status == corev1.ConditionTrue, fmt.Sprintf("%+v", snap.Status.Conditions)
	})
	// The record is in the storage, and the finalizer that removes it
	// was written with the object.
	if !meta.FinalizerExists(snap, managed.FinalizerName) {
		t.Errorf("the recorded Snapshot has no finalizer %q: %v", managed.FinalizerName, snap.Finalizers)
	}
	// The status write that ends the create already says the record is
	// in the storage, and Ready as the observation after it would say
	// (not Creating): it does not wait for that observation, which then
	// has nothing to write.
	created := createEnded[*storagev1alpha1.Snapshot](ctx, t, w)
	if c := created.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded); c.Status != corev1.ConditionTrue {
		t.Errorf("the status written with the create's result does not say the record is written: %+v", created.Status.Conditions)
	}
	if c := created.GetCondition(xpv2.TypeReady); c.Reason == xpv2.ReasonCreating || c.Reason == "" {
		t.Errorf("the status written with the create's result says Ready %s/%s, not what the record's observation says", c.Status, c.Reason)
	}
	// Let the reconciles the last writes set off settle, then count what
	// six polls send.
	time.Sleep(2 * time.Second)
	object := "/snapshots/" + snap.Name
	status := object + "/status"
	recorded := counted.of(object, status)
	time.Sleep(3 * time.Second)
	polled := counted.of(object, status)

	if diff := cmp.Diff(1, sumSuffix(recorded, "PUT", object)); diff != "" {
		t.Errorf("writes of the Snapshot object while it was recorded (the create's result, with its pending mark and the finalizer): -want +got:\n%s\nall: %v", diff, recorded)
	}
	if meta.GetExternalCreatePending(snap).IsZero() || meta.GetExternalCreateSucceeded(snap).IsZero() {
		t.Errorf("the recorded Snapshot does not carry both marks of its create: %v", snap.Annotations)
	}
	if diff := cmp.Diff(recorded, polled); diff != "" {
		t.Errorf("polls of a recorded Snapshot wrote to the API server: -before +after:\n%s", diff)
	}
	// One status write ends the create; the observation after it finds the
	// same and writes nothing, unless it read the Snapshot from a cache
	// one version behind, when its write is refused as a conflict.
	if n := sumSuffix(recorded, "PUT", status); n == 0 || n > 2 {
		t.Errorf("status writes of the Snapshot while it was recorded: %d, want 1 (2 after a stale read): %v", n, recorded)
	}
}

// watchNamed watches every version of the object name in ns, of list's
// kind, until the test ends.
func watchNamed(ctx context.Context, t *testing.T, list client.ObjectList, ns, name string) watch.Interface {
	t.Helper()
	wc, err := client.NewWithWatch(restConfig, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, list, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// createEnded is the first version w shows that is Synced: the status
// written when the managed reconciler ended the object's create.
func createEnded[T interface {
	client.Object
	GetCondition(xpv2.ConditionType) xpv2.Condition
}](ctx context.Context, t *testing.T, w watch.Interface) T {
	t.Helper()
	for {
		select {
		case e := <-w.ResultChan():
			if o, ok := e.Object.(T); ok && o.GetCondition(xpv2.TypeSynced).Status == corev1.ConditionTrue {
				return o
			}
		case <-ctx.Done():
			t.Fatal("no version of the object ended its create")
		}
	}
}

// sumSuffix sums the writes of one method to paths ending in suffix.
func sumSuffix(m map[string]int, method, suffix string) int {
	n := 0
	for k, v := range m {
		if strings.HasPrefix(k, method+" ") && strings.HasSuffix(k, suffix) {
			n += v
		}
	}
	return n
}

// A configuration composed against a real API server, with the storage,
// Repository and configuration controllers running: its Repository is
// applied once and written once by its own controller (the create's result
// with its finalizer) on its way to Ready, however often the Repository's
// own writes wake the configuration; each other object it composes is
// applied once. A thousand configurations arriving at once wait on these
// writes (docs/scale.md).
func TestConfigurationComposedWithFewWrites(t *testing.T) {
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "composed")
	counted := runCounted(t, func(mgr ctrl.Manager, so storagekind.Options) error {
		if err := backupstorage.Setup(mgr, so); err != nil {
			return err
		}
		if err := repositorycontroller.Setup(mgr, so); err != nil {
			return err
		}
		return backupconfiguration.Setup(mgr, backupconfiguration.Options{Log: mgr.GetLogger()})
	})
	ctx := testContext(t)
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	const ns = testNamespace
	bs, _, _ := s3Chain(t, s3, "composed", "fw-storage", "fw-unused", "")
	app := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "fw-app", Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "fw-app"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "fw-app"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}},
	}}
	password := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "fw-password", Namespace: ns},
		Data: map[string][]byte{repositorycontroller.PasswordKey: []byte("not-a-secret")}}
	bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "fw-backup", Namespace: ns}, Spec: corev1alpha1.BackupConfigurationSpec{
		Paused:   true,
		Target:   &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: app.Name},
		Backends: []corev1alpha1.BackendReference{{Name: "s3", StorageRef: &storagev1alpha1.ObjectReference{Name: bs.Name}}},
		Sessions: []corev1alpha1.Session{{
			Name: "nightly", Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *"},
			Addon: &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{
				Name: "logical-backup", Params: &runtime.RawExtension{Raw: []byte(`{"paths": ["/var/lib/app"]}`)}}}},
			Repositories: []corev1alpha1.RepositoryInfo{{Name: "fw-repo", Backend: "s3", Directory: "fw/app",
				EncryptionSecret: storagev1alpha1.ObjectReference{Name: password.Name}}},
		}},
	}}
	// The storage first, Ready before the configuration composes its
	// Repository: a Repository reconciled while its storage is not Ready
	// writes that into its status, a write this test does not count on.
	createAll(ctx, t, s3Secret(s3, "composed-s3"), password, bs)
	eventually(t, 60*time.Second, "the storage did not become Ready", func(ctx context.Context) (bool, string) {
		got := &storagev1alpha1.BackupStorage{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bs), got); err != nil {
			return false, err.Error()
		}
		return got.GetCondition(xpv2.TypeReady).Status == corev1.ConditionTrue, fmt.Sprintf("%+v", got.Status.Conditions)
	})
	// Every version of the Repository, to see what the write that ends
	// its create holds.
	w := watchNamed(ctx, t, &storagev1alpha1.RepositoryList{}, ns, "fw-repo")
	createAll(ctx, t, app, bc)
	eventually(t, 60*time.Second, "the configuration's Repository did not become Ready", func(ctx context.Context) (bool, string) {
		got := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), got); err != nil {
			return false, err.Error()
		}
		ready := got.Status.Phase == corev1alpha1.BackupInvokerReady && len(got.Status.Repositories) == 1 &&
			got.Status.Repositories[0].Phase == storagev1alpha1.RepositoryReady
		return ready, fmt.Sprintf("%s %+v", got.Status.Phase, got.Status.Repositories)
	})
	// Let the reconciles the last writes set off settle.
	time.Sleep(2 * time.Second)
	repo := "/repositories/fw-repo"
	got := counted.of(repo, repo+"/status")
	if diff := cmp.Diff(1, sumSuffix(got, "PATCH", repo)); diff != "" {
		t.Errorf("applies of the Repository: -want +got:\n%s\nall: %v", diff, got)
	}
	if diff := cmp.Diff(1, sumSuffix(got, "PUT", repo)); diff != "" {
		t.Errorf("writes of the Repository object by its controller (the create's result, with the finalizer): -want +got:\n%s\nall: %v", diff, got)
	}
	// The status write that ends the create already says Ready, as the
	// observation after it would: no version says Creating.
	created := createEnded[*storagev1alpha1.Repository](ctx, t, w)
	if c := created.GetCondition(xpv2.TypeReady); c.Status != corev1.ConditionTrue || created.Status.Phase != storagev1alpha1.RepositoryReady {
		t.Errorf("the status written with the create's result says Ready %s/%s, phase %s, not what the record's observation says", c.Status, c.Reason, created.Status.Phase)
	}
	// One status write ends the create, already Ready; the observation
	// after it finds the same and writes nothing, unless it read the
	// Repository from a cache one version behind (a conflict).
	if n := sumSuffix(got, "PUT", repo+"/status"); n == 0 || n > 2 {
		t.Errorf("status writes of the Repository on its way to Ready: %d, want 1 (2 after a stale read): %v", n, got)
	}
	r := &storagev1alpha1.Repository{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fw-repo"}, r); err != nil {
		t.Fatal(err)
	}
	if !meta.FinalizerExists(r, managed.FinalizerName) {
		t.Errorf("the Repository has no finalizer %q: %v", managed.FinalizerName, r.Finalizers)
	}
	for _, kind := range []string{"serviceaccounts", "roles", "rolebindings", "cronjobs"} {
		all := counted.of("")
		n := 0
		for k, v := range all {
			if strings.HasPrefix(k, "PATCH ") && strings.Contains(k, "/namespaces/"+ns+"/"+kind+"/") && strings.Contains(k, "fw-backup") {
				n += v
			}
		}
		if diff := cmp.Diff(1, n); diff != "" {
			t.Errorf("applies of the configuration's %s: -want +got:\n%s", kind, diff)
		}
	}

	// A Repository whose spec someone changed is applied again, as wanted.
	r.Spec.DeletionPolicy = storagev1alpha1.DeletionPolicyWipeOut
	if err := kube.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the Repository's changed spec was not applied back", func(ctx context.Context) (bool, string) {
		got := &storagev1alpha1.Repository{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(r), got); err != nil {
			return false, err.Error()
		}
		return got.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyWipeOut, string(got.Spec.DeletionPolicy)
	})
}
