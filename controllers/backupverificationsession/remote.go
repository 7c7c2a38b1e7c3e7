package backupverificationsession

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/sessionrun"
	"github.com/stashplane/stashplane/internal/tenancy"
)

// checkRemote: a verifier whose target is in another namespace (KubeStash's
// verification guide restores into an isolated namespace) restores there
// as a cross-namespace RestoreSession does: the Repository's storage must
// admit that namespace, and that namespace must hold a Secret of the
// Repository's encryption Secret's name with the password, since the
// Repository's own Secret is never copied out of its namespace. Refused
// before anything is made, so that the Snapshot gets no verdict for what
// is the verifier's to fix. Only RestoreOnly verifiers restore elsewhere:
// a Query or Script verifier's Job runs beside the session.
func checkRemote(ctx context.Context, r *reconciler, in *startInput) (stop, error) {
	s, v := in.s, in.verifier
	ns := targetNamespace(s, v)
	if ns == s.Namespace {
		return stop{}, nil
	}
	field := "spec.restoreOption.target.namespace"
	if t := v.Spec.Type; t != "" && t != corev1alpha1.VerificationRestoreOnly {
		return refused(fmt.Sprintf("%s %q: a %s verifier restores into the session's namespace %q (its verifier Job runs there); only a RestoreOnly verifier restores into another namespace",
			field, ns, t, s.Namespace)), nil
	}
	if in.repo == nil {
		return refused(fmt.Sprintf("repository %q does not exist", in.snapshot.Spec.Repository)), nil
	}
	ref := in.repo.Spec.StorageRef
	stNS := ref.Namespace
	if stNS == "" {
		stNS = in.repo.Namespace
	}
	st := &storagev1alpha1.BackupStorage{}
	err := sessionrun.Get(ctx, r.kube, r.api, client.ObjectKey{Namespace: stNS, Name: ref.Name}, st)
	if kerrors.IsNotFound(err) {
		return refused(fmt.Sprintf("backupstorage %s/%s of repository %q does not exist", stNS, ref.Name, in.repo.Name)), nil
	}
	if err != nil {
		return stop{}, fmt.Errorf("cannot get backupstorage %s/%s: %w", stNS, ref.Name, err)
	}
	refusal, msg, err := tenancy.CheckStorage(ctx, r.kube, st, ns, "restore jobs", r.ambient)
	if err != nil {
		return stop{}, err
	}
	if refusal != "" {
		return refused(fmt.Sprintf("%s %q: %s", field, ns, msg)), nil
	}
	name := in.repo.Spec.EncryptionSecret.Name
	secret := &corev1.Secret{}
	err = sessionrun.Get(ctx, r.kube, r.api, client.ObjectKey{Namespace: ns, Name: name}, secret)
	if client.IgnoreNotFound(err) != nil {
		return stop{}, fmt.Errorf("cannot get encryption secret %s/%s: %w", ns, name, err)
	}
	if err != nil || len(secret.Data[storagev1alpha1.SecretKeyResticPassword]) == 0 {
		return refused(fmt.Sprintf("%s %q: restoring there needs a Secret %q in namespace %q holding %s, the password of repository %q (the repository's own Secret is never copied out of namespace %q)",
			field, ns, name, ns, storagev1alpha1.SecretKeyResticPassword, in.repo.Name, s.Namespace)), nil
	}
	return stop{}, nil
}
