package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/verify"
)

// restoreRequest is what a user asks of `stashplane restore snapshot`.
type restoreRequest struct {
	// Name of the RestoreSession; empty derives one from the Snapshot.
	Name string
	// ToNamespace is where the workload is restored (or recreated).
	ToNamespace string
	// PasswordSecret is a Secret of ToNamespace holding RESTIC_PASSWORD.
	PasswordSecret string
	// PasswordFile, when set, is read into PasswordSecret, which is made
	// (with ToNamespace when missing).
	PasswordFile string
	// Repository whose newest Succeeded Snapshot "latest" names.
	Repository string
	// Addon overrides the addon chosen by the Snapshot's workload kind.
	Addon string
	// Overwrite replaces objects that exist; DryRun only checks them.
	Overwrite, DryRun bool
	// Now names the session when Name is empty.
	Now time.Time
}

// addonFor is the built-in addon that restores a Snapshot of kind.
var addonFor = map[string]string{
	"Deployment": "workload-addon", "StatefulSet": "workload-addon", "DaemonSet": "workload-addon",
	"PersistentVolumeClaim": "pvc-addon", "Namespace": "kubedump-addon",
}

// plannedRestore is the RestoreSession that brings back a Snapshot as the
// request asks: into the workload the Snapshot holds (spec.appRef), in
// ToNamespace, with the addon of that workload's kind, recreating the
// objects when the Snapshot holds its resource manifests and restoring
// every data component. It refuses what the controller would refuse
// later, so that nothing is created for a request that cannot run.
func plannedRestore(s *storagev1alpha1.Snapshot, req restoreRequest) (*corev1alpha1.RestoreSession, error) {
	if s.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		return nil, fmt.Errorf("cannot restore snapshot %q: it is %s, not Succeeded", s.Name, phaseOr(s.Status.Phase))
	}
	app := s.Spec.AppRef
	if app == nil || app.Kind == "" || app.Name == "" {
		return nil, fmt.Errorf("cannot restore snapshot %q: it names no workload (spec.appRef); write a RestoreSession that names the target", s.Name)
	}
	addon := req.Addon
	if addon == "" {
		addon = addonFor[app.Kind]
	}
	if addon == "" {
		return nil, fmt.Errorf("cannot restore snapshot %q of a %s: no built-in addon restores that kind; name one with --addon", s.Name, app.Kind)
	}
	toNS := req.ToNamespace
	if toNS == "" {
		toNS = s.Namespace
	}
	if toNS != s.Namespace && req.PasswordSecret == "" {
		return nil, fmt.Errorf("cannot restore snapshot %q into namespace %q: a restore from another namespace brings its own password; name a Secret of %q holding RESTIC_PASSWORD with --password-secret", s.Name, toNS, toNS)
	}
	var manifests, data bool
	for name := range s.Status.Components {
		if name == storagev1alpha1.ComponentManifest {
			manifests = true
		} else {
			data = true
		}
	}
	if req.DryRun && !manifests {
		return nil, fmt.Errorf("cannot dry-run snapshot %q: it holds no resource manifests (component %q) to check", s.Name, storagev1alpha1.ComponentManifest)
	}
	if req.Overwrite && !manifests {
		return nil, fmt.Errorf("cannot restore snapshot %q with --overwrite: it holds no resource manifests (component %q) to replace objects with", s.Name, storagev1alpha1.ComponentManifest)
	}
	var tasks []corev1alpha1.TaskReference
	if manifests {
		t := corev1alpha1.TaskReference{Name: "manifest-restore"}
		if req.DryRun || req.Overwrite {
			t.Params = &runtime.RawExtension{Raw: fmt.Appendf(nil, `{"dryRun":%t,"overwriteResources":%t}`, req.DryRun, req.Overwrite)}
		}
		tasks = append(tasks, t)
	}
	if data && !req.DryRun {
		tasks = append(tasks, corev1alpha1.TaskReference{Name: "logical-backup-restore"})
	}
	name := req.Name
	if name == "" {
		name = naming.Bound("restore-"+s.Name, "-"+strconv.FormatInt(req.Now.Unix(), 10), 63)
	}
	target := &storagev1alpha1.TypedObjectReference{APIGroup: app.APIGroup, Kind: app.Kind, Name: app.Name}
	if app.Kind == "Namespace" {
		// A namespace's objects go into the namespace restored into.
		target.Name = toNS
	}
	rs := &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: toNS},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target: target,
			DataSource: corev1alpha1.RestoreDataSource{
				Repository: s.Spec.Repository,
				Snapshot:   s.Name,
			},
			Addon: &corev1alpha1.AddonInfo{Name: addon, Tasks: tasks},
		},
	}
	if toNS != s.Namespace {
		rs.Spec.DataSource.Namespace = s.Namespace
	}
	if req.PasswordSecret != "" {
		rs.Spec.DataSource.EncryptionSecret = &storagev1alpha1.ObjectReference{Name: req.PasswordSecret}
	}
	return rs, nil
}

func phaseOr(p storagev1alpha1.SnapshotPhase) string {
	if p == "" {
		return "without a phase"
	}
	return string(p)
}

// restoreSnapshotCommand is the user's restore: it plans a RestoreSession
// from a Snapshot, makes the namespace it restores into when it is
// missing, and follows the session to its outcome.
func restoreSnapshotCommand() *cobra.Command {
	var namespace, output string
	var req restoreRequest
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "snapshot SNAPSHOT|latest",
		Short: "Restore a Snapshot into its workload, or recreate the workload in another namespace, and follow it",
		Long: "Create a RestoreSession for SNAPSHOT (in -n) that restores the workload it holds into " +
			"--to-namespace (made, with the password Secret, from --password-file), recreating the workload's objects when the Snapshot " +
			"holds its resource manifests, then follow it to its outcome, printing each change. " +
			"The command fails when the restore does; interrupting it leaves the restore running.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			progress := cmd.OutOrStdout()
			if output != "" {
				progress = cmd.ErrOrStderr()
			}
			req.Now = time.Now()
			if req.PasswordFile != "" && req.PasswordSecret == "" {
				req.PasswordSecret = "restic-password"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rs, err := startRestore(ctx, c, namespace, args[0], req, progress)
			if err != nil {
				return err
			}
			done, err := followRestore(ctx, c, rs, progress)
			if done != nil {
				if _, werr := writeData(cmd.OutOrStdout(), done, output); werr != nil {
					return werr
				}
			}
			return err
		},
	}
	namespaceFlag(cmd, &namespace, "snapshot")
	outputFlag(cmd, &output)
	cmd.Flags().StringVar(&req.ToNamespace, "to-namespace", "", "namespace to restore into, made when missing (default: the snapshot's)")
	cmd.Flags().StringVar(&req.PasswordSecret, "password-secret", "", "Secret of --to-namespace holding RESTIC_PASSWORD; needed when it is not the snapshot's namespace (default with --password-file: restic-password)")
	cmd.Flags().StringVar(&req.PasswordFile, "password-file", "", "file holding the repository password: makes --to-namespace when missing and the --password-secret in it")
	cmd.Flags().StringVar(&req.Name, "name", "", "name of the RestoreSession (default: restore-<snapshot>-<unix time>)")
	cmd.Flags().StringVar(&req.Repository, "repository", "", "with SNAPSHOT \"latest\": the repository whose newest Succeeded snapshot to restore")
	cmd.Flags().StringVar(&req.Addon, "addon", "", "addon that restores (default: the built-in one of the workload's kind)")
	cmd.Flags().BoolVar(&req.Overwrite, "overwrite", false, "replace the objects that exist with the snapshot's (they are kept otherwise)")
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "only ask the API server whether --to-namespace accepts the snapshot's objects; make none of them and restore no data (the namespace and the password Secret that --password-file asks for are still made: the check runs as a Job there)")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "how long to follow the restore")
	return cmd
}

// startRestore checks the request against the cluster, makes the
// namespace and the password Secret when given a password file, and
// creates the RestoreSession.
func startRestore(ctx context.Context, c client.Client, namespace, snapshot string, req restoreRequest, progress io.Writer) (*corev1alpha1.RestoreSession, error) {
	s := &storagev1alpha1.Snapshot{}
	if snapshot == corev1alpha1.SnapshotLatest {
		if req.Repository == "" {
			return nil, fmt.Errorf("cannot restore the latest snapshot: name its repository with --repository")
		}
		snaps, err := repositorySnapshots(ctx, c, namespace, req.Repository)
		if err != nil {
			return nil, err
		}
		if s = verify.Latest(snaps, req.Repository); s == nil {
			return nil, fmt.Errorf("cannot restore the latest snapshot: repository %q in namespace %q has no Succeeded snapshot", req.Repository, namespace)
		}
		fmt.Fprintf(progress, "latest Succeeded snapshot of repository %s: %s\n", req.Repository, s.Name)
	} else if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: snapshot}, s); err != nil {
		return nil, fmt.Errorf("cannot get snapshot %q in namespace %q: %w", snapshot, namespace, err)
	}
	rs, err := plannedRestore(s, req)
	if err != nil {
		return nil, err
	}
	if req.PasswordFile != "" {
		if err := ensurePassword(ctx, c, rs.Namespace, req.PasswordSecret, req.PasswordFile, progress); err != nil {
			return nil, err
		}
	}
	if ref := rs.Spec.DataSource.EncryptionSecret; ref != nil {
		secret := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: rs.Namespace, Name: ref.Name}, secret); err != nil {
			return nil, fmt.Errorf("cannot get secret %q in namespace %q: %w (give the repository password with --password-file, or create the Secret with key RESTIC_PASSWORD)", ref.Name, rs.Namespace, err)
		}
		if len(secret.Data["RESTIC_PASSWORD"]) == 0 {
			return nil, fmt.Errorf("cannot restore with secret %q of namespace %q: it has no RESTIC_PASSWORD", ref.Name, rs.Namespace)
		}
	}
	if err := c.Create(ctx, rs); err != nil {
		return nil, fmt.Errorf("cannot create restoresession %q in namespace %q: %w", rs.Name, rs.Namespace, err)
	}
	var tasks []string
	for _, t := range rs.Spec.Addon.Tasks {
		tasks = append(tasks, t.Name)
	}
	fmt.Fprintf(progress, "restoresession %s/%s created: snapshot %s/%s into %s %q with %s (%s)\n",
		rs.Namespace, rs.Name, s.Namespace, s.Name, rs.Spec.Target.Kind, rs.Spec.Target.Name, rs.Spec.Addon.Name, strings.Join(tasks, ", "))
	return rs, nil
}

// followRestore prints each change of the session's phase, conditions and
// components until it ends, and returns it as it ended: an error when it
// did not succeed.
func followRestore(ctx context.Context, c client.Client, rs *corev1alpha1.RestoreSession, w io.Writer) (*corev1alpha1.RestoreSession, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	seen := map[string]bool{}
	for {
		got := &corev1alpha1.RestoreSession{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(rs), got); err == nil {
			for _, line := range restoreProgress(got) {
				if !seen[line] {
					seen[line] = true
					fmt.Fprintln(w, line)
				}
			}
			switch got.Status.Phase {
			case corev1alpha1.RestoreSucceeded:
				return got, nil
			case corev1alpha1.RestoreFailed, corev1alpha1.RestoreInvalid:
				return got, fmt.Errorf("restoresession %s/%s %s", got.Namespace, got.Name, got.Status.Phase)
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cannot follow restoresession %q: %w (it goes on; kubectl get restoresession %s -n %s)", rs.Name, ctx.Err(), rs.Name, rs.Namespace)
		case <-tick.C:
		}
	}
}

// restoreProgress is what a user follows of a session: its phase, its
// conditions, each component's phase and, once the objects are made, how
// many of each result.
func restoreProgress(rs *corev1alpha1.RestoreSession) []string {
	var out []string
	for _, c := range rs.Status.Conditions {
		line := fmt.Sprintf("%s=%s %s", c.Type, c.Status, c.Reason)
		if c.Message != "" {
			line += ": " + c.Message
		}
		out = append(out, line)
	}
	names := make([]string, 0, len(rs.Status.Components))
	for name := range rs.Status.Components {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		comp := rs.Status.Components[name]
		line := fmt.Sprintf("component %s %s", name, comp.Phase)
		if comp.Error != "" {
			line += ": " + comp.Error
		}
		if comp.FilesRestored > 0 && len(comp.Resources) == 0 {
			line += fmt.Sprintf(" (%d files, %s restored)", comp.FilesRestored, storagev1alpha1.FormatSize(comp.BytesRestored))
		}
		if len(comp.Resources) > 0 {
			counts := map[corev1alpha1.ResourceResult]int{}
			for _, r := range comp.Resources {
				counts[r.Result]++
			}
			var parts []string
			for _, r := range []corev1alpha1.ResourceResult{corev1alpha1.ResourceCreated, corev1alpha1.ResourceUpdated, corev1alpha1.ResourceKept, corev1alpha1.ResourceAccepted, corev1alpha1.ResourceRefused} {
				if counts[r] > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
				}
			}
			line += " (objects: " + strings.Join(parts, ", ") + ")"
			for _, r := range comp.Resources {
				if r.Result == corev1alpha1.ResourceRefused {
					out = append(out, fmt.Sprintf("  refused %s %q: %s", r.Kind, r.Name, r.Message))
				}
			}
		}
		out = append(out, line)
	}
	// The phase last: a session's end follows its components'.
	if rs.Status.Phase != "" {
		out = append(out, "phase "+string(rs.Status.Phase))
	}
	return out
}

// ensurePassword makes namespace (when missing) and in it Secret name
// holding the password read from file, as RESTIC_PASSWORD. A Secret of
// that name is used when it holds the same password and refused
// otherwise: nothing that exists is changed. The password is never
// printed.
func ensurePassword(ctx context.Context, c client.Client, namespace, name, file string, progress io.Writer) error {
	password, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cannot read the password file: %w", err)
	}
	password = bytes.TrimRight(password, "\r\n")
	if len(password) == 0 {
		return fmt.Errorf("cannot use password file %q: it is empty", file)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	switch err := c.Create(ctx, ns); {
	case err == nil:
		fmt.Fprintf(progress, "namespace %s created\n", namespace)
	case !kerrors.IsAlreadyExists(err):
		return fmt.Errorf("cannot create namespace %q: %w", namespace, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Data:       map[string][]byte{"RESTIC_PASSWORD": password},
	}
	err = c.Create(ctx, secret)
	switch {
	case err == nil:
		fmt.Fprintf(progress, "secret %s/%s created with the repository password\n", namespace, name)
		return nil
	case !kerrors.IsAlreadyExists(err):
		return fmt.Errorf("cannot create secret %q in namespace %q: %w", name, namespace, err)
	}
	existing := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(secret), existing); err != nil {
		return fmt.Errorf("cannot get secret %q in namespace %q: %w", name, namespace, err)
	}
	if !bytes.Equal(existing.Data["RESTIC_PASSWORD"], password) {
		return fmt.Errorf("cannot use secret %q of namespace %q: it exists and holds another RESTIC_PASSWORD than the password file; name another with --password-secret", name, namespace)
	}
	return nil
}
