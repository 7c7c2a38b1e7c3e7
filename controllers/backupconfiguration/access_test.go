package backupconfiguration

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, corev1alpha1.AddToScheme, storagev1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// platformObjects are, in namespace "platform", an S3 storage "s3" with
// Secret "creds", a host path storage "disk" and a claim storage "claim",
// all admitting namespaces labelled backup=platform, which "team-a" is
// and "team-b" is not; and an S3 storage "mine" in team-a.
func platformObjects() []client.Object {
	policy := &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{
		From: ptr.To(storagev1alpha1.NamespacesFromSelector), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"backup": "platform"}},
	}}
	storage := func(ns, name string, b storagev1alpha1.Backend) *storagev1alpha1.BackupStorage {
		st := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		st.Spec.Storage, st.Spec.UsagePolicy = b, policy
		st.Status.Phase = storagev1alpha1.BackupStorageReady
		return st
	}
	s3 := func(secret string) storagev1alpha1.Backend {
		return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: secret}}
	}
	local := func(v corev1.VolumeSource) storagev1alpha1.Backend {
		return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: "/storage", VolumeSource: v}}
	}
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"backup": "platform"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}},
		storage("platform", "s3", s3("creds")),
		storage("platform", "disk", local(corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv"}})),
		storage("platform", "claim", local(corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"}})),
		asBrokered(storage("platform", "brokered-claim", local(corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"}}))),
		storage("team-a", "mine", s3("own-creds")),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "platform"}, Data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("key"), "AWS_SECRET_ACCESS_KEY": []byte("sec")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "platform"}, Data: map[string][]byte{"x": []byte("y")}},
	}
}

// asBrokered sets a storage's access to Broker.
func asBrokered(st *storagev1alpha1.BackupStorage) *storagev1alpha1.BackupStorage {
	st.Spec.Access = storagev1alpha1.AccessBroker
	return st
}

func backends(refs ...storagev1alpha1.ObjectReference) []corev1alpha1.BackendReference {
	out := make([]corev1alpha1.BackendReference, 0, len(refs))
	for _, r := range refs {
		out = append(out, corev1alpha1.BackendReference{Name: r.Name, StorageRef: &r})
	}
	return out
}

func TestStorageProblemFromAnotherNamespace(t *testing.T) {
	cases := map[string]struct {
		reason string
		ns     string
		ref    storagev1alpha1.ObjectReference
		want   string
	}{
		"Admitted": {reason: "A namespace the storage's selector admits may back up into it.",
			ns: "team-a", ref: storagev1alpha1.ObjectReference{Name: "s3", Namespace: "platform"}},
		"HostPath": {reason: "A host path mounts from any namespace.",
			ns: "team-a", ref: storagev1alpha1.ObjectReference{Name: "disk", Namespace: "platform"}},
		"NotAdmitted": {reason: "A namespace the selector does not match is refused, naming the storage and why.",
			ns: "team-b", ref: storagev1alpha1.ObjectReference{Name: "s3", Namespace: "platform"},
			want: `backupstorage platform/s3 may not be used from namespace "team-b": its usagePolicy selector does not match namespace "team-b"`},
		"Claim": {reason: "A claim of another namespace cannot be mounted by the backup Jobs, so the configuration is refused before any Job.",
			ns: "team-a", ref: storagev1alpha1.ObjectReference{Name: "claim", Namespace: "platform"},
			want: `backupstorage platform/claim keeps its data on claim "backups", which backup jobs in namespace "team-a" cannot mount; set the storage's spec.access to Broker to serve them through its broker`},
		"BrokeredClaim": {reason: "A brokered storage serves its claim to Jobs of other namespaces through its broker, so nothing is refused.",
			ns: "team-a", ref: storagev1alpha1.ObjectReference{Name: "brokered-claim", Namespace: "platform"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(platformObjects()...).Build()
			bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: tc.ns}}
			bc.Spec.Backends = backends(tc.ref)
			msg, err := storageProblem(context.Background(), &input{kube: kube, bc: bc, status: &bc.Status}, bc.Spec.Backends[0])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, msg); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// accessState lists the Roles, RoleBindings (with their rules and
// subjects) and Secrets a configuration's labels select, and its
// finalizers.
func accessState(t *testing.T, kube client.Client, bc *corev1alpha1.BackupConfiguration) []string {
	t.Helper()
	ctx := context.Background()
	roles, bindings, secrets := &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &corev1.SecretList{}
	for _, l := range []client.ObjectList{roles, bindings, secrets} {
		if err := kube.List(ctx, l, client.MatchingLabels(remoteLabels(bc))); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, r := range roles.Items {
		for _, rule := range r.Rules {
			out = append(out, "Role "+r.Namespace+"/"+r.Name+" may get "+rule.Resources[0]+" "+rule.ResourceNames[0])
		}
	}
	for _, b := range bindings.Items {
		for _, s := range b.Subjects {
			out = append(out, "RoleBinding "+b.Namespace+"/"+b.Name+" binds "+s.Namespace+"/"+s.Name)
		}
	}
	for _, s := range secrets.Items {
		owned := metav1.IsControlledBy(&s, bc)
		out = append(out, "Secret "+s.Namespace+"/"+s.Name+" keys "+keys(s.Data)+map[bool]string{true: " owned", false: " not owned"}[owned])
	}
	got := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), got); err != nil {
		t.Fatal(err)
	}
	for _, f := range got.Finalizers {
		out = append(out, "finalizer "+f)
	}
	sort.Strings(out)
	return out
}

func keys(m map[string][]byte) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	s := ""
	for _, k := range out {
		s += k + ","
	}
	return s
}

func TestRemoteAccess(t *testing.T) {
	s3 := storagev1alpha1.ObjectReference{Name: "s3", Namespace: "platform"}
	disk := storagev1alpha1.ObjectReference{Name: "disk", Namespace: "platform"}
	mine := storagev1alpha1.ObjectReference{Name: "mine"}
	// The configuration moves through these backends in order, on one
	// cluster: what a step no longer needs must be gone after it.
	// change edits a platform storage before a step.
	type change func(ctx context.Context, kube client.Client) error
	storageEdit := func(name string, edit func(*storagev1alpha1.BackupStorage)) change {
		return func(ctx context.Context, kube client.Client) error {
			st := &storagev1alpha1.BackupStorage{}
			if err := kube.Get(ctx, client.ObjectKey{Namespace: "platform", Name: name}, st); err != nil {
				return err
			}
			edit(st)
			return kube.Update(ctx, st)
		}
	}
	steps := []struct {
		reason   string
		change   change
		backends []corev1alpha1.BackendReference
		want     []string
	}{
		{reason: "A storage of its own namespace needs nothing outside it, and no finalizer.",
			backends: backends(mine)},
		{reason: "Storages of another namespace are granted by name in one Role there, bound to the configuration's account; only the S3 storage's credentials are copied, owned by the configuration.",
			backends: backends(mine, s3, disk),
			want: []string{
				"Role platform/team-a.app-backup may get backupstorages disk",
				"Role platform/team-a.app-backup may get backupstorages s3",
				"RoleBinding platform/team-a.app-backup binds team-a/app-stashplane",
				"Secret team-a/app.platform.s3-storage keys AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY, owned",
				"finalizer " + finalizer,
			}},
		{reason: "A storage that is not ready (unreachable, its credentials being rotated) keeps its grant and its copied Secret: the next run reads it once it is back.",
			change:   storageEdit("s3", func(st *storagev1alpha1.BackupStorage) { st.Status.Phase = storagev1alpha1.BackupStorageNotReady }),
			backends: backends(mine, s3, disk),
			want: []string{
				"Role platform/team-a.app-backup may get backupstorages disk",
				"Role platform/team-a.app-backup may get backupstorages s3",
				"RoleBinding platform/team-a.app-backup binds team-a/app-stashplane",
				"Secret team-a/app.platform.s3-storage keys AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY, owned",
				"finalizer " + finalizer,
			}},
		{reason: "A storage that no longer admits the namespace loses its grant and its copied Secret.",
			change:   storageEdit("s3", func(st *storagev1alpha1.BackupStorage) { st.Spec.UsagePolicy = nil }),
			backends: backends(mine, s3, disk),
			want: []string{
				"Role platform/team-a.app-backup may get backupstorages disk",
				"RoleBinding platform/team-a.app-backup binds team-a/app-stashplane",
				"finalizer " + finalizer,
			}},
		{reason: "A backend dropped takes its grant and its copied Secret with it.",
			change: storageEdit("s3", func(st *storagev1alpha1.BackupStorage) {
				st.Spec.UsagePolicy = platformObjects()[2].(*storagev1alpha1.BackupStorage).Spec.UsagePolicy
			}),
			backends: backends(mine, disk),
			want: []string{
				"Role platform/team-a.app-backup may get backupstorages disk",
				"RoleBinding platform/team-a.app-backup binds team-a/app-stashplane",
				"finalizer " + finalizer,
			}},
		{reason: "Back to its own namespace only: everything outside goes, and so does the finalizer.",
			backends: backends(mine)},
	}
	bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team-a", UID: "uid-app"}}
	kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(append(platformObjects(), bc)...).Build()
	s := &scheduler{kube: kube, api: kube, log: logr.Discard(), clock: clocktesting.NewFakeClock(time.Unix(0, 0)), applied: newApplied()}
	ctx := context.Background()
	for i, step := range steps {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), bc); err != nil {
			t.Fatal(err)
		}
		if step.change != nil {
			if err := step.change(ctx, kube); err != nil {
				t.Fatal(err)
			}
		}
		bc.Spec.Backends = step.backends
		if err := s.ensureRemoteAccess(ctx, bc); err != nil {
			t.Fatalf("step %d: ensureRemoteAccess(): %v", i, err)
		}
		if diff := cmp.Diff(step.want, accessState(t, kube, bc)); diff != "" {
			t.Errorf("step %d: %s\n-want +got:\n%s", i, step.reason, diff)
		}
	}

	// Deleting revokes all of it.
	bc.Spec.Backends = backends(s3)
	if err := s.ensureRemoteAccess(ctx, bc); err != nil {
		t.Fatal(err)
	}
	if err := s.revokeRemoteAccess(ctx, bc); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string(nil), accessState(t, kube, bc)); diff != "" {
		t.Errorf("revokeRemoteAccess() left, -want +got:\n%s", diff)
	}
}

func TestUsersOfSecret(t *testing.T) {
	cfg := func(ns, name string, refs ...storagev1alpha1.ObjectReference) *corev1alpha1.BackupConfiguration {
		bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		bc.Spec.Backends = backends(refs...)
		return bc
	}
	objs := append(platformObjects(),
		cfg("team-a", "uses-s3", storagev1alpha1.ObjectReference{Name: "s3", Namespace: "platform"}),
		cfg("team-a", "uses-disk", storagev1alpha1.ObjectReference{Name: "disk", Namespace: "platform"}),
		cfg("platform", "beside-it", storagev1alpha1.ObjectReference{Name: "s3"}),
	)
	kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).Build()
	s := &scheduler{kube: kube, api: kube, log: logr.Discard(), clock: clocktesting.NewFakeClock(time.Unix(0, 0)), applied: newApplied()}
	cases := map[string]struct {
		reason string
		secret client.Object
		want   []reconcile.Request
	}{
		"Credentials": {reason: "A storage's Secret reaches the configurations of other namespaces that copy it.",
			secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "platform"}},
			want:   []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: "team-a", Name: "uses-s3"}}}},
		"Unrelated": {reason: "A Secret no storage names reaches no configuration.",
			secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "platform"}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, s.usersOfSecret(context.Background(), tc.secret)); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRetentionPolicyOfBackend(t *testing.T) {
	policy := func(ns, name string, from storagev1alpha1.FromNamespaces, period string) client.Object {
		rp := &storagev1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		rp.Spec.UsagePolicy = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(from)}}
		rp.Spec.MaxRetentionPeriod = storagev1alpha1.RetentionPeriod(period)
		return rp
	}
	cases := map[string]struct {
		reason string
		ref    *storagev1alpha1.ObjectReference
		want   string
		status *corev1alpha1.RetentionPolicyStatus
	}{
		"NoneNamed": {reason: "A backend that names no policy has nothing to check (the namespace's default applies)."},
		"Admitted": {reason: "A policy of another namespace that admits all namespaces may be used.",
			ref:    &storagev1alpha1.ObjectReference{Namespace: "platform", Name: "all"},
			status: &corev1alpha1.RetentionPolicyStatus{Found: ptr.To(true)}},
		"SameNamespace": {reason: "A policy of the configuration's own namespace may be used by default.",
			ref:    &storagev1alpha1.ObjectReference{Name: "own"},
			status: &corev1alpha1.RetentionPolicyStatus{Found: ptr.To(true)}},
		"Missing": {reason: "A policy that does not exist holds the configuration back, naming the field.",
			ref:    &storagev1alpha1.ObjectReference{Name: "nope"},
			want:   `spec.backends[0].retentionPolicy: retentionpolicy team-a/nope not found`,
			status: &corev1alpha1.RetentionPolicyStatus{Found: ptr.To(false), Reason: `spec.backends[0].retentionPolicy: retentionpolicy team-a/nope not found`}},
		"NotAdmitted": {reason: "A policy whose usagePolicy does not admit the configuration's namespace holds it back, naming the field and why.",
			ref:    &storagev1alpha1.ObjectReference{Namespace: "platform", Name: "same"},
			want:   `spec.backends[0].retentionPolicy: retentionpolicy platform/same may not be used from namespace "team-a": its usagePolicy allows only namespace "platform"`,
			status: &corev1alpha1.RetentionPolicyStatus{Found: ptr.To(false), Reason: `spec.backends[0].retentionPolicy: retentionpolicy platform/same may not be used from namespace "team-a": its usagePolicy allows only namespace "platform"`}},
		"Overflow": {reason: "A period retention could not apply holds the configuration back before any session.",
			ref:    &storagev1alpha1.ObjectReference{Name: "forever"},
			want:   `spec.backends[0].retentionPolicy: retentionpolicy team-a/forever: spec.maxRetentionPeriod: `,
			status: &corev1alpha1.RetentionPolicyStatus{Found: ptr.To(false)}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := append(platformObjects(),
				policy("platform", "all", storagev1alpha1.NamespacesFromAll, ""),
				policy("platform", "same", storagev1alpha1.NamespacesFromSame, ""),
				policy("team-a", "own", storagev1alpha1.NamespacesFromSame, "30d"),
				policy("team-a", "forever", storagev1alpha1.NamespacesFromSame, "9999999999y"))
			kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).Build()
			bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team-a"}}
			bc.Spec.Backends = backends(storagev1alpha1.ObjectReference{Name: "s3", Namespace: "platform"})
			bc.Spec.Backends[0].RetentionPolicy = tc.ref
			msg, _, err := checkBackends(context.Background(), &input{kube: kube, bc: bc, status: &bc.Status})
			if err != nil {
				t.Fatal(err)
			}
			got := bc.Status.Backends[0].RetentionPolicy
			if name == "Overflow" {
				// The parser's own words follow the field.
				if !strings.HasPrefix(msg, tc.want) || got == nil || !strings.HasPrefix(got.Reason, tc.want) {
					t.Errorf("%s\nmessage %q, status %+v; want them to start %q", tc.reason, msg, got, tc.want)
				}
				got.Reason = ""
			} else if diff := cmp.Diff(tc.want, msg); diff != "" {
				t.Errorf("%s\nmessage: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.status, got); diff != "" {
				t.Errorf("%s\nstatus.backends[0].retentionPolicy: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
