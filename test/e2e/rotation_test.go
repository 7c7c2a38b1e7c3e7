package e2e

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
	"github.com/stashplane/stashplane/internal/trigger"
)

// A platform team rotates the credentials of an S3 storage that an app
// team of another namespace backs up into. Once the server takes only the
// new keys, a session run before the storage's Secret is updated fails,
// its Snapshot Failed with a reason and no restic snapshot, and the
// storage says it cannot be reached; once the Secret holds the new keys,
// the app team's copy of it follows and the next session succeeds, with
// no change in the app team's namespace.
func TestStorageCredentialsRotated(t *testing.T) {
	t.Parallel()
	secretReads := &secretRequests{}
	kube, cluster := withProviderCluster(t, asProviderServiceAccount(packageRules(t)), recordingSecretRequests(secretReads))
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config(), "team-a")
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	const platform, team = "platform", "team-a"
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "backups")
	data := t.TempDir()
	generate(t, data, 40, 43)
	remote := s3Storage("shared", s3.Endpoint, "backups")
	remote.Namespace, remote.Spec.UsagePolicy = platform, admitting("backups", platform)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Namespace = team
	bc.Spec.Backends[0].StorageRef = &storagev1alpha1.ObjectReference{Name: "shared", Namespace: platform}
	app := appWithHostDir("app", data)
	app.SetNamespace(team)
	creds := func() map[string][]byte {
		return map[string][]byte{storagev1alpha1.SecretKeyAWSAccessKeyID: []byte(s3.AccessKey), storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey)}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: platform}, Data: creds()}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: platform}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: team, Labels: map[string]string{"backups": platform}}},
		secret, remote, app, bc,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: team}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	outcome := func(name string) *storagev1alpha1.Snapshot {
		t.Helper()
		snap := &storagev1alpha1.Snapshot{}
		poll(t, 4*time.Minute, "backupsession "+name+" did not finish", func(ctx context.Context) (bool, error) {
			s := &corev1alpha1.BackupSession{}
			if err := kube.Get(ctx, client.ObjectKey{Namespace: team, Name: name}, s); err != nil {
				return false, nil
			}
			if err := kube.Get(ctx, client.ObjectKey{Namespace: team, Name: "app-" + name}, snap); err != nil {
				return false, nil
			}
			return s.Status.Phase == corev1alpha1.BackupSessionSucceeded || s.Status.Phase == corev1alpha1.BackupSessionFailed, nil
		})
		return snap
	}
	var first string
	poll(t, 4*time.Minute, "the first backup did not start", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace(team)); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		first = list.Items[0].Name
		return true, nil
	})
	if snap := outcome(first); snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Fatalf("first backup with the first keys: snapshot %s", snap.Status.Phase)
	}

	// The server now takes only new keys; the Secret still holds the old.
	s3.RotateCredentials(t)
	stale, err := trigger.Create(ctx, kube, bc, "nightly", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	snap := outcome(stale.Name)
	comp := snap.Status.Components[storagev1alpha1.ComponentDump]
	if snap.Status.Phase != storagev1alpha1.SnapshotFailed || !strings.Contains(comp.Error, "PermissionDenied") || (len(comp.ResticStats) > 0 && comp.ResticStats[0].Summary != nil) {
		t.Errorf("a backup with keys the server no longer takes: snapshot %s, component %+v; want Failed with a reason and no restic snapshot", snap.Status.Phase, comp)
	}
	t.Logf("with the old keys: %s", comp.Error)

	// The platform team updates the Secret: the app team's copy follows
	// and the next session succeeds.
	secret.Data = creds()
	if err := kube.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the app team's copy of the storage Secret did not follow", func(ctx context.Context) (bool, error) {
		c := &corev1.Secret{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: team, Name: naming.ConfigurationStorageSecret(bc.Name, platform, "shared")}, c); err != nil {
			return false, nil
		}
		return bytes.Equal(c.Data[storagev1alpha1.SecretKeyAWSAccessKeyID], []byte(s3.AccessKey)), nil
	})
	fresh, err := trigger.Create(ctx, kube, bc, "nightly", time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if snap := outcome(fresh.Name); snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Errorf("a backup after the Secret was updated: snapshot %s, components %+v", snap.Status.Phase, snap.Status.Components)
	}
	// All of it while the provider held the cluster's Secrets, the
	// accounts, Roles, bindings and CronJobs it composes, and the
	// workloads (but StatefulSets, whose claim templates it reads) and
	// namespaces, as metadata: it watched them only so, and read the data
	// of the Secrets it uses one by one.
	whole, metadata, gets := secretReads.seen()
	if len(whole) > 0 {
		t.Errorf("the provider watched whole objects of kinds it holds as metadata; a cache then holds every one of the cluster's: %v", whole)
	}
	if metadata["secrets"] == 0 || gets == 0 {
		t.Errorf("the provider made %d watches of Secrets' metadata and %d reads of one Secret; want some of each", metadata["secrets"], gets)
	}
	// Of the cluster's Jobs and pods, it watched only those it and the
	// CLI made.
	unselected, selected := secretReads.podWatches()
	if len(unselected) > 0 || selected["pods"] == 0 || selected["jobs"] == 0 {
		t.Errorf("the provider made these watches by %s=true, %v, and these of other Jobs and pods, whose cache then holds every one of the cluster's: %v",
			corev1alpha1.LabelWatched, selected, unselected)
	}
}

// heldAsMetadata are the resources the provider's cache holds as metadata
// only.
var heldAsMetadata = []string{"secrets", "serviceaccounts", "roles", "rolebindings", "cronjobs",
	"deployments", "daemonsets", "persistentvolumeclaims", "namespaces"}

// secretRequests records the provider's watches of the resources it holds
// as metadata, its reads of one Secret, and its watches of pods.
type secretRequests struct {
	mu sync.Mutex
	// whole are the watches of whole objects, which only a cache (an
	// informer) makes. A list by label, past the cache, is not one.
	whole []string
	// metadata counts the watches of metadata, by resource.
	metadata map[string]int
	// gets counts the reads of one Secret.
	gets int
	// podsUnselected are the watches of pods and Jobs not selected by
	// corev1alpha1.LabelWatched; podsSelected counts those selected, by
	// resource.
	podsUnselected []string
	podsSelected   map[string]int
}

func (r *secretRequests) podWatches() ([]string, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.podsUnselected), maps.Clone(r.podsSelected)
}

func (r *secretRequests) seen() ([]string, map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.whole), maps.Clone(r.metadata), r.gets
}

// recordingSecretRequests records the provider's reads of Secrets in r.
func recordingSecretRequests(r *secretRequests) providerOption {
	return func(_ *testing.T, _ client.Client, cfg *rest.Config, _ *provider.Options) {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(req *http.Request) (*http.Response, error) {
				res, name := resourceOf(req.URL.Path)
				watch := req.Method == http.MethodGet && req.URL.Query().Get("watch") == "true"
				if watch && (res == "pods" || res == "jobs") {
					r.mu.Lock()
					if req.URL.Query().Get("labelSelector") == corev1alpha1.LabelWatched+"=true" {
						if r.podsSelected == nil {
							r.podsSelected = map[string]int{}
						}
						r.podsSelected[res]++
					} else {
						r.podsUnselected = append(r.podsUnselected, req.URL.String())
					}
					r.mu.Unlock()
				}
				if req.Method == http.MethodGet && slices.Contains(heldAsMetadata, res) {
					r.mu.Lock()
					switch {
					case name != "":
						if res == "secrets" {
							r.gets++
						}
					case !watch:
					case strings.Contains(req.Header.Get("Accept"), "as=PartialObjectMetadata"):
						if r.metadata == nil {
							r.metadata = map[string]int{}
						}
						r.metadata[res]++
					default:
						r.whole = append(r.whole, req.URL.String())
					}
					r.mu.Unlock()
				}
				return rt.RoundTrip(req)
			})
		})
	}
}

// resourceOf is the resource a request path of the API server names and,
// for a request of one object, the object's name.
func resourceOf(path string) (resource, name string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return "", ""
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	switch len(parts) {
	case 0:
		return "", ""
	case 1:
		return parts[0], ""
	}
	return parts[0], parts[1]
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
