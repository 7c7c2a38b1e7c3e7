package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/trigger"
	"github.com/stashplane/stashplane/internal/verify"
)

// passwordResult is what `stashplane password -o json` prints.
type passwordResult struct {
	Succeeded     bool                  `json:"succeeded"`
	SecretUpdated bool                  `json:"secretUpdated"`
	Message       string                `json:"message"`
	Report        *agent.PasswordReport `json:"report"`
}

// A Repository's password changed with `stashplane password`, as an
// operator rotates it, with the change interrupted half way:
//
//   - list shows the one key and the manifest the Secret's password opens;
//   - an add stopped by its timeout leaves the Repository held: a backup
//     started meanwhile waits (WaitingForPrune, naming the hold), and the
//     Secret still holds the old password;
//   - the add run again without the password finishes the change: the
//     Secret holds the new password, the hold and the change's Secret are
//     gone, the waiting backup succeeds, and the manifest written under the
//     old password opens with the new one;
//   - remove drops the old key: plain restic no longer opens the
//     repository with the old password, and a verification of the first
//     Snapshot succeeds with the new one;
//   - an add of the password the Secret already holds is refused.
func TestPasswordChange(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	storageDir, _ := seedAppBackup(t, kube, 40, 17)
	first := firstSnapshot(t, kube)
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	password := func(stdin string, args ...string) (*passwordResult, string, error) {
		cmd := exec.Command(filepath.Join(bin, "stashplane"), append([]string{"password"}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.KubeconfigPath())
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		res := &passwordResult{}
		if jerr := json.Unmarshal([]byte(stdout.String()), res); jerr != nil {
			res = nil
		}
		return res, stdout.String() + stderr.String(), err
	}
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	const newPassword = "the app's new password, 2026-12"

	res, out, err := password("", "list", "app", "-n", "default", "-o", "json")
	if err != nil || res == nil || res.Report == nil {
		t.Fatalf("stashplane password list: %v\n%s", err, out)
	}
	if len(res.Report.Repositories) != 1 || len(res.Report.Repositories[0].Keys) != 1 || !res.Report.Repositories[0].Keys[0].Current ||
		res.Report.Manifests.Total != 1 || res.Report.Manifests.Current != 1 {
		t.Fatalf("list: want one restic repository with its one key current and one manifest the password opens:\n%s", out)
	}

	// Stopped by its timeout before its Job ended, the add leaves the
	// Repository held and the Secret as it was.
	_, out, err = password(newPassword, "add", "app", "-n", "default", "--password-file", "-", "--timeout", "6s")
	if err == nil {
		t.Fatalf("the add ended within 6 s; the test needs it stopped half way:\n%s", out)
	}
	t.Logf("the interrupted add:\n%s", out)
	hold := &batchv1.Job{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: naming.PruneJob("app")}, hold); err != nil || hold.Labels[plan.LabelHoldFor] != "password" || !ptr.Deref(hold.Spec.Suspend, false) {
		t.Fatalf("after the interrupted add, the repository is not held: %v, %v", err, hold.Labels)
	}
	if got := encryptionPassword(t, kube); got != agentPassword {
		t.Fatalf("the interrupted add changed the encryption secret")
	}
	bc := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-backup"}, bc); err != nil {
		t.Fatal(err)
	}
	second, err := trigger.Create(ctx, kube, bc, "nightly", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the backup during the hold did not wait for it", func(ctx context.Context) (bool, error) {
		bs := &corev1alpha1.BackupSession{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(second), bs); err != nil {
			return false, nil
		}
		c := bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured)
		if bs.Status.Phase == corev1alpha1.BackupSessionSucceeded || bs.Status.Phase == corev1alpha1.BackupSessionFailed {
			t.Fatalf("the backup during the hold ran: %s", bs.Status.Phase)
		}
		return c.Reason == corev1alpha1.ReasonWaitingForPrune && strings.Contains(c.Message, "password change"), nil
	})
	// The interrupted add's Job goes on in the cluster; the rerun waits
	// for it to end before its own.
	poll(t, 2*time.Minute, "the interrupted add's job did not end", func(ctx context.Context) (bool, error) {
		j := &batchv1.Job{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: naming.PasswordJob("app")}, j); err != nil {
			return false, nil
		}
		return plan.JobFinished(j), nil
	})

	res, out, err = password("", "add", "app", "-n", "default", "-o", "json")
	if err != nil || res == nil || !res.Succeeded || !res.SecretUpdated {
		t.Fatalf("finishing the add: %v\n%s", err, out)
	}
	t.Logf("the add finished:\n%s", out)
	if keys := res.Report.Repositories[0].Keys; len(keys) != 2 || res.Report.Manifests.Current != res.Report.Manifests.Total {
		t.Errorf("after the add: want two keys and every manifest open with the new password:\n%s", out)
	}
	for _, k := range res.Report.Repositories[0].Keys {
		if k.Current != (k.UserName == "stashplane") {
			t.Errorf("after the add, the key marked current is not the new password's (made by stashplane): %+v", k)
		}
	}
	if got := encryptionPassword(t, kube); got != newPassword {
		t.Errorf("the encryption secret does not hold the new password")
	}
	for _, o := range []client.Object{&batchv1.Job{}, &corev1.Secret{}} {
		name := naming.PruneJob("app")
		if _, ok := o.(*corev1.Secret); ok {
			name = naming.PasswordSecret("app")
		}
		poll(t, time.Minute, name+" was not removed", func(ctx context.Context) (bool, error) {
			return kerrors.IsNotFound(kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, o)), nil
		})
	}
	poll(t, 3*time.Minute, "the backup that waited did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, second.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	if _, err := resticWith(repoDir, agentPassword, "key", "list"); err != nil {
		t.Errorf("before remove, the old password no longer opens the repository: %v", err)
	}

	res, out, err = password("", "remove", "app", "-n", "default", "-o", "json")
	if err != nil || res == nil || !res.Succeeded || len(res.Report.Repositories[0].Removed) != 1 || len(res.Report.Repositories[0].Keys) != 1 {
		t.Fatalf("stashplane password remove: want one key removed and one left: %v\n%s", err, out)
	}
	if out, err := resticWith(repoDir, agentPassword, "key", "list"); err == nil || !strings.Contains(out, "wrong password") {
		t.Errorf("after remove, the old password still opens the repository: %v\n%s", err, out)
	}
	if _, err := resticWith(repoDir, newPassword, "key", "list"); err != nil {
		t.Errorf("after remove, the new password does not open the repository: %v", err)
	}

	_, out, err = password("", "list", "app", "-n", "default")
	if err != nil || !strings.Contains(out, "content manifests: 2, 2 open with the repository's password") {
		t.Errorf("stashplane password list: %v; want both manifests open with the new password:\n%s", err, out)
	}
	t.Logf("stashplane password list:\n%s", out)

	if err := kube.Create(ctx, restoreOnlyVerifier()); err != nil {
		t.Fatal(err)
	}
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: first}, snap); err != nil {
		t.Fatal(err)
	}
	vs := verify.Session("default", "app-verifier", snap, time.Now())
	if err := kube.Create(ctx, vs); err != nil {
		t.Fatal(err)
	}
	vs = (&verificationTest{t: t, kube: kube}).finished(vs.Name)
	if vs.Status.Phase != corev1alpha1.VerificationSessionSucceeded {
		t.Errorf("verification of the snapshot taken under the old password: %s\n%s", vs.Status.Phase, verificationStory(kube, vs))
	}

	if _, out, err := password(newPassword, "add", "app", "-n", "default", "--password-file", "-"); err == nil || !strings.Contains(out, "already holds this one") {
		t.Errorf("an add of the password the secret holds: %v, %q; want a refusal", err, out)
	}
}

// encryptionPassword is the password the seed's encryption Secret holds.
func encryptionPassword(t *testing.T, kube client.Client) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "restic-password"}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data[storagev1alpha1.SecretKeyResticPassword])
}

// resticWith runs the host's restic on repo with password.
func resticWith(repo, password string, args ...string) (string, error) {
	bin, err := devclustertest.BinDir()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(bin, "restic"), append([]string{"-r", repo, "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
