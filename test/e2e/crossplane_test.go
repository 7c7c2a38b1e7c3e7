/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/protection"
	"github.com/stashplane/stashplane/internal/devcluster"
	"github.com/stashplane/stashplane/internal/devcluster/crossplane"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/image"
	"github.com/stashplane/stashplane/internal/trigger"
	"github.com/stashplane/stashplane/internal/version"
	stashpkg "github.com/stashplane/stashplane/package"
)

// imagesLayout is the OCI layout `make images` wrote:
// $STASHPLANE_IMAGES, else bin/images/oci.
func imagesLayout(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("STASHPLANE_IMAGES"); d != "" {
		return d
	}
	root, err := devclustertest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "bin", "images", "oci")
}

// withCrossplane starts an isolated dev cluster whose registry serves the
// images and packages of the layout and core's image, installs core and,
// through it, the newest Configuration of the layout, and returns a
// client once the Configuration, Provider and Function are Installed and
// Healthy.
func withCrossplane(t *testing.T) (client.Client, *devcluster.Cluster, *image.Registry) {
	t.Helper()
	dir := imagesLayout(t)
	l, err := image.OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := l.Newest(version.Registry + image.ConfigurationPackage)
	if err != nil || tag == "" {
		t.Fatalf("no Configuration package in %s (run `make images`): %v", dir, err)
	}
	cfgRef := version.Registry + image.ConfigurationPackage + ":" + tag
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reg, err := image.ServeRegistry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Load(l, version.Registry, tag); err != nil {
		t.Fatal(err)
	}
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := crossplane.PushCore(ctx, reg.Addr, bin, filepath.Join(filepath.Dir(dir), "layers")); err != nil {
		t.Fatal(err)
	}
	// Every image a pod names runs as it ships: core's, the provider's,
	// the function's, and the agent's in the provider's Jobs.
	c := devclustertest.StartWith(t, devclustertest.Options{
		PodNetwork: devcluster.PodNetworkIsolated, ImageMirrors: crossplane.Mirrors(reg.Addr), PullProjectImages: true,
	})
	kube := providerClient(t, c.Config())
	t.Cleanup(func() { restoreLogsOnFailure(t, kube, c.Config(), crossplane.Namespace, "team-a", "team-b") })
	start := time.Now()
	ictx, icancel := context.WithTimeout(ctx, 6*time.Minute)
	defer icancel()
	progress := &testWriter{t: t}
	if err := crossplane.Install(ictx, c.Config(), crossplane.Options{
		Registry: reg.Addr, Configuration: cfgRef, ProviderRBAC: stashpkg.ProviderRBAC(), Progress: progress,
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Crossplane core installed %s with its Provider and Function in %s", cfgRef, time.Since(start).Round(time.Second))
	return kube, c, reg
}

// buildVersion builds the images and packages of this checkout as version
// v with hack/images, into a layout of their own, and sends it on the
// returned channel (or fails the test).
func buildVersion(t *testing.T, v string) <-chan *image.Layout {
	t.Helper()
	root, err := devclustertest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	done := make(chan *image.Layout, 1)
	go func() {
		defer close(done)
		start := time.Now()
		cmd := exec.Command("go", "run", "./hack/images", "-root", root, "-out", out, "-debs", filepath.Join(root, "bin", "images", "debs"), "-version", v)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cannot build version %s: %v\n%s", v, err, b)
			return
		}
		l, err := image.OpenLayout(filepath.Join(out, "oci"))
		if err != nil {
			t.Error(err)
			return
		}
		t.Logf("version %s built by hack/images in %s", v, time.Since(start).Round(time.Second))
		done <- l
	}()
	return done
}

// testWriter logs each line written to it.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestCrossplaneInstalled is the operator's and the app team's path on a
// real Crossplane core: core installs the Configuration from the dev
// registry with the Provider and Function as dependencies, each running
// from its image; the RBAC manager grants the provider what the package's
// rules say; an app team, with nothing but `edit` and the Protection kind
// in its namespace, protects its Deployment, and core composes the
// configuration and verifier through the function's pod; a namespace the
// storage does not admit is told why; deleting the Protection keeps the
// backups.
func TestCrossplaneInstalled(t *testing.T) {
	t.Parallel()
	// The version the packages are upgraded to while a backup runs.
	const upgrade = "v99.0.0-upgrade"
	next := buildVersion(t, upgrade)
	kube, c, reg := withCrossplane(t)
	ctx := context.Background()
	t.Cleanup(func() {
		dumpOnFailure(t, kube, &corev1alpha1.BackupConfigurationList{})
		dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
		dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
		providerLogsOnFailure(t, kube, c.Config())
	})

	t.Run("ProviderRights", func(t *testing.T) {
		crds, err := stashpkg.CRDs()
		if err != nil {
			t.Fatal(err)
		}
		var system []rbacv1.PolicyRule
		poll(t, time.Minute, "the RBAC manager made no system ClusterRole for the provider", func(ctx context.Context) (bool, error) {
			roles := &rbacv1.ClusterRoleList{}
			if err := kube.List(ctx, roles); err != nil {
				return false, err
			}
			for _, r := range roles.Items {
				if strings.HasPrefix(r.Name, "crossplane:provider:"+crossplane.Provider) && strings.HasSuffix(r.Name, ":system") {
					system = r.Rules
				}
			}
			return system != nil, nil
		})
		// What the RBAC manager grants, against what the package's
		// rules (stashpkg.SystemRules, which TestProviderRBAC runs the
		// provider with) say it grants, over the provider's kinds and the
		// core kinds the system role covers.
		type access struct{ group, resource string }
		var kinds []access
		for _, crd := range crds {
			for _, sub := range []string{"", "/status", "/finalizers"} {
				kinds = append(kinds, access{crd.Spec.Group, crd.Spec.Names.Plural + sub})
			}
		}
		kinds = append(kinds, access{"", "secrets"}, access{"", "configmaps"}, access{"", "events"}, access{"coordination.k8s.io", "leases"})
		allowed := func(rules []rbacv1.PolicyRule) []string {
			var out []string
			for _, k := range kinds {
				for _, verb := range []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"} {
					if stashpkg.Allows(rules, k.group, k.resource, verb) {
						out = append(out, k.group+"/"+k.resource+":"+verb)
					}
				}
			}
			return out
		}
		if diff := cmp.Diff(allowed(stashpkg.SystemRules(crds)), allowed(system)); diff != "" {
			t.Errorf("the RBAC manager grants the provider otherwise than stashpkg.SystemRules says (-package +RBAC manager):\n%s", diff)
		}
	})

	storageDir, data := storageDir(t), t.TempDir()
	generate(t, data, 40, 23)
	shared := platformAndTeams(t, kube, storageDir)
	if err := kube.Create(ctx, shared); err != nil {
		t.Fatal(err)
	}

	// The app teams' role: Kubernetes' edit and Crossplane's, which the
	// RBAC manager extends with each XRD's kinds; bound in one namespace.
	appTeam := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "app-team"},
		AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			{MatchLabels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
			{MatchLabels: map[string]string{"rbac.crossplane.io/aggregate-to-edit": "true"}},
		}},
	}
	if err := kube.Create(ctx, appTeam); err != nil {
		t.Fatal(err)
	}
	users := map[string]client.Client{}
	for ns, user := range map[string]string{"team-a": "alice", "team-b": "bob"} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "app-team", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: appTeam.Name},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
		}
		if err := kube.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
		cfg := rest.CopyConfig(c.Config())
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
		u, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		users[ns] = u
	}
	// Each team writes its own app, Secret and Protection.
	for ns, u := range users {
		app := appWithHostDir("app", data).(*appsv1.Deployment)
		app.Namespace = ns
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-encryption", Namespace: ns}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte("team-password")}}
		for _, o := range []client.Object{app, secret} {
			poll(t, time.Minute, fmt.Sprintf("%s could not create %T in its namespace", ns, o), func(ctx context.Context) (bool, error) {
				err := u.Create(ctx, o)
				return err == nil, client.IgnoreAlreadyExists(ignoreForbidden(err))
			})
		}
	}
	for ns, u := range users {
		xr := protectionXR(ns, "shared")
		// The aggregated role gains the Protection kind once the RBAC
		// manager has made its role for the XRD.
		poll(t, time.Minute, ns+" could not create its Protection", func(ctx context.Context) (bool, error) {
			return u.Create(ctx, xr) == nil, nil
		})
	}
	if err := users["team-a"].Create(ctx, protectionXR("team-b", "shared-other")); !apierrors.IsForbidden(err) {
		t.Errorf("team-a's user creating a Protection in team-b: %v, want forbidden", err)
	}

	xr := func(ns string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("platform.stashplane.io/v1alpha1")
		u.SetKind("Protection")
		if err := users[ns].Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, u); err != nil {
			t.Logf("cannot read %s's Protection: %v", ns, err)
		}
		return u
	}
	condition := func(u *unstructured.Unstructured, typ string) string {
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == typ {
				str := func(k string) string { s, _ := m[k].(string); return s }
				return fmt.Sprintf("%s/%s: %s", str("status"), str("reason"), str("message"))
			}
		}
		return ""
	}
	status := func(u *unstructured.Unstructured, path ...string) string {
		s, _, _ := unstructured.NestedString(u.Object, append([]string{"status"}, path...)...)
		return s
	}

	// team-a: composed by core through the function's pod, backed up.
	poll(t, 5*time.Minute, "team-a's Protection did not show a succeeded backup", func(context.Context) (bool, error) {
		return status(xr("team-a"), "lastSnapshot", "phase") == string(storagev1alpha1.SnapshotSucceeded), nil
	})
	// The class backs up hourly: a scheduled backup may overtake the
	// verified Snapshot, and then the newest is verified in its turn.
	var snap string
	for attempt := 0; ; attempt++ {
		snap = verifyNewest(t, kube, "team-a", "app-verifier")
		shown := false
		poll(t, 3*time.Minute, "team-a's Protection did not show its verified snapshot "+snap, func(context.Context) (bool, error) {
			u := xr("team-a")
			last := status(u, "lastSnapshot", "name")
			shown = last == snap && status(u, "lastSnapshot", "verification") == string(storagev1alpha1.SnapshotVerified) &&
				strings.HasPrefix(condition(u, "Verified"), "True/Verified: ") && strings.HasPrefix(condition(u, "Ready"), "True/")
			overtaken := last != snap && last != "" && status(u, "lastSnapshot", "phase") == string(storagev1alpha1.SnapshotSucceeded) &&
				strings.HasPrefix(condition(u, "Verified"), "Unknown/NotVerifiedYet")
			return shown || overtaken, nil
		})
		if shown {
			break
		}
		if attempt == 2 {
			t.Fatalf("team-a's Protection never showed a verified newest snapshot: %q", condition(xr("team-a"), "Verified"))
		}
		t.Logf("a scheduled backup overtook verified snapshot %s: %s", snap, condition(xr("team-a"), "Verified"))
	}
	a := xr("team-a")
	t.Logf("team-a's Protection, composed by Crossplane core: snapshot %s %s, restored in %s; Ready %q", snap,
		status(a, "lastSnapshot", "verification"), status(a, "lastSnapshot", "restoreDuration"), condition(a, "Ready"))

	// team-b: the storage does not admit it; the Protection says why and
	// nothing runs.
	poll(t, 3*time.Minute, "team-b's Protection did not say the storage refuses it", func(context.Context) (bool, error) {
		return strings.Contains(condition(xr("team-b"), "BackupReady"), `does not match namespace "team-b"`), nil
	})
	if b := xr("team-b"); !strings.HasPrefix(condition(b, "BackupReady"), "False/") || strings.HasPrefix(condition(b, "Ready"), "True/") {
		t.Errorf("team-b's Protection: BackupReady %q, Ready %q", condition(b, "BackupReady"), condition(b, "Ready"))
	}
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("team-b")); err != nil || len(jobs.Items) > 0 {
		t.Errorf("team-b, which the storage refuses, has %d Jobs (%v)", len(jobs.Items), err)
	}

	// An upgrade of the packages while a backup runs: the backup ends
	// Succeeded, the new provider running.
	l2, ok := <-next
	if !ok {
		t.FailNow()
	}
	if _, err := reg.Load(l2, version.Registry, upgrade); err != nil {
		t.Fatal(err)
	}
	// Enough data that the backup lasts a while.
	big := filepath.Join(data, "big")
	generateLarge(t, big, 6, 24<<20)
	bc := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "app"}, bc); err != nil {
		t.Fatal(err)
	}
	oldPods := providerPods(t, kube)
	session, err := trigger.Create(ctx, kube, bc, protection.Session, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Under way: the session says Running, or its backup Job has a pod
	// running (the session's status may lag behind it on a loaded machine).
	poll(t, 2*time.Minute, "the backup before the upgrade did not start", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(session), session); err != nil {
			return false, nil
		}
		if session.Status.Phase == corev1alpha1.BackupSessionRunning {
			return true, nil
		}
		jobs := &batchv1.JobList{}
		if err := kube.List(ctx, jobs, client.InNamespace(session.Namespace), client.MatchingLabels{corev1alpha1.LabelBackupSession: session.Name}); err != nil {
			return false, nil
		}
		for _, j := range jobs.Items {
			if j.Status.Active > 0 {
				t.Logf("session %s is %q while its job %s runs", session.Name, session.Status.Phase, j.Name)
				return true, nil
			}
		}
		return false, nil
	})
	upStart := time.Now()
	uctx, ucancel := context.WithTimeout(ctx, 5*time.Minute)
	defer ucancel()
	if err := crossplane.Upgrade(uctx, c.Config(), upgrade, &testWriter{t: t}); err != nil {
		t.Fatal(err)
	}
	t.Logf("packages upgraded to %s in %s; session %s is %s", upgrade, time.Since(upStart).Round(time.Second), session.Name, session.Status.Phase)
	poll(t, 5*time.Minute, "the backup begun before the upgrade did not end", func(ctx context.Context) (bool, error) {
		err := kube.Get(ctx, client.ObjectKeyFromObject(session), session)
		return err == nil && session.Status.Phase != corev1alpha1.BackupSessionRunning && session.Status.Phase != corev1alpha1.BackupSessionPending, nil
	})
	if session.Status.Phase != corev1alpha1.BackupSessionSucceeded {
		t.Errorf("the backup begun before the upgrade: %s, conditions %+v", session.Status.Phase, session.Status.Conditions)
		for _, st := range session.Status.Snapshots {
			snap := &storagev1alpha1.Snapshot{}
			err := kube.Get(ctx, client.ObjectKey{Namespace: session.Namespace, Name: st.Name}, snap)
			t.Logf("its snapshot %s (%v): %s, conditions %+v", st.Name, err, snap.Status.Phase, snap.Status.Conditions)
		}
	}
	newPods := providerPods(t, kube)
	for name, img := range newPods {
		if _, old := oldPods[name]; old || !strings.HasSuffix(img, ":"+upgrade) {
			t.Errorf("after the upgrade the provider pod %s runs %s", name, img)
		}
	}
	if len(newPods) == 0 {
		t.Error("no provider pod runs after the upgrade")
	}
	t.Logf("the backup begun before the upgrade ended %s at %s (upgrade began %s after it started)", session.Status.Phase,
		time.Now().Format(time.TimeOnly), upStart.Sub(session.CreationTimestamp.Time).Round(time.Second))

	// Deleting the Protection deletes what core composed; the class
	// retains the backups.
	if err := users["team-a"].Delete(ctx, xr("team-a")); err != nil {
		t.Fatal(err)
	}
	poll(t, 3*time.Minute, "team-a's composed configuration was not deleted", func(ctx context.Context) (bool, error) {
		err := kube.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "app"}, &corev1alpha1.BackupConfiguration{})
		return apierrors.IsNotFound(err), nil
	})
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "app"}, &storagev1alpha1.Repository{}); err != nil {
		t.Errorf("the Repository of a deleted Protection whose class retains backups: %v", err)
	}
	if entries, err := os.ReadDir(filepath.Join(storageDir, "backups", "team-a", "app")); err != nil || !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "data" || e.IsDir() }) {
		t.Errorf("the backed-up data of a deleted Protection: %v", err)
	}
}

// providerPods are the running provider pods, with their images.
func providerPods(t *testing.T, kube client.Client) map[string]string {
	t.Helper()
	pods := &corev1.PodList{}
	if err := kube.List(context.Background(), pods, client.InNamespace(crossplane.Namespace)); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		if strings.HasPrefix(p.Name, crossplane.Provider+"-") && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out[p.Name] = p.Spec.Containers[0].Image
		}
	}
	return out
}

// generateLarge writes n files of size random bytes each into dir.
func generateLarge(t *testing.T, dir string, n, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rnd := rand.NewChaCha8([32]byte{7})
	for i := range n {
		b := make([]byte, size)
		_, _ = rnd.Read(b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("large-%d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ignoreForbidden treats forbidden as "not yet": the role aggregation
// that grants it may still be on its way.
func ignoreForbidden(err error) error {
	if apierrors.IsForbidden(err) {
		return nil
	}
	return err
}

// providerLogsOnFailure prints the end of the log of each provider pod
// Crossplane core runs, when the test failed: what the provider did is
// only there.
func providerLogsOnFailure(t *testing.T, kube client.Client, cfg *rest.Config) {
	if !t.Failed() {
		return
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return
	}
	pods := &corev1.PodList{}
	if err := kube.List(context.Background(), pods, client.InNamespace(crossplane.Namespace)); err != nil {
		return
	}
	lines := int64(400)
	for _, p := range pods.Items {
		if !strings.HasPrefix(p.Name, "stashplane-provider") || len(p.Spec.Containers) == 0 {
			continue
		}
		b, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: p.Spec.Containers[0].Name, TailLines: &lines}).DoRaw(context.Background())
		t.Logf("provider pod %s, its last %d lines (%v):\n%s", p.Name, lines, err, b)
	}
}
