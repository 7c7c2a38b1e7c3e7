package restoresession

import (
	"context"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/agentapi"
	stashpkg "github.com/stashplane/stashplane/package"
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, corev1alpha1.AddToScheme, storagev1alpha1.AddToScheme, addonsv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// crossObjects are a Repository "app" in namespace "team" on a storage in
// namespace "platform", one Succeeded Snapshot of it, and namespaces
// "clone" (labelled for the storage) and "stranger" each holding a target
// Deployment and a password Secret.
func crossObjects(t *testing.T, policy *storagev1alpha1.UsagePolicy, local *storagev1alpha1.LocalSpec) []client.Object {
	t.Helper()
	bs := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "platform"}}
	bs.Spec.UsagePolicy = policy
	bs.Spec.Storage = storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: local}
	repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team"}}
	repo.Spec.StorageRef = storagev1alpha1.ObjectReference{Name: "shared", Namespace: "platform"}
	repo.Spec.EncryptionSecret = storagev1alpha1.ObjectReference{Name: "team-password"}
	s := snap("app-1", "app", storagev1alpha1.SnapshotSucceeded, 100)
	s.Namespace = "team"
	objs := []client.Object{bs, repo, &s,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clone", Labels: map[string]string{"restore": "yes"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stranger"}},
	}
	for _, ns := range []string{"clone", "stranger"} {
		objs = append(objs,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: ns}, Data: map[string][]byte{passwordKey: []byte("secret")}},
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}})
	}
	addons, err := stashpkg.Addons()
	if err != nil {
		t.Fatal(err)
	}
	return append(objs, addons...)
}

func TestCheckCrossNamespace(t *testing.T) {
	hostPath := &storagev1alpha1.LocalSpec{MountPath: "/storage", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv"}}}
	claim := &storagev1alpha1.LocalSpec{MountPath: "/storage", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"}}}
	selector := &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{
		From: ptr.To(storagev1alpha1.NamespacesFromSelector), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"restore": "yes"}},
	}}
	all := &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
	cases := map[string]struct {
		reason     string
		policy     *storagev1alpha1.UsagePolicy
		local      *storagev1alpha1.LocalSpec
		ns, secret string
		secretNS   string
		repository string
		snapshot   string
		brokered   bool
		want       xpv2.ConditionReason
		wantMsg    string
	}{
		"Admitted": {reason: "A namespace the storage's selector admits restores with its own password.",
			policy: selector, local: hostPath, ns: "clone", secret: "pw", repository: "app"},
		"NotAdmitted": {reason: "A namespace the selector does not match is refused without naming the storage.",
			policy: selector, local: hostPath, ns: "stranger", secret: "pw", repository: "app",
			want:    corev1alpha1.ReasonRestoreNamespaceNotAllowed,
			wantMsg: `repository "app" in namespace "team" does not exist or may not be used from namespace "stranger"`},
		"NotAdmittedMissingRepository": {reason: "A namespace not admitted cannot tell a missing repository from one it may not use.",
			policy: selector, local: hostPath, ns: "stranger", secret: "pw", repository: "gone",
			want:    corev1alpha1.ReasonRestoreNamespaceNotAllowed,
			wantMsg: `repository "gone" in namespace "team" does not exist or may not be used from namespace "stranger"`},
		"NotAdmittedMissingSnapshot": {reason: "A namespace not admitted learns nothing of the repository's snapshots.",
			policy: selector, local: hostPath, ns: "stranger", secret: "pw", repository: "app", snapshot: "gone",
			want:    corev1alpha1.ReasonRestoreNamespaceNotAllowed,
			wantMsg: `repository "app" in namespace "team" does not exist or may not be used from namespace "stranger"`},
		"AdmittedMissingSnapshot": {reason: "Once admitted, a namespace is told the snapshot is missing.",
			policy: selector, local: hostPath, ns: "clone", secret: "pw", repository: "app", snapshot: "gone",
			want:    corev1alpha1.ReasonRestoreSnapshotNotFound,
			wantMsg: `snapshot "gone" does not exist`},
		"SameOnly": {reason: "The default policy admits only the storage's own namespace.",
			local: hostPath, ns: "clone", secret: "pw", repository: "app",
			want:    corev1alpha1.ReasonRestoreNamespaceNotAllowed,
			wantMsg: `repository "app" in namespace "team" does not exist or may not be used from namespace "clone"`},
		"NoPassword": {reason: "The repository owner's password is never used from another namespace.",
			policy: all, local: hostPath, ns: "clone", repository: "app",
			want: corev1alpha1.ReasonRestoreEncryptionSecretRequired,
			wantMsg: `restoring from repository team/app needs spec.dataSource.encryptionSecret: a Secret in namespace "clone" holding RESTIC_PASSWORD` +
				` (the repository's own Secret is never copied out of its namespace)`},
		"PasswordOfAnotherNamespace": {reason: "The Jobs mount the password Secret from their own namespace, so one of another namespace is refused, not ignored.",
			policy: all, local: hostPath, ns: "clone", secret: "pw", secretNS: "team", repository: "app",
			want: corev1alpha1.ReasonRestoreEncryptionSecretRequired,
			wantMsg: `spec.dataSource.encryptionSecret.namespace "team": the restore Jobs run in namespace "clone" and mount the Secret from there; ` +
				`name a Secret of that namespace holding RESTIC_PASSWORD`},
		"PasswordOfOwnNamespaceNamed": {reason: "Naming the session's own namespace, as KubeStash's guides do, is the same as leaving it out.",
			policy: all, local: hostPath, ns: "clone", secret: "pw", secretNS: "clone", repository: "app"},
		"Claim": {reason: "A storage on a claim of another namespace cannot be mounted by the Jobs.",
			policy: all, local: claim, ns: "clone", secret: "pw", repository: "app",
			want:    corev1alpha1.ReasonRestoreStorageNotReachable,
			wantMsg: `backupstorage platform/shared keeps its data on claim "backups", which restore jobs in namespace "clone" cannot mount; set the storage's spec.access to Broker to serve them through its broker`},
		"BrokeredThirdNamespace": {reason: "A brokered storage keeps each namespace's backups apart: a repository of a third namespace is refused like one the namespace may not use.",
			policy: all, local: hostPath, ns: "clone", secret: "pw", repository: "app", brokered: true,
			want:    corev1alpha1.ReasonRestoreNamespaceNotAllowed,
			wantMsg: `repository "app" in namespace "team" does not exist or may not be used from namespace "clone"`},
		"NoRepository": {reason: "A missing repository of another namespace is refused like one the namespace may not use.",
			policy: all, local: hostPath, ns: "clone", secret: "pw", repository: "gone",
			want:    corev1alpha1.ReasonRestoreNamespaceNotAllowed,
			wantMsg: `repository "gone" in namespace "team" does not exist or may not be used from namespace "clone"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := crossObjects(t, tc.policy, tc.local)
			for _, o := range objs {
				if st, ok := o.(*storagev1alpha1.BackupStorage); ok && tc.brokered {
					st.Spec.Access = storagev1alpha1.AccessBroker
				}
			}
			kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).Build()
			r := &reconciler{kube: kube, reader: kube}
			rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: tc.ns}}
			rs.Spec.Target = &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"}
			rs.Spec.Addon = &corev1alpha1.AddonInfo{Name: "workload-addon"}
			rs.Spec.DataSource = corev1alpha1.RestoreDataSource{Namespace: "team", Repository: tc.repository, Snapshot: "latest"}
			if tc.snapshot != "" {
				rs.Spec.DataSource.Snapshot = tc.snapshot
			}
			if tc.secret != "" {
				rs.Spec.DataSource.EncryptionSecret = &storagev1alpha1.ObjectReference{Name: tc.secret, Namespace: tc.secretNS}
			}
			_, reason, msg, err := r.check(context.Background(), rs)
			if err != nil {
				t.Fatalf("check(): %v", err)
			}
			if diff := cmp.Diff(tc.want, reason); diff != "" {
				t.Errorf("%s\nreason: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantMsg, msg); diff != "" {
				t.Errorf("%s\nmessage: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestGrants(t *testing.T) {
	repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team"}}
	st := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "platform"}}
	storage := rbacv1.PolicyRule{APIGroups: []string{storagev1alpha1.Group}, Resources: []string{"backupstorages"}, ResourceNames: []string{"shared"}, Verbs: []string{"get"}}
	report := rbacv1.PolicyRule{APIGroups: []string{corev1alpha1.Group}, Resources: []string{"restoresessions/status"}, ResourceNames: []string{"r"}, Verbs: []string{"patch"}}
	cases := map[string]struct {
		reason string
		ns     string
		st     *storagev1alpha1.BackupStorage
		want   map[string][]rbacv1.PolicyRule
	}{
		"ThreeNamespaces": {reason: "The session reports on itself only in its namespace, reads the Repository and Snapshot in theirs and the storage in its, each by name; it reads no pod of another namespace.",
			ns: "clone", st: st,
			want: map[string][]rbacv1.PolicyRule{
				"clone":    {report},
				"team":     agentapi.RestoreReadRules("app", "app-1"),
				"platform": {storage},
			}},
		"OneNamespace": {reason: "A restore beside its Repository and storage is granted everything in its namespace, and writes no Snapshot; it may get pods, to judge a prune pod's restic lock.",
			ns: "team", st: &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "team"}},
			want: map[string][]rbacv1.PolicyRule{
				"team": append(append(append([]rbacv1.PolicyRule{report}, agentapi.RestoreReadRules("app", "app-1")...), agentapi.PruneLockRules()...), storage),
			}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: tc.ns}}
			if diff := cmp.Diff(tc.want, grants(rs, repo, "app-1", tc.st, false)); diff != "" {
				t.Errorf("%s\ngrants(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRevokeAccess(t *testing.T) {
	rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "clone", Finalizers: []string{finalizer}}}
	mine := remoteLabels(rs)
	other := map[string]string{corev1alpha1.LabelRestoreSession: "r", corev1alpha1.LabelRestoreSessionNamespace: "elsewhere"}
	meta := func(ns, name string, l map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}
	}
	kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(rs,
		&rbacv1.Role{ObjectMeta: meta("team", "clone.r-restore", mine)},
		&rbacv1.RoleBinding{ObjectMeta: meta("team", "clone.r-restore", mine)},
		&rbacv1.Role{ObjectMeta: meta("team", "elsewhere.r-restore", other)},
		&rbacv1.RoleBinding{ObjectMeta: meta("team", "elsewhere.r-restore", other)},
		&corev1.Secret{ObjectMeta: meta("clone", "r-storage", mine)},
		&corev1.Secret{ObjectMeta: meta("clone", "users-own", nil)},
	).Build()
	r := &reconciler{kube: kube, reader: kube}
	if err := r.revokeAccess(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	var got []string
	roles, bindings, secrets := &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &corev1.SecretList{}
	for _, l := range []client.ObjectList{roles, bindings, secrets} {
		if err := kube.List(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range roles.Items {
		got = append(got, "Role "+o.Namespace+"/"+o.Name)
	}
	for _, o := range bindings.Items {
		got = append(got, "RoleBinding "+o.Namespace+"/"+o.Name)
	}
	for _, o := range secrets.Items {
		got = append(got, "Secret "+o.Namespace+"/"+o.Name)
	}
	want := []string{"Role team/elsewhere.r-restore", "RoleBinding team/elsewhere.r-restore", "Secret clone/users-own"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("revokeAccess() kept other sessions' and users' objects only: -want +got:\n%s", diff)
	}
	after := &corev1alpha1.RestoreSession{}
	if err := kube.Get(context.Background(), client.ObjectKeyFromObject(rs), after); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string(nil), after.Finalizers); diff != "" {
		t.Errorf("finalizers after revokeAccess(): -want +got:\n%s", diff)
	}
}

// A restore from another namespace on S3 runs its Job in the session's
// namespace with the Repository's namespace for the agent, reports to the
// session's namespace, and mounts the session's copy of the storage
// Secret; the Role it needs in the Repository's namespace is bound to the
// session's account, and the session holds the finalizer that removes it.
func TestComposeCrossNamespace(t *testing.T) {
	ctx := context.Background()
	all := &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
	objs := crossObjects(t, all, nil)
	bs := objs[0].(*storagev1alpha1.BackupStorage)
	bs.Spec.Storage = storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "s3-creds"}}
	rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "clone"}}
	rs.Spec.Target = &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"}
	rs.Spec.Addon = &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup-restore"}}}
	rs.Spec.DataSource = corev1alpha1.RestoreDataSource{Namespace: "team", Repository: "app", Snapshot: "latest",
		EncryptionSecret: &storagev1alpha1.ObjectReference{Name: "pw"}}
	objs = append(objs, rs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "platform"}, Data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("id")}})
	kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).Build()
	r := &reconciler{kube: kube, reader: kube, renderer: render.New(render.Options{}), clock: clocktesting.NewFakeClock(time.Unix(0, 0)), image: "stashplane"}
	in, reason, msg, err := r.check(ctx, rs)
	if err != nil || reason != "" {
		t.Fatalf("check(): %v %s %s", err, reason, msg)
	}
	secret, err := r.ensureAccess(ctx, rs, in, false)
	if err != nil {
		t.Fatalf("ensureAccess(): %v", err)
	}
	if err := r.ensureJobs(ctx, rs, mustPlan(t, rs, in), secret); err != nil {
		t.Fatalf("ensureJobs(): %v", err)
	}

	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("clone")); err != nil || len(jobs.Items) != 1 {
		t.Fatalf("jobs in the session's namespace: %d, %v", len(jobs.Items), err)
	}
	pod := jobs.Items[0].Spec.Template.Spec
	var args []string
	for _, a := range pod.Containers[0].Args {
		if strings.HasPrefix(a, "--namespace") || strings.HasPrefix(a, "--restore-session") || strings.HasPrefix(a, "--storage") {
			args = append(args, a)
		}
	}
	want := []string{"--namespace=team", "--storage=platform/shared", "--storage-secret-dir=/etc/stashplane/storage", "--restore-session=r", "--restore-session-namespace=clone"}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("agent arguments: -want +got:\n%s", diff)
	}
	var mounted []string
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			mounted = append(mounted, v.Secret.SecretName)
		}
	}
	if diff := cmp.Diff([]string{"r-storage", "pw"}, mounted); diff != "" {
		t.Errorf("secrets the job mounts: -want +got:\n%s", diff)
	}
	cp := &corev1.Secret{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "clone", Name: "r-storage"}, cp); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("id", string(cp.Data["AWS_ACCESS_KEY_ID"])); diff != "" || !metav1.IsControlledBy(cp, rs) {
		t.Errorf("the copy of the storage secret: owned %t, -want +got:\n%s", metav1.IsControlledBy(cp, rs), diff)
	}
	rb := &rbacv1.RoleBinding{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "team", Name: "clone.r-restore"}, rb); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]rbacv1.Subject{{Kind: "ServiceAccount", Name: "r-restore", Namespace: "clone"}}, rb.Subjects); diff != "" {
		t.Errorf("subjects of the binding in the repository's namespace: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff([]string{finalizer}, rs.Finalizers); diff != "" {
		t.Errorf("finalizers: -want +got:\n%s", diff)
	}
}
