package backupconfiguration

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/cachestore"
	"github.com/stashplane/stashplane/internal/retention"
	"github.com/stashplane/stashplane/internal/schedule"
	"github.com/stashplane/stashplane/internal/tenancy"
)

// A check looks at one thing a user can get wrong in a configuration. It
// returns what is wrong, in words the user can act on, and whether the
// configuration itself is at fault (invalid: fixing it means editing the
// configuration) or a reference it makes is not there yet (not ready: it
// may come).
type check func(ctx context.Context, in *input) (msg string, invalid bool, err error)

// input is what the checks see.
type input struct {
	kube     client.Reader
	renderer *render.Renderer
	// ambient are the namespaces that may use storages without a Secret.
	ambient []string
	// clusterDump are the namespaces that may dump the whole cluster.
	clusterDump []string
	bc          *corev1alpha1.BackupConfiguration
	// status collects the per-backend and target findings the checks make.
	status *corev1alpha1.BackupConfigurationStatus
}

// chain is the order the checks run in: the configuration's own shape first
// (nothing else is worth checking before), then what it refers to.
var chain = []check{checkShape, checkSchedules, checkTasks, checkTarget, checkDefaultStorage, checkBackends, checkHooks}

// run evaluates the chain and stops at the first failed check.
func run(ctx context.Context, in *input) (string, bool, error) {
	for _, c := range chain {
		msg, invalid, err := c(ctx, in)
		if err != nil || msg != "" {
			return msg, invalid, err
		}
	}
	return "", false, nil
}

// checkShape: sessions and backends exist, names are unique, every
// repository names a known backend, and no two repositories share a
// directory of the same backend.
func checkShape(_ context.Context, in *input) (string, bool, error) {
	spec := in.bc.Spec
	if len(spec.Backends) == 0 || len(spec.Sessions) == 0 {
		return "a configuration needs at least one backend and one session", true, nil
	}
	backends := map[string]bool{}
	for _, b := range spec.Backends {
		if backends[b.Name] {
			return fmt.Sprintf("backend name %q is used twice", b.Name), true, nil
		}
		backends[b.Name] = true
	}
	sessions, repos, dirs := map[string]bool{}, map[string]bool{}, map[string]string{}
	for _, s := range spec.Sessions {
		if sessions[s.Name] {
			return fmt.Sprintf("session name %q is used twice", s.Name), true, nil
		}
		sessions[s.Name] = true
		if len(s.Repositories) == 0 {
			return fmt.Sprintf("session %q has no repository", s.Name), true, nil
		}
		for _, r := range s.Repositories {
			if !backends[r.Backend] {
				return fmt.Sprintf("repository %q of session %q names backend %q, which the configuration does not list", r.Name, s.Name, r.Backend), true, nil
			}
			if repos[r.Name] {
				return fmt.Sprintf("repository name %q is used twice", r.Name), true, nil
			}
			repos[r.Name] = true
			if ns := r.EncryptionSecret.Namespace; ns != "" && ns != in.bc.Namespace {
				return fmt.Sprintf("repository %q: encryptionSecret.namespace %q: the backup Jobs run in the configuration's namespace %q and mount the password Secret from there; name a Secret of that namespace", r.Name, ns, in.bc.Namespace), true, nil
			}
			if r.RepositoryPath() == "" {
				return fmt.Sprintf("repository %q: directory %q names the storage's root; name a directory in it", r.Name, r.Directory), true, nil
			}
			key := r.Backend + "\x00" + strings.Trim(path.Clean("/"+r.Directory), "/")
			if other, ok := dirs[key]; ok {
				return fmt.Sprintf("repositories %q and %q share directory %q of backend %q", other, r.Name, r.Directory, r.Backend), true, nil
			}
			dirs[key] = r.Name
		}
	}
	return "", false, nil
}

func checkSchedules(_ context.Context, in *input) (string, bool, error) {
	for _, s := range in.bc.Spec.Sessions {
		if s.Scheduler == nil || s.Scheduler.Schedule == "" {
			return fmt.Sprintf("session %q has no schedule", s.Name), true, nil
		}
		if _, err := schedule.Parse(s.Scheduler.Schedule); err != nil {
			return fmt.Sprintf("session %q: schedule %q: %v", s.Name, s.Scheduler.Schedule, err), true, nil
		}
	}
	return "", false, nil
}

// checkTasks: each session's addon tasks exist and their parameters satisfy
// the Function's schema; CUE's position and reason go into the message.
func checkTasks(ctx context.Context, in *input) (string, bool, error) {
	for _, s := range in.bc.Spec.Sessions {
		if s.Addon == nil {
			return fmt.Sprintf("session %q names no addon", s.Name), true, nil
		}
		if err := render.ValidateTasks(ctx, in.kube, in.renderer, render.TaskBackup, s.Addon); err != nil {
			return fmt.Sprintf("session %q: %v", s.Name, err), true, nil
		}
	}
	return "", false, nil
}

// targetKinds are the workloads a configuration can protect.
var targetKinds = map[string]schema.GroupVersionKind{
	"Deployment":            appsv1.SchemeGroupVersion.WithKind("Deployment"),
	"StatefulSet":           appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
	"DaemonSet":             appsv1.SchemeGroupVersion.WithKind("DaemonSet"),
	"PersistentVolumeClaim": corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"),
	// The configuration's own namespace, whose objects the
	// kubedump-addon stores.
	"Namespace": corev1.SchemeGroupVersion.WithKind("Namespace"),
}

func checkTarget(ctx context.Context, in *input) (string, bool, error) {
	t := in.bc.Spec.Target
	found := false
	in.status.TargetFound = &found
	if t == nil {
		return checkClusterDump(in)
	}
	gvk, ok := targetKinds[t.Kind]
	if !ok {
		return fmt.Sprintf("spec.target.kind: target kind %q is not supported: use Deployment, StatefulSet, DaemonSet, PersistentVolumeClaim or Namespace", t.Kind), true, nil
	}
	if t.Kind == "Namespace" && t.Name != in.bc.Namespace {
		return fmt.Sprintf("spec.target: namespace %q is refused: a configuration dumps only its own namespace %q, whose objects its Jobs may read; create the configuration in %q", t.Name, in.bc.Namespace, t.Name), true, nil
	}
	// The Jobs run beside the configuration and mount the target's claims,
	// which only pods of the target's namespace can do.
	if t.Namespace != "" && t.Namespace != in.bc.Namespace {
		return fmt.Sprintf("spec.target.namespace: a target in another namespace (%q) is refused: the backup Jobs run in the configuration's namespace %q and cannot mount its volumes; create the configuration in %q", t.Namespace, in.bc.Namespace, t.Namespace), true, nil
	}
	ns := in.bc.Namespace
	// Only its being there is checked, in the form the cache holds the
	// kind in: metadata, but StatefulSets whole (the blueprints read their
	// claim templates).
	var obj client.Object = cachestore.Metadata(gvk)
	if t.Kind == "StatefulSet" {
		obj = &appsv1.StatefulSet{}
	}
	if err := in.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.Name}, obj); kerrors.IsNotFound(err) {
		return fmt.Sprintf("target %s %s/%s not found", t.Kind, ns, t.Name), false, nil
	} else if err != nil {
		return "", false, fmt.Errorf("cannot get target: %w", err)
	}
	found = true
	return "", false, nil
}

// ClusterDumpAddon is the addon whose configurations without a target
// dump the whole cluster.
const ClusterDumpAddon = "kubedump-addon"

// checkClusterDump: a configuration without a target is a dump of the
// whole cluster, which only the kubedump-addon makes and only a namespace
// the operator lists (--cluster-dump-namespaces) may ask for: it reads
// every Secret of the cluster, so its Jobs run as an account the operator
// grants that (jobTemplate.spec.serviceAccountName).
func checkClusterDump(in *input) (string, bool, error) {
	for _, s := range in.bc.Spec.Sessions {
		if s.Addon == nil || s.Addon.Name != ClusterDumpAddon {
			return fmt.Sprintf("the configuration has no target: session %q would back up nothing; name a workload, a claim or this namespace (spec.target), or dump the whole cluster with the %s", s.Name, ClusterDumpAddon), true, nil
		}
	}
	if !slices.Contains(in.clusterDump, in.bc.Namespace) {
		return fmt.Sprintf("the configuration has no target, so it dumps the whole cluster, every Secret included; namespace %q may not: the provider lets only the namespaces its --cluster-dump-namespaces flag lists (%s) do so", in.bc.Namespace, listOrNone(in.clusterDump)), true, nil
	}
	for _, s := range in.bc.Spec.Sessions {
		if s.Addon.ServiceAccount() == "" {
			return fmt.Sprintf("session %q dumps the whole cluster, which its Jobs read as the account spec.sessions[].addon.jobTemplate.spec.serviceAccountName names; "+
				"name one the operator lets get and list the cluster (Stashplane's own account may read this namespace only)", s.Name), true, nil
		}
	}
	found := true
	in.status.TargetFound = &found
	return "", false, nil
}

// listOrNone is names comma-separated, or "none".
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// checkBackends: each backend's storage exists, admits the configuration's
// namespace and is ready; its retention policy, when named, exists, admits
// the configuration's namespace by its usagePolicy and has a period that
// does not overflow (retention.NamedPolicy, which retention judges by too).
func checkBackends(ctx context.Context, in *input) (string, bool, error) {
	in.status.Backends = nil
	var problem string
	for i, b := range in.bc.Spec.Backends {
		st := corev1alpha1.BackendStatus{Name: b.Name, Storage: &corev1alpha1.StorageStatus{Phase: corev1alpha1.StorageReady}}
		msg, err := storageProblem(ctx, in, b)
		if err != nil {
			return "", false, err
		}
		if msg != "" {
			st.Storage = &corev1alpha1.StorageStatus{Phase: corev1alpha1.StorageNotReady, Reason: msg}
		}
		rp, rpProblem, err := retention.NamedPolicy(ctx, in.kube, in.bc, i)
		if err != nil {
			return "", false, err
		}
		if rp != nil {
			st.RetentionPolicy = &corev1alpha1.RetentionPolicyStatus{Found: ptr.To(rpProblem == ""), Reason: rpProblem}
			if msg == "" {
				msg = rpProblem
			}
		}
		ready := msg == ""
		st.Ready = &ready
		in.status.Backends = append(in.status.Backends, st)
		if problem == "" {
			problem = msg
		}
	}
	return problem, false, nil
}

func storageProblem(ctx context.Context, in *input, b corev1alpha1.BackendReference) (string, error) {
	ns := b.Storage().Namespace
	if ns == "" {
		ns = in.bc.Namespace
	}
	bs := &storagev1alpha1.BackupStorage{}
	// Only read: the cache's own object, not a copy of a status that lists
	// every Repository of the storage, for each configuration checked.
	if err := in.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: b.Storage().Name}, bs, client.UnsafeDisableDeepCopy); kerrors.IsNotFound(err) {
		return fmt.Sprintf("backupstorage %s/%s of backend %q not found", ns, b.Storage().Name, b.Name), nil
	} else if err != nil {
		return "", fmt.Errorf("cannot get backupstorage: %w", err)
	}
	// A storage of another namespace must admit the configuration's by its
	// usagePolicy and be mountable from it (access.go grants the rest).
	refusal, msg, err := tenancy.CheckStorage(ctx, in.kube, bs, in.bc.Namespace, "backup jobs", in.ambient)
	if err != nil {
		return "", err
	}
	if refusal != "" {
		return msg, nil
	}
	if bs.Status.Phase != storagev1alpha1.BackupStorageReady {
		return fmt.Sprintf("backupstorage %s/%s is not ready", ns, bs.Name), nil
	}
	return "", nil
}
