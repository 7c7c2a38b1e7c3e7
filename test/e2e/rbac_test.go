package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/tenancy"
	"github.com/stashplane/stashplane/internal/verify"
	stashpkg "github.com/stashplane/stashplane/package"
)

const (
	providerNamespace      = "crossplane-system"
	providerServiceAccount = "provider-stashplane"
)

// asProviderServiceAccount runs the provider as a ServiceAccount bound to
// a ClusterRole of rules only, as Crossplane runs it once the RBAC manager
// and package/rbac/provider.yaml granted their rules.
func asProviderServiceAccount(rules []rbacv1.PolicyRule) providerOption {
	return func(t *testing.T, kube client.Client, cfg *rest.Config, _ *provider.Options) {
		t.Helper()
		name := "stashplane-provider-under-test"
		for _, o := range []client.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: providerNamespace}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: providerServiceAccount, Namespace: providerNamespace}},
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules},
			&rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: providerServiceAccount, Namespace: providerNamespace}},
			},
		} {
			if err := kube.Create(context.Background(), o); err != nil {
				t.Fatal(err)
			}
		}
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + providerNamespace + ":" + providerServiceAccount}
	}
}

// packageRules are the rules a provider installed from the package holds.
func packageRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	rules, err := stashpkg.Rules()
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// withoutVerb drops verb from every rule naming group and resource.
func withoutVerb(rules []rbacv1.PolicyRule, group, resource, verb string) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, 0, len(rules))
	for _, r := range rules {
		r = *r.DeepCopy()
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) {
			r.Verbs = slices.DeleteFunc(r.Verbs, func(v string) bool { return v == verb })
		}
		out = append(out, r)
	}
	return out
}

// rbacBackup creates a local storage, a workload and its configuration,
// with the app-verifier linked, and waits for the first BackupSession.
func rbacBackup(t *testing.T, kube client.Client, mods ...func(*appsv1.Deployment, *corev1alpha1.BackupConfiguration)) *corev1alpha1.BackupConfiguration {
	t.Helper()
	ctx := context.Background()
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir, data := storageDir(t), t.TempDir()
	generate(t, data, 20, 5)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: "app-verifier"}
	app := appWithHostDir("app", data).(*appsv1.Deployment)
	for _, m := range mods {
		m(app, bc)
	}
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		app,
		restoreOnlyVerifier(),
		bc,
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return bc
}

// firstSession waits for the configuration's first BackupSession.
func firstSession(t *testing.T, kube client.Client) *corev1alpha1.BackupSession {
	t.Helper()
	s := &corev1alpha1.BackupSession{}
	poll(t, 3*time.Minute, "no backupsession was started", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		s = &list.Items[0]
		return true, nil
	})
	return s
}

// The provider, run with nothing but the package's rules, backs up a
// workload from a local storage with a hook exec'd in its pod before and
// after, verifies the Snapshot by restoring it into a scratch claim, and
// cleans up: every API it touches on the way is allowed by
// package/rbac/provider.yaml and the RBAC manager's system role.
func TestProviderRBAC(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t, asProviderServiceAccount(packageRules(t)))
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	if err := kube.Create(ctx, execTemplate("mark", `echo ${STASHPLANE_PHASE} > /var/lib/app/hook-ran && echo marked`)); err != nil {
		t.Fatal(err)
	}
	rbacBackup(t, kube, func(app *appsv1.Deployment, bc *corev1alpha1.BackupConfiguration) {
		app.Spec.Replicas = ptr.To[int32](1)
		bc.Spec.Sessions[0].Hooks = &corev1alpha1.BackupHooks{
			PreBackup:  []corev1alpha1.HookInfo{hookInfo("before", "mark", "")},
			PostBackup: []corev1alpha1.HookInfo{hookInfo("after", "mark", corev1alpha1.HookExecuteAlways)},
		}
	})
	first := firstSession(t, kube)
	poll(t, 4*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, first.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	if err := kube.Get(ctx, client.ObjectKeyFromObject(first), first); err != nil {
		t.Fatal(err)
	}
	for _, h := range append(first.Status.Hooks.PreHooks, first.Status.Hooks.PostHooks...) {
		if h.Phase != corev1alpha1.HookSucceeded || h.Output != "marked" {
			t.Errorf("hook %s under the package's rules: %s %s %q", h.Name, h.Phase, h.Reason, h.Output)
		}
	}
	vt := &verificationTest{t: t, kube: kube}
	snap := "app-" + first.Name
	if got := vt.snapshot(snap); got.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Fatalf("snapshot %s: phase %s, want %s", snap, got.Status.Phase, storagev1alpha1.SnapshotSucceeded)
	}

	started, err := verify.Now(ctx, kube, "default", "app-verifier", "", time.Now())
	if err != nil || len(started) != 1 {
		t.Fatalf("verify.Now: %d sessions, %v", len(started), err)
	}
	s := vt.finished(started[0].Name)
	// The 20 files of the workload and the one its pre-backup hook wrote.
	if s.Status.Phase != corev1alpha1.VerificationSessionSucceeded || s.Status.FilesChecked != 21 {
		t.Fatalf("session %s: phase %s, %d files checked, conditions %+v; want Succeeded with 21 files", s.Name, s.Status.Phase, s.Status.FilesChecked, s.Status.Conditions)
	}
	if got := vt.snapshot(snap); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified || got.Status.VerificationSession != s.Name {
		t.Errorf("snapshot %s: verification %s by %q, want %s by %s", snap, got.Status.VerificationStatus, got.Status.VerificationSession, storagev1alpha1.SnapshotVerified, s.Name)
	}
	vt.scratchGone(s.Name)
	tamperWithVerdict(t, kube, cluster.Config(), snap)
}

// tamperWithVerdict tries, as an account whose Role may write Snapshots'
// status, to change a Verified Snapshot's verdict: the provider's
// admission policy refuses it, naming why, while another status field of
// the same Snapshot may be written (so RBAC is not what refused it).
func tamperWithVerdict(t *testing.T, kube client.Client, cfg *rest.Config, snap string) {
	t.Helper()
	ctx := context.Background()
	rules := []rbacv1.PolicyRule{{APIGroups: []string{storagev1alpha1.GroupVersion.Group}, Resources: []string{"snapshots", "snapshots/status"}, Verbs: []string{"get", "update", "patch"}}}
	for _, o := range tenancy.Objects("tamperer", "default", nil, rules) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	tc := rest.CopyConfig(cfg)
	tc.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:default:tamperer"}
	tamperer, err := client.New(tc, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKey{Namespace: "default", Name: snap}
	var refused error
	poll(t, 30*time.Second, "the tamperer's Role did not take effect", func(ctx context.Context) (bool, error) {
		got := &storagev1alpha1.Snapshot{}
		if err := tamperer.Get(ctx, key, got); err != nil {
			return false, nil
		}
		got.Status.VerificationStatus = storagev1alpha1.SnapshotVerificationFailed
		refused = tamperer.Status().Update(ctx, got)
		// RBAC's refusal reads "cannot update resource"; the Role is
		// honoured within moments of its creation.
		return !strings.Contains(fmt.Sprint(refused), "cannot update resource"), nil
	})
	if refused == nil || !strings.Contains(refused.Error(), "only the Stashplane provider may change a Snapshot's verdict") {
		t.Errorf("a verdict changed by another account: %v; want the admission policy's refusal", refused)
	}
	got := &storagev1alpha1.Snapshot{}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := tamperer.Get(ctx, key, got); err != nil {
			return err
		}
		got.Status.Size = "1 B"
		return tamperer.Status().Update(ctx, got)
	}); err != nil {
		t.Errorf("the same account writing another status field: %v; want it allowed", err)
	}
	if err := kube.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Errorf("snapshot %s: verdict %s after the refused change, want %s", snap, got.Status.VerificationStatus, storagev1alpha1.SnapshotVerified)
	}
	t.Logf("verdict change refused: %v", refused)
}

// Without "create" on Jobs the same backup cannot start: the session says
// so in its BackupExecutorEnsured condition, with the API server's
// forbidden error. The rules above are thus what let it run.
func TestProviderRBACWithoutJobCreate(t *testing.T) {
	t.Parallel()
	rules := withoutVerb(packageRules(t), "batch", "jobs", "create")
	if stashpkg.Allows(rules, "batch", "jobs", "create") || !stashpkg.Allows(rules, "batch", "jobs", "delete") {
		t.Fatal("withoutVerb did not remove exactly create on jobs")
	}
	kube, _ := withProviderCluster(t, asProviderServiceAccount(rules))
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	rbacBackup(t, kube)
	first := firstSession(t, kube)
	var msg string
	poll(t, 3*time.Minute, "the session does not report that it may not create jobs", func(ctx context.Context) (bool, error) {
		s := &corev1alpha1.BackupSession{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(first), s); err != nil {
			return false, nil
		}
		msg = s.GetCondition(corev1alpha1.TypeBackupExecutorEnsured).Message
		return strings.Contains(msg, "forbidden") && strings.Contains(msg, `"jobs"`), nil
	})
	if p := sessionPhase(context.Background(), kube, first.Name); p == corev1alpha1.BackupSessionSucceeded {
		t.Errorf("session %s succeeded without jobs: %s", first.Name, msg)
	}
}
