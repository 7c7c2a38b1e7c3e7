package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	k8sresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/xfn"
	"github.com/stashplane/stashplane/internal/verify"
)

// composer stands in for Crossplane core composing Protections on the dev
// cluster, which runs no Crossplane core yet: it runs the function with
// the class a shipped Composition gives it, answers the function's
// requirements from the cluster (as core does, until they settle), hands
// it the observed composed resources, and applies what it desires with
// server-side apply. What it proves is that the objects the function
// composes are carried out by the provider and read back into the
// Protection; installing through core is a separate piece (docs/crossplane.md).
type composer struct {
	t     *testing.T
	kube  client.Client
	fn    *xfn.Function
	class *structpb.Struct
}

// newComposer reads the input of the function's step of a Composition,
// a path relative to the repository's root.
func newComposer(t *testing.T, kube client.Client, composition string) *composer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", composition))
	if err != nil {
		t.Fatal(err)
	}
	var comp struct {
		Spec struct {
			Pipeline []struct {
				FunctionRef struct {
					Name string `json:"name"`
				} `json:"functionRef"`
				Input map[string]any `json:"input"`
			} `json:"pipeline"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &comp); err != nil {
		t.Fatal(err)
	}
	var input map[string]any
	for _, step := range comp.Spec.Pipeline {
		if step.FunctionRef.Name == "stashplane-function-stashplane" {
			input = step.Input
		}
	}
	class, err := structpb.NewStruct(input)
	if err != nil {
		t.Fatal(err)
	}
	return &composer{t: t, kube: kube, fn: xfn.New(logging.NewNopLogger()), class: class}
}

// platformAndTeams makes the namespaces of the Protection tests: platform,
// holding the storage; team-a, which its usage policy admits by label; and
// team-b, which it does not. It returns that storage, local in
// storageDir, not yet created.
func platformAndTeams(t *testing.T, kube client.Client, storageDir string) *storagev1alpha1.BackupStorage {
	t.Helper()
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "platform"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"stashplane.io/backups": "allowed"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}},
	} {
		if err := kube.Create(context.Background(), ns); err != nil {
			t.Fatal(err)
		}
	}
	shared := localStorage("shared", "platform", storageDir, nil)
	shared.Spec.UsagePolicy = admitting("stashplane.io/backups", "allowed")
	return shared
}

// protectionXR is an app team's Protection of the Deployment "app".
func protectionXR(namespace, storage string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "platform.stashplane.io/v1alpha1", "kind": "Protection",
		"metadata": map[string]any{"name": "app", "namespace": namespace},
		"spec": map[string]any{
			"target":           map[string]any{"apiGroup": "apps", "kind": "Deployment", "name": "app"},
			"paths":            []any{"/var/lib/app"},
			"storage":          map[string]any{"name": storage, "namespace": "platform"},
			"encryptionSecret": "app-encryption",
		},
	}}
}

// composition is one pass of composing an XR.
type composition struct {
	rsp *fnv1.RunFunctionResponse
	// desired are the composed objects applied, by resource name.
	desired map[string]*unstructured.Unstructured
	// earlier are the names of the resources steps before the function's
	// composed: their readiness is those steps' to say.
	earlier map[string]bool
}

// fatal is the function's Fatal result, if any.
func (c composition) fatal() string {
	for _, r := range c.rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			return r.GetMessage()
		}
	}
	return ""
}

// ready is whether every resource the function composed is ready, which
// core requires for the XR's Ready.
func (c composition) ready() bool {
	for name, r := range c.rsp.GetDesired().GetResources() {
		if !c.earlier[name] && r.GetReady() != fnv1.Ready_READY_TRUE {
			return false
		}
	}
	return len(c.rsp.GetDesired().GetResources()) > 0
}

// condition is the XR's condition of a type, as "Status/Reason: message".
func (c composition) condition(typ string) string {
	for _, cd := range c.rsp.GetConditions() {
		if cd.GetType() == typ {
			return fmt.Sprintf("%s/%s: %s", strings.TrimPrefix(cd.GetStatus().String(), "STATUS_CONDITION_"), cd.GetReason(), cd.GetMessage())
		}
	}
	return ""
}

// status is a field of the XR's status the function wrote.
func (c composition) status(path ...string) string {
	u := &unstructured.Unstructured{}
	if err := resource.AsObject(c.rsp.GetDesired().GetComposite().GetResource(), u); err != nil {
		return ""
	}
	s, _, _ := unstructured.NestedString(u.Object, append([]string{"status"}, path...)...)
	return s
}

// compose runs one pass for xr, applying what the function desires unless
// its result is Fatal. observed are the objects applied by the pass
// before; earlier are the resources the steps before the function's
// desire, by name.
func (c *composer) compose(ctx context.Context, xr *unstructured.Unstructured, observed, earlier map[string]*unstructured.Unstructured) composition {
	c.t.Helper()
	composite, err := structpb.NewStruct(xr.Object)
	if err != nil {
		c.t.Fatal(err)
	}
	req := &fnv1.RunFunctionRequest{Input: c.class, Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: composite}, Resources: map[string]*fnv1.Resource{}},
		Desired: &fnv1.State{Resources: map[string]*fnv1.Resource{}}}
	for name, o := range earlier {
		s, err := structpb.NewStruct(o.Object)
		if err != nil {
			c.t.Fatal(err)
		}
		req.Desired.Resources[name] = &fnv1.Resource{Resource: s}
	}
	for name, o := range observed {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.kube.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
			continue
		}
		s, err := structpb.NewStruct(live.Object)
		if err != nil {
			c.t.Fatal(err)
		}
		req.Observed.Resources[name] = &fnv1.Resource{Resource: s}
	}
	var rsp *fnv1.RunFunctionResponse
	var answered *fnv1.Requirements
	// Core calls the function again while its requirements change.
	for i := 0; i < 5; i++ {
		if rsp, err = c.fn.RunFunction(ctx, req); err != nil {
			c.t.Fatal(err)
		}
		if answered != nil && proto.Equal(rsp.GetRequirements(), answered) {
			break
		}
		req.RequiredResources = map[string]*fnv1.Resources{}
		for name, sel := range rsp.GetRequirements().GetResources() {
			req.RequiredResources[name] = c.find(ctx, sel)
		}
		answered = rsp.GetRequirements()
	}
	out := composition{rsp: rsp, desired: map[string]*unstructured.Unstructured{}, earlier: map[string]bool{}}
	for name := range earlier {
		out.earlier[name] = true
	}
	if out.fatal() != "" {
		return out
	}
	for name, r := range rsp.GetDesired().GetResources() {
		u := &unstructured.Unstructured{}
		if err := resource.AsObject(r.GetResource(), u); err != nil {
			c.t.Fatal(err)
		}
		if err := c.kube.Patch(ctx, u, client.Apply, client.FieldOwner("stashplane-test-composer"), client.ForceOwnership); err != nil {
			c.t.Fatalf("cannot apply composed %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		out.desired[name] = u
	}
	return out
}

// find answers one requirement from the cluster.
func (c *composer) find(ctx context.Context, sel *fnv1.ResourceSelector) *fnv1.Resources {
	c.t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion(sel.GetApiVersion())
	list.SetKind(sel.GetKind() + "List")
	opts := []client.ListOption{client.InNamespace(sel.GetNamespace())}
	if m := sel.GetMatchLabels(); m != nil {
		opts = append(opts, client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(m.GetLabels())})
	}
	if err := c.kube.List(ctx, list, opts...); err != nil {
		c.t.Fatalf("cannot list %s: %v", sel.GetKind(), err)
	}
	out := &fnv1.Resources{}
	for _, u := range list.Items {
		if n := sel.GetMatchName(); n != "" && u.GetName() != n {
			continue
		}
		s, err := structpb.NewStruct(u.Object)
		if err != nil {
			c.t.Fatal(err)
		}
		out.Items = append(out.Items, &fnv1.Resource{Resource: s})
	}
	return out
}

// TestProtectionComposed is item 4 of the Crossplane issue short of core:
// app teams' Protections, composed by function-stashplane with the class
// compositions/protection-hourly-verified-daily.yaml gives it, against the
// provider holding only the package's rules.
//
//   - team-a, which the platform's storage admits by label: the composed
//     configuration becomes Ready and backs up at once, the composed
//     verifier verifies the newest Snapshot, and the Protection shows it
//     Verified with its restore time, Ready;
//   - team-b, which the storage does not admit: the Protection is not
//     Ready, says why, and no Job runs there;
//   - a Protection naming a storage that does not exist is a Fatal result
//     naming spec.storage.name, and nothing is composed;
//   - deleting what a Protection composed keeps its Repository and the
//     backed-up data (the class's deletionPolicy Retain).
func TestProtectionComposed(t *testing.T) {
	t.Parallel()
	kube := withPackageProvider(t, &corev1alpha1.BackupConfigurationList{}, &corev1alpha1.BackupVerificationSessionList{}, &storagev1alpha1.SnapshotList{})
	ctx := context.Background()
	storageDir, data := storageDir(t), t.TempDir()
	generate(t, data, 40, 21)
	shared := platformAndTeams(t, kube, storageDir)
	shared.Spec.DeletionPolicy = storagev1alpha1.DeletionPolicyDelete
	objs := []client.Object{shared}
	for _, ns := range []string{"team-a", "team-b"} {
		app := appWithHostDir("app", data).(*appsv1.Deployment)
		app.Namespace = ns
		objs = append(objs, app, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-encryption", Namespace: ns}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte("team-password")}})
	}
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	c := newComposer(t, kube, "compositions/protection-hourly-verified-daily.yaml")

	// team-a: composed, Ready, backed up at once.
	xrA := protectionXR("team-a", "shared")
	var passA composition
	poll(t, 3*time.Minute, "team-a's Protection did not become Ready", func(ctx context.Context) (bool, error) {
		passA = c.compose(ctx, xrA, passA.desired, nil)
		if f := passA.fatal(); f != "" {
			return false, fmt.Errorf("fatal result: %s", f)
		}
		return passA.ready(), nil
	})
	if got := passA.condition("BackupReady"); got != "TRUE/Ready: " {
		t.Errorf("BackupReady of a Ready Protection: %q", got)
	}
	var snap string
	poll(t, 3*time.Minute, "team-a's first backup did not succeed", func(ctx context.Context) (bool, error) {
		passA = c.compose(ctx, xrA, passA.desired, nil)
		snap = passA.status("lastSnapshot", "name")
		return passA.status("lastSnapshot", "phase") == string(storagev1alpha1.SnapshotSucceeded), nil
	})
	snap = verifyNewest(t, kube, "team-a", "app-verifier")
	passA = c.compose(ctx, xrA, passA.desired, nil)
	if passA.status("lastSnapshot", "name") == snap {
		if got := passA.condition("Verified"); !strings.HasPrefix(got, "TRUE/Verified: snapshot \""+snap+"\" restored in ") ||
			passA.status("lastSnapshot", "verification") != string(storagev1alpha1.SnapshotVerified) || passA.status("lastSnapshot", "restoreDuration") == "" || !passA.ready() {
			t.Errorf("a verified Protection: Verified %q, lastSnapshot %s %q restored in %q, ready %t", got, snap,
				passA.status("lastSnapshot", "verification"), passA.status("lastSnapshot", "restoreDuration"), passA.ready())
		}
	} else {
		newerNotVerified(t, passA, snap)
	}
	t.Logf("team-a's Protection: snapshot %s %s, restored in %s", snap, passA.status("lastSnapshot", "verification"), passA.status("lastSnapshot", "restoreDuration"))

	// team-b: refused by the storage's usage policy, and says so.
	xrB := protectionXR("team-b", "shared")
	var passB composition
	poll(t, 2*time.Minute, "team-b's Protection did not say the storage refuses it", func(ctx context.Context) (bool, error) {
		passB = c.compose(ctx, xrB, passB.desired, nil)
		return strings.Contains(passB.condition("BackupReady"), `does not match namespace "team-b"`), nil
	})
	if passB.ready() || !strings.HasPrefix(passB.condition("BackupReady"), "FALSE/") {
		t.Errorf("team-b's Protection: ready %t, BackupReady %q", passB.ready(), passB.condition("BackupReady"))
	}
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("team-b")); err != nil || len(jobs.Items) > 0 {
		t.Errorf("team-b, which the storage refuses, has %d Jobs (%v)", len(jobs.Items), err)
	}

	// A storage that does not exist: Fatal, naming the field, nothing composed.
	xrC := protectionXR("team-a", "no-such-storage")
	xrC.SetName("other")
	passC := c.compose(ctx, xrC, nil, nil)
	if f := passC.fatal(); !strings.HasPrefix(f, "spec.storage.name: backupstorage platform/no-such-storage does not exist") || len(passC.desired) > 0 {
		t.Errorf("a Protection of a missing storage: fatal %q, %d objects composed", f, len(passC.desired))
	}

	// Deleting the Protection deletes what it composed; the backups stay.
	for _, u := range passA.desired {
		if err := kube.Delete(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 2*time.Minute, "team-a's composed configuration was not deleted", func(ctx context.Context) (bool, error) {
		err := kube.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "app"}, &corev1alpha1.BackupConfiguration{})
		return client.IgnoreNotFound(err) == nil && err != nil, nil
	})
	repo := &storagev1alpha1.Repository{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "app"}, repo); err != nil {
		t.Errorf("the Repository of a deleted Protection whose class retains backups: %v", err)
	}
	if _, err := os.Stat(filepath.Join(storageDir, "backups", "team-a", "app")); err != nil {
		t.Errorf("the backed-up data of a deleted Protection: %v", err)
	}
}

// TestProtectStep is item 5 of the Crossplane issue short of core: the
// example Composition of a platform team's own API
// (examples/crossplane/protect), whose first step composes a StatefulSet
// and whose protect step adds backup and verification. The test applies
// that first step's StatefulSet as function-patch-and-transform would
// (its base, named by its patch, with busybox for redis, which the dev
// cluster does not run), then composes the protect step: the store is
// backed up, its newest backup verified, and the composite resource's
// conditions say so.
func TestProtectStep(t *testing.T) {
	t.Parallel()
	kube := withPackageProvider(t, &corev1alpha1.BackupConfigurationList{}, &corev1alpha1.BackupVerificationSessionList{}, &storagev1alpha1.SnapshotList{})
	ctx := context.Background()
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "platform"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"stashplane.io/backups": "allowed"}}},
	} {
		if err := kube.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	shared := localStorage("shared", "platform", storageDir(t), nil)
	shared.Spec.UsagePolicy = admitting("stashplane.io/backups", "allowed")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sessions-backups", Namespace: "team-a"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte("store-password")}}
	for _, o := range []client.Object{shared, secret} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// The first step's StatefulSet, from the example's base.
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "crossplane", "protect", "composition.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var comp struct {
		Spec struct {
			Pipeline []struct {
				Input struct {
					Resources []struct {
						Name string         `json:"name"`
						Base map[string]any `json:"base"`
					} `json:"resources"`
				} `json:"input"`
			} `json:"pipeline"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &comp); err != nil {
		t.Fatal(err)
	}
	base := comp.Spec.Pipeline[0].Input.Resources[0]
	sts := &appsv1.StatefulSet{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(base.Base, sts); err != nil {
		t.Fatal(err)
	}
	sts.Name, sts.Namespace = "sessions-store", "team-a"
	sts.Spec.Template.Spec.Containers[0].Image, sts.Spec.Template.Spec.Containers[0].Command, sts.Spec.Template.Spec.Containers[0].Args = "busybox", []string{"sleep", "3600"}, nil
	sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = k8sresource.MustParse("16Mi")
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(sts)
	if err != nil {
		t.Fatal(err)
	}
	store := &unstructured.Unstructured{Object: u}
	store.SetAPIVersion("apps/v1")
	store.SetKind("StatefulSet")
	delete(store.Object, "status")
	if err := kube.Patch(ctx, store.DeepCopy(), client.Apply, client.FieldOwner("stashplane-test-composer"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	generate(t, claimDirIn(t, kube, "team-a", "data-sessions-store-0"), 30, 5)

	xr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.stashplane.io/v1alpha1", "kind": "KeyValueStore",
		"metadata": map[string]any{"name": "sessions", "namespace": "team-a"},
		"spec":     map[string]any{"storageSize": "2Gi", "backupSecretName": "sessions-backups"},
	}}
	c := newComposer(t, kube, filepath.Join("examples", "crossplane", "protect", "composition.yaml"))
	earlier := map[string]*unstructured.Unstructured{base.Name: store}
	var pass composition
	defer func() {
		if t.Failed() {
			t.Logf("the KeyValueStore's last conditions: BackupReady %q, Verified %q", pass.condition("BackupReady"), pass.condition("Verified"))
		}
	}()
	poll(t, 3*time.Minute, "the store's backup and verifier did not become ready", func(ctx context.Context) (bool, error) {
		pass = c.compose(ctx, xr, pass.desired, earlier)
		if f := pass.fatal(); f != "" {
			return false, fmt.Errorf("fatal result: %s", f)
		}
		return pass.ready(), nil
	})
	if _, ok := pass.desired["store-backup"]; !ok {
		t.Fatalf("the protect step composed %v, want store-backup and store-verifier", slices.Sorted(maps.Keys(pass.desired)))
	}
	var snap string
	poll(t, 3*time.Minute, "the store's first backup did not succeed", func(ctx context.Context) (bool, error) {
		list := &storagev1alpha1.SnapshotList{}
		if err := kube.List(ctx, list, client.InNamespace("team-a"), client.MatchingLabels{storagev1alpha1.LabelRepository: "sessions-store"}); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		snap = list.Items[0].Name
		return list.Items[0].Status.Phase == storagev1alpha1.SnapshotSucceeded, nil
	})
	snap = verifyNewest(t, kube, "team-a", "sessions-store-verifier")
	pass = c.compose(ctx, xr, pass.desired, earlier)
	if got := pass.condition("Verified"); !strings.HasPrefix(got, "TRUE/Verified: StatefulSet sessions-store: snapshot \""+snap+"\"") {
		newerNotVerified(t, pass, snap)
	}
	if got := pass.condition("BackupReady"); got != "TRUE/Ready: " {
		t.Errorf("BackupReady of the protected store: %q", got)
	}
	t.Logf("KeyValueStore team-a/sessions: %s", pass.condition("Verified"))
}

// verifyNewest verifies the newest Snapshot of a verifier's repository
// now, waits for its verdict, and returns its name; a verdict other than
// Verified fails the test.
func verifyNewest(t *testing.T, kube client.Client, ns, verifier string) string {
	t.Helper()
	ctx := context.Background()
	started, err := verify.Now(ctx, kube, ns, verifier, "", time.Now())
	if err != nil || len(started) != 1 {
		t.Fatalf("verify.Now on the composed verifier %s/%s: %d sessions, %v", ns, verifier, len(started), err)
	}
	name := started[0].Spec.Snapshot
	s := &storagev1alpha1.Snapshot{}
	poll(t, 3*time.Minute, "snapshot "+name+" got no verdict", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return false, nil
		}
		return s.Status.VerificationStatus == storagev1alpha1.SnapshotVerified || s.Status.VerificationStatus == storagev1alpha1.SnapshotVerificationFailed, nil
	})
	if s.Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Fatalf("snapshot %s: verdict %s, want Verified", name, s.Status.VerificationStatus)
	}
	return name
}

// newerNotVerified accepts a Verified condition that is not True only
// because a scheduled backup made a newer Snapshot after snap was
// verified: it must say that newer one is not verified yet.
func newerNotVerified(t *testing.T, c composition, snap string) {
	t.Helper()
	got := c.condition("Verified")
	if !strings.HasPrefix(got, "UNKNOWN/NotVerifiedYet") || strings.Contains(got, `"`+snap+`"`) {
		t.Errorf("after snapshot %s was verified, Verified says %q", snap, got)
		return
	}
	t.Logf("a scheduled backup overtook verified snapshot %s: %s", snap, got)
}
