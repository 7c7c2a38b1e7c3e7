package restoresession

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// A startCheck looks at one thing that may refuse a restore before any Job
// exists. It returns the reason and message of the refusal, or "" when the
// restore may go on, and err when the API server could not be asked (the
// session is reconciled again). What a check finds goes into in, for the
// checks after it and for the plan.
type startCheck func(ctx context.Context, r *reconciler, in *startInput) (reason xpv2.ConditionReason, msg string, err error)

// startInput is what the checks see and gather.
type startInput struct {
	rs   *corev1alpha1.RestoreSession
	repo *storagev1alpha1.Repository
	plan plan.Inputs
}

// startChain is the order the checks run in: the session's own shape
// first, then the target, then where the data comes from (the Repository,
// its storage and usage policy, the Snapshot, the encryption Secret), and
// the addon last. A namespace the storage does not admit learns nothing of
// the Snapshots, since checkSource comes before checkSnapshot.
var startChain = []startCheck{checkSpec, checkWholeCluster, checkTarget, checkSource, checkSnapshot, checkEncryptionSecret, checkAddon}

// check runs the chain, stopping at the first refusal, and returns what
// the plan reads.
func (r *reconciler) check(ctx context.Context, rs *corev1alpha1.RestoreSession) (plan.Inputs, xpv2.ConditionReason, string, error) {
	in := &startInput{rs: rs, plan: plan.Inputs{Image: r.image, SessionName: rs.Name}}
	for _, c := range startChain {
		if reason, msg, err := c(ctx, r, in); reason != "" || err != nil {
			return in.plan, reason, msg, err
		}
	}
	return in.plan, "", "", nil
}

// checkSpec: the session names an addon and a target in its own namespace.
func checkSpec(_ context.Context, _ *reconciler, in *startInput) (xpv2.ConditionReason, string, error) {
	rs := in.rs
	switch {
	case rs.Spec.Addon == nil || rs.Spec.Addon.Name == "":
		return corev1alpha1.ReasonRestoreSpecInvalid, "spec.addon names no addon to restore with", nil
	case rs.Spec.Target == nil || rs.Spec.Target.Name == "" || rs.Spec.Target.Kind == "":
		return corev1alpha1.ReasonRestoreSpecInvalid, "spec.target names no target to restore into (a dump of the whole cluster is recreated a namespace at a time: " +
			"the target {kind: Namespace, name: <the session's namespace>} with the kubedump-addon's manifest-restore and its sourceNamespace parameter)", nil
	case rs.Spec.Target.Kind == "Namespace" && rs.Spec.Target.Name != rs.Namespace:
		return corev1alpha1.ReasonRestoreSpecInvalid, fmt.Sprintf("a namespace's objects are restored into the restoresession's own namespace %q, not %q: create the restoresession there", rs.Namespace, rs.Spec.Target.Name), nil
	case rs.Spec.Target.Namespace != "" && rs.Spec.Target.Namespace != rs.Namespace:
		return corev1alpha1.ReasonRestoreSpecInvalid, fmt.Sprintf("the target must be in the restoresession's namespace %q", rs.Namespace), nil
	}
	return "", "", nil
}

// checkWholeCluster: a task recreating a whole dump of the cluster
// (sourceNamespace "*") does so from a namespace the provider lets dump
// the cluster (--cluster-dump-namespaces) and into that namespace's own
// target: it writes into every namespace, as the account the jobTemplate
// names, which the operator lets do so.
func checkWholeCluster(_ context.Context, r *reconciler, in *startInput) (xpv2.ConditionReason, string, error) {
	rs := in.rs
	for _, t := range rs.Spec.Addon.Tasks {
		var p struct {
			SourceNamespace string `json:"sourceNamespace"`
		}
		if t.Params == nil || json.Unmarshal(t.Params.Raw, &p) != nil || p.SourceNamespace != agentapi.SourceNamespaceAll {
			continue
		}
		if !slices.Contains(r.clusterDump, rs.Namespace) {
			return corev1alpha1.ReasonRestoreSpecInvalid, fmt.Sprintf("task %q recreates a whole dump of the cluster (sourceNamespace %q), writing into every namespace; namespace %q may not: "+
				"the provider lets only the namespaces its --cluster-dump-namespaces flag lists do so", t.Name, agentapi.SourceNamespaceAll, rs.Namespace), nil
		}
		if rs.Spec.Target.Kind != "Namespace" {
			return corev1alpha1.ReasonRestoreSpecInvalid, fmt.Sprintf("task %q recreates a whole dump of the cluster (sourceNamespace %q): the target is the session's own namespace, {kind: Namespace, name: %s}", t.Name, agentapi.SourceNamespaceAll, rs.Namespace), nil
		}
	}
	return "", "", nil
}

// checkTarget: the target exists (RestoreTargetFound says so either way);
// a restore into claims a running pod uses writes on that pod's node.
func checkTarget(ctx context.Context, r *reconciler, in *startInput) (xpv2.ConditionReason, string, error) {
	rs, t := in.rs, in.rs.Spec.Target
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: t.APIGroup, Version: "v1", Kind: t.Kind})
	err := sessionrun.Get(ctx, r.kube, r.reader, client.ObjectKey{Namespace: rs.Namespace, Name: t.Name}, u)
	if kerrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		msg := fmt.Sprintf("%s %q does not exist in namespace %q", t.Kind, t.Name, rs.Namespace)
		rec, rerr := recreatesObjects(ctx, r.kube, rs)
		if rerr != nil {
			return "", "", rerr
		}
		if rec.dryRun && rec.data {
			// A dry run makes no target, so data has nowhere to go.
			msg += fmt.Sprintf("; task %q is a dry run (params.dryRun), which makes nothing, so the session's data tasks have no target: run the dry run alone, or without dryRun", rec.task)
			sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreTargetFound, false, corev1alpha1.ReasonRestoreTargetNotFound, msg)
			rs.Status.TargetFound = ptr.To(false)
			return corev1alpha1.ReasonRestoreSpecInvalid, msg, nil
		}
		if rec.dryRun {
			msg += fmt.Sprintf("; task %q checks the snapshot's resource manifests by a dry run and makes none", rec.task)
			sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreTargetFound, false, corev1alpha1.ReasonRestoreTargetRecreating, msg)
			rs.Status.TargetFound = ptr.To(false)
			in.plan.ObjectsOnly = true
			return "", "", nil
		}
		if rec.task != "" {
			// A task recreates it from the Snapshot's resource manifests;
			// its data is planned once it exists (deferredData).
			msg += "; a task of the session recreates it from the snapshot's resource manifests, then its data is restored"
			sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreTargetFound, false, corev1alpha1.ReasonRestoreTargetRecreating, msg)
			rs.Status.TargetFound = ptr.To(false)
			in.plan.ObjectsOnly = true
			return "", "", nil
		}
		sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreTargetFound, false, corev1alpha1.ReasonRestoreTargetNotFound, msg)
		rs.Status.TargetFound = ptr.To(false)
		return corev1alpha1.ReasonRestoreTargetNotFound, msg, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("cannot get target %s %q: %w", t.Kind, t.Name, err)
	}
	sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreTargetFound, true, corev1alpha1.ReasonRestoreTargetFound, "")
	rs.Status.TargetFound = ptr.To(true)
	in.plan.Target = u
	if t.Kind == "StatefulSet" || t.Kind == "Deployment" {
		if in.plan.PodNodes, err = plan.PodNodes(ctx, r.reader, u); err != nil {
			return "", "", err
		}
	}
	return "", "", nil
}

// recreating is what a session's tasks do about resource manifests.
type recreating struct {
	// task is the session's task that recreates objects, or "".
	task string
	// dryRun says that task only checks them (params.dryRun).
	dryRun bool
	// data says the session also restores data.
	data bool
}

// recreatesObjects says whether a task of the session recreates objects
// from the Snapshot's resource manifests (a task of the addon with a
// component, named by the session or, when it names none, run with all),
// whether it is a dry run, and whether the session restores data too.
func recreatesObjects(ctx context.Context, c client.Reader, rs *corev1alpha1.RestoreSession) (recreating, error) {
	var out recreating
	a := &addonsv1alpha1.Addon{}
	if err := c.Get(ctx, client.ObjectKey{Name: rs.Spec.Addon.Name}, a); err != nil {
		return out, client.IgnoreNotFound(err)
	}
	for _, t := range a.Spec.RestoreTasks {
		ref, named := corev1alpha1.TaskReference{}, len(rs.Spec.Addon.Tasks) == 0
		for _, r := range rs.Spec.Addon.Tasks {
			if r.Name == t.Name {
				ref, named = r, true
			}
		}
		switch {
		case !named:
		case t.Component == "":
			out.data = true
		case out.task == "":
			out.task, out.dryRun = t.Name, dryRunParam(ref, t)
		}
	}
	return out, nil
}

// dryRunParam reads a task's dryRun parameter, a boolean or, as
// KubeStash's manifests write parameters, the string "true".
// A task that does not set it takes the addon task's default.
func dryRunParam(ref corev1alpha1.TaskReference, t addonsv1alpha1.Task) bool {
	var p struct {
		DryRun any `json:"dryRun"`
	}
	if ref.Params != nil && len(ref.Params.Raw) > 0 && json.Unmarshal(ref.Params.Raw, &p) == nil && p.DryRun != nil {
		return p.DryRun == true || p.DryRun == "true"
	}
	for _, param := range t.Parameters {
		if param.Name == "dryRun" {
			return param.Default == "true"
		}
	}
	return false
}

// checkSource: the Repository and its BackupStorage exist and the storage
// admits the session's namespace (source).
func checkSource(ctx context.Context, r *reconciler, in *startInput) (xpv2.ConditionReason, string, error) {
	repo, reason, msg, err := r.source(ctx, in.rs, &in.plan)
	in.repo = repo
	return reason, msg, err
}

// checkSnapshot: the Snapshot (a name, or "latest") exists and Succeeded.
func checkSnapshot(ctx context.Context, r *reconciler, in *startInput) (xpv2.ConditionReason, string, error) {
	ds := in.rs.Spec.DataSource
	snaps := &storagev1alpha1.SnapshotList{}
	if err := r.kube.List(ctx, snaps, client.InNamespace(repositoryNamespace(in.rs))); err != nil {
		return "", "", fmt.Errorf("cannot list snapshots: %w", err)
	}
	snap, reason, msg := resolveSnapshot(ds.Snapshot, ds.Repository, snaps.Items)
	if reason != "" {
		// A Snapshot that succeeded a moment ago may not be in the cache
		// yet, or not as Succeeded: the API server decides.
		if err := r.reader.List(ctx, snaps, client.InNamespace(repositoryNamespace(in.rs))); err != nil {
			return "", "", fmt.Errorf("cannot list snapshots: %w", err)
		}
		snap, reason, msg = resolveSnapshot(ds.Snapshot, ds.Repository, snaps.Items)
	}
	in.plan.Snapshot = snap
	return reason, msg, nil
}

// checkEncryptionSecret: the encryption Secret holds a password; a
// restore from another namespace names its own, since the Repository's is
// never copied out of its namespace.
func checkEncryptionSecret(ctx context.Context, r *reconciler, in *startInput) (xpv2.ConditionReason, string, error) {
	rs, ds, repoNS := in.rs, in.rs.Spec.DataSource, repositoryNamespace(in.rs)
	secret := in.repo.Spec.EncryptionSecret.Name
	switch {
	case ds.EncryptionSecret != nil && ds.EncryptionSecret.Namespace != "" && ds.EncryptionSecret.Namespace != rs.Namespace:
		return corev1alpha1.ReasonRestoreEncryptionSecretRequired, fmt.Sprintf("spec.dataSource.encryptionSecret.namespace %q: the restore Jobs run in namespace %q and mount the Secret from there; name a Secret of that namespace holding %s",
			ds.EncryptionSecret.Namespace, rs.Namespace, passwordKey), nil
	case ds.EncryptionSecret != nil && ds.EncryptionSecret.Name != "":
		secret = ds.EncryptionSecret.Name
	case repoNS != rs.Namespace:
		return corev1alpha1.ReasonRestoreEncryptionSecretRequired, fmt.Sprintf("restoring from repository %s/%s needs spec.dataSource.encryptionSecret: a Secret in namespace %q holding %s (the repository's own Secret is never copied out of its namespace)",
			repoNS, ds.Repository, rs.Namespace, passwordKey), nil
	}
	s := &corev1.Secret{}
	err := sessionrun.Get(ctx, r.kube, r.reader, client.ObjectKey{Namespace: rs.Namespace, Name: secret}, s)
	if kerrors.IsNotFound(err) {
		return corev1alpha1.ReasonRestoreEncryptionSecretNotFound, fmt.Sprintf("encryption secret %q does not exist", secret), nil
	}
	if err != nil {
		return "", "", fmt.Errorf("cannot get encryption secret %q: %w", secret, err)
	}
	if len(s.Data[passwordKey]) == 0 {
		return corev1alpha1.ReasonRestoreEncryptionSecretNotFound, fmt.Sprintf("encryption secret %q holds no %s", secret, passwordKey), nil
	}
	return "", "", nil
}

// checkAddon: the addon is installed; its tasks are checked by the plan.
func checkAddon(ctx context.Context, r *reconciler, in *startInput) (xpv2.ConditionReason, string, error) {
	var err error
	if in.plan.Catalog, err = render.LoadCatalog(ctx, r.kube); err != nil {
		return "", "", err
	}
	if _, err := in.plan.Catalog.Addon(in.rs.Spec.Addon.Name); err != nil {
		return corev1alpha1.ReasonRestoreSpecInvalid, err.Error(), nil
	}
	return "", "", nil
}
