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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	snapshotcontroller "github.com/stashplane/stashplane/controllers/snapshot"
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

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The Snapshot controller, against a real API server and an S3 server,
// sends the API server only the writes that change something: recording a
// new Snapshot takes one write of the object (its finalizer goes with the
// mark of a pending create), one for the create's result and the status
// writes of its conditions; then polls that find the record as it was
// write nothing. Ten thousand Snapshots arriving at once are what the API
// server spends its time on (docs/scale.md).
func TestSnapshotRecordedWithFewWrites(t *testing.T) {
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "writes")
	counted := &writeCounter{n: map[string]int{}}
	cfg := rest.CopyConfig(restConfig)
	cfg.Wrap(counted.wrap)
	runControllerOn(t, cfg, func(mgr ctrl.Manager) error {
		if err := mgr.GetFieldIndexer().IndexField(context.Background(), &storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotRepositoryField, storagev1alpha1.SnapshotRepository); err != nil {
			return err
		}
		opener := &storagekind.Opener{Client: mgr.GetClient()}
		return snapshotcontroller.Setup(mgr, snapshotcontroller.Options{Log: mgr.GetLogger(), Opener: opener, Reason: storagekind.Classify, PollInterval: 500 * time.Millisecond})
	})
	ctx := testContext(t)
	const ns = testNamespace
	bs, repo, snap := s3Chain(t, s3, "writes", "few-writes", "few-writes-app", "")
	// Every version of the Snapshot, to see what the write that ends its
	// create holds.
	wc, err := client.NewWithWatch(restConfig, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &storagev1alpha1.SnapshotList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": snap.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
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
	// The status write that ends the create (Ready: Creating) already
	// says the record is in the storage: it does not wait for the next
	// observation.
	var creating *storagev1alpha1.Snapshot
	for creating == nil {
		select {
		case e := <-w.ResultChan():
			if s, ok := e.Object.(*storagev1alpha1.Snapshot); ok && s.GetCondition(xpv2.TypeReady).Reason == xpv2.ReasonCreating {
				creating = s
			}
		case <-ctx.Done():
			t.Fatal("no version of the Snapshot said it was being created")
		}
	}
	if c := creating.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded); c.Status != corev1.ConditionTrue {
		t.Errorf("the status written with the create's result does not say the record is written: %+v", creating.Status.Conditions)
	}
	// Let the reconciles the last writes set off settle, then count what
	// six polls send.
	time.Sleep(2 * time.Second)
	object := "/snapshots/" + snap.Name
	status := object + "/status"
	recorded := counted.of(object, status)
	time.Sleep(3 * time.Second)
	polled := counted.of(object, status)

	if diff := cmp.Diff(2, sumSuffix(recorded, "PUT", object)); diff != "" {
		t.Errorf("writes of the Snapshot object while it was recorded (the create marked pending with the finalizer, then its result): -want +got:\n%s\nall: %v", diff, recorded)
	}
	if diff := cmp.Diff(recorded, polled); diff != "" {
		t.Errorf("polls of a recorded Snapshot wrote to the API server: -before +after:\n%s", diff)
	}
	if got := sumSuffix(recorded, "PUT", status); got == 0 {
		t.Errorf("no status write was counted while the Snapshot was recorded; the counter counts nothing: %v", recorded)
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
