package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

func repository(name, ns, path string, policy storagev1alpha1.DeletionPolicy) *storagev1alpha1.Repository {
	return &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: storagev1alpha1.RepositorySpec{
			StorageRef:       storagev1alpha1.ObjectReference{Namespace: "default", Name: "shared"},
			Path:             path,
			DeletionPolicy:   policy,
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"},
		},
	}
}

func repoCondition(ctx context.Context, kube client.Client, ns, name string) (xpv2.Condition, bool) {
	r := &storagev1alpha1.Repository{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, r); err != nil {
		return xpv2.Condition{}, false
	}
	return r.GetCondition(storagev1alpha1.TypeRepositoryInitialized), true
}

func waitRepoReason(t *testing.T, kube client.Client, ns, name string, status corev1.ConditionStatus, reason string) {
	t.Helper()
	poll(t, 2*time.Minute, fmt.Sprintf("repository %s/%s did not reach %s/%s", ns, name, status, reason), func(ctx context.Context) (bool, error) {
		c, _ := repoCondition(ctx, kube, ns, name)
		return c.Status == status && string(c.Reason) == reason, nil
	})
}

// digest hashes every file under dir, by relative path.
func digest(t *testing.T, dir string) map[string]string {
	t.Helper()
	return digestWith(t, dir, func(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) })
}

// digestWith maps each regular file under dir, by its path relative to
// dir, to sum of its content.
func digestWith(t *testing.T, dir string, sum func([]byte) string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = sum(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Repositories on one local storage: each writes repository.yaml under its
// path; a missing password Secret is reported and recovers once created; a
// namespace the storage's usage policy does not admit and a path that
// overlaps another repository's are refused without a write; WipeOut of one
// repository leaves its sibling byte for byte.
func TestRepositories(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &storagev1alpha1.RepositoryList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.BackupStorageList{})
	defer dumpOnFailure(t, kube, &corev1.PodList{})
	host := storageDir(t)
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: map[string]string{"backup": "allowed"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
	} {
		if err := kube.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	bs := localStorage("shared", "default", host, nil)
	bs.Spec.UsagePolicy = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{
		From:     ptr.To(storagev1alpha1.NamespacesFromSelector),
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"backup": "allowed"}},
	}}
	if err := kube.Create(ctx, bs); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*storagev1alpha1.Repository{
		repository("app-a", "apps", "app-a", storagev1alpha1.DeletionPolicyWipeOut),
		repository("app-b", "apps", "app-b", storagev1alpha1.DeletionPolicyWipeOut),
		repository("sneaky", "other", "sneaky", storagev1alpha1.DeletionPolicyDelete),
	} {
		if err := kube.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	waitRepoReason(t, kube, "apps", "app-a", corev1.ConditionFalse, "EncryptionSecretNotFound")
	for _, ns := range []string{"apps", "other"} {
		if err := kube.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: ns},
			Data:       map[string][]byte{"RESTIC_PASSWORD": []byte("correct horse battery staple")},
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitRepoReason(t, kube, "apps", "app-a", corev1.ConditionTrue, string(storagev1alpha1.ReasonRepositoryInitializationSucceeded))
	waitRepoReason(t, kube, "apps", "app-b", corev1.ConditionTrue, string(storagev1alpha1.ReasonRepositoryInitializationSucceeded))
	waitRepoReason(t, kube, "other", "sneaky", corev1.ConditionFalse, "NamespaceNotAllowed")

	if err := kube.Create(ctx, repository("nested", "apps", "app-a/inner", storagev1alpha1.DeletionPolicyWipeOut)); err != nil {
		t.Fatal(err)
	}
	waitRepoReason(t, kube, "apps", "nested", corev1.ConditionFalse, "PathOverlap")

	root := filepath.Join(host, "backups")
	rec := &storagev1alpha1.Repository{}
	b, err := os.ReadFile(filepath.Join(root, "app-a", "repository.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, rec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("apps/app-a", rec.Namespace+"/"+rec.Name); diff != "" {
		t.Errorf("repository.yaml names: -want +got:\n%s", diff)
	}
	for _, p := range []string{"sneaky", "app-a/inner"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("a refused repository wrote %q", p)
		}
	}
	poll(t, time.Minute, "metadata.yaml does not list the repositories", func(context.Context) (bool, error) {
		b, err := os.ReadFile(filepath.Join(root, layout.MetadataKey))
		return err == nil && strings.Contains(string(b), "app-a") && strings.Contains(string(b), "app-b"), nil
	})

	// Data beside the records, as backups will leave.
	for _, p := range []string{"app-a/repository/v1/s/dump/config", "app-b/repository/v1/s/dump/config", "app-b/repository/v1/s/dump/data/ab/abcdef"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := digest(t, filepath.Join(root, "app-b"))
	// The refused overlapping repository goes first; its deletion must not
	// touch app-a, whose path it overlaps.
	if err := kube.Delete(ctx, repository("nested", "apps", "", "")); err != nil {
		t.Fatal(err)
	}
	if err := kube.Delete(ctx, repository("app-a", "apps", "", "")); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the wiped-out repository is still there", func(ctx context.Context) (bool, error) {
		_, ok := repoCondition(ctx, kube, "apps", "app-a")
		_, nested := repoCondition(ctx, kube, "apps", "nested")
		return !ok && !nested, nil
	})
	if left := digest(t, filepath.Join(root, "app-a")); len(left) > 0 {
		t.Errorf("WipeOut left files in app-a: %v", left)
	}
	if diff := cmp.Diff(before, digest(t, filepath.Join(root, "app-b"))); diff != "" {
		t.Errorf("WipeOut of app-a changed app-b: -before +after:\n%s", diff)
	}

	// A path whose record another cluster's Repository of the same name
	// wrote is refused until this one is told to adopt it.
	twin := repository("app-c", "apps", "app-c", storagev1alpha1.DeletionPolicyDelete)
	twin.UID = "uid-of-another-cluster"
	twin.Kind, twin.APIVersion = storagev1alpha1.RepositoryKind, storagev1alpha1.GroupVersion.String()
	theirs, err := yaml.Marshal(twin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "app-c"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "app-c", "repository.yaml"), theirs, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, repository("app-c", "apps", "app-c", storagev1alpha1.DeletionPolicyDelete)); err != nil {
		t.Fatal(err)
	}
	waitRepoReason(t, kube, "apps", "app-c", corev1.ConditionFalse, "PathOwned")
	if b, err := os.ReadFile(filepath.Join(root, "app-c", "repository.yaml")); err != nil || string(b) != string(theirs) {
		t.Errorf("the refused Repository changed the other owner's record: %v", err)
	}
	ours := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "app-c"}}
	update(t, kube, ours, func() { ours.Annotations = map[string]string{storagev1alpha1.AnnotationAdopt: "true"} })
	waitRepoReason(t, kube, "apps", "app-c", corev1.ConditionTrue, string(storagev1alpha1.ReasonRepositoryInitializationSucceeded))
	poll(t, time.Minute, "the adopted record does not name its new owner", func(context.Context) (bool, error) {
		b, err := os.ReadFile(filepath.Join(root, "app-c", "repository.yaml"))
		got := &storagev1alpha1.Repository{}
		return err == nil && yaml.Unmarshal(b, got) == nil && got.UID == ours.UID, nil
	})
	t.Logf("checked: path app-c, owned by another object, was refused (PathOwned) and adopted once annotated")
}
