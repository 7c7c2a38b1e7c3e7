package hookrun

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// The run's variables, which every hook's action may name as ${NAME}.
const (
	// VarNamespace is the session's namespace.
	VarNamespace = "STASHPLANE_NAMESPACE"
	// VarSessionKind is BackupSession or RestoreSession.
	VarSessionKind = "STASHPLANE_SESSION_KIND"
	// VarSession is the name of the BackupSession or RestoreSession.
	VarSession = "STASHPLANE_SESSION"
	// VarPhase is Running before the work, and Succeeded or Failed after.
	VarPhase = "STASHPLANE_PHASE"
	// VarSnapshots are the Snapshots the run writes or reads, comma
	// separated.
	VarSnapshots = "STASHPLANE_SNAPSHOTS"
	// VarTargetKind, VarTargetName and VarTargetNamespace name the
	// workload backed up or restored into.
	VarTargetKind      = "STASHPLANE_TARGET_KIND"
	VarTargetName      = "STASHPLANE_TARGET_NAME"
	VarTargetNamespace = "STASHPLANE_TARGET_NAMESPACE"
)

// Run is what a session tells its hooks about itself.
type Run struct {
	Kind, Namespace, Session, Phase string
	Snapshots                       []string
	Target                          *storagev1alpha1.TypedObjectReference
}

// Vars are the run's variables.
func (r Run) Vars() map[string]string {
	v := map[string]string{
		VarNamespace: r.Namespace, VarSessionKind: r.Kind, VarSession: r.Session, VarPhase: r.Phase,
		VarSnapshots: strings.Join(r.Snapshots, ","),
	}
	if t := r.Target; t != nil {
		ns := t.Namespace
		if ns == "" {
			ns = r.Namespace
		}
		v[VarTargetKind], v[VarTargetName], v[VarTargetNamespace] = t.Kind, t.Name, ns
	}
	return v
}

// TargetSelector is the label selector of a workload target's pods (a
// Deployment, StatefulSet, DaemonSet or ReplicaSet of apps/v1), or nil for
// a target without pods of its own, such as a PersistentVolumeClaim: a hook
// aimed at its pods must then name a selector.
func TargetSelector(ctx context.Context, kube client.Reader, ns string, t *storagev1alpha1.TypedObjectReference) (labels.Selector, error) {
	if t == nil || t.APIGroup != "apps" {
		return nil, nil
	}
	switch t.Kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
	default:
		return nil, nil
	}
	if t.Namespace != "" {
		ns = t.Namespace
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: t.Kind})
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.Name}, u); err != nil {
		return nil, fmt.Errorf("cannot get %s %q: %w", strings.ToLower(t.Kind), t.Name, err)
	}
	raw, ok, err := unstructured.NestedMap(u.Object, "spec", "selector")
	if err != nil || !ok {
		return nil, fmt.Errorf("cannot read the selector of %s %q", strings.ToLower(t.Kind), t.Name)
	}
	ls := &metav1.LabelSelector{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, ls); err != nil {
		return nil, fmt.Errorf("cannot read the selector of %s %q: %w", strings.ToLower(t.Kind), t.Name, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, fmt.Errorf("cannot read the selector of %s %q: %w", strings.ToLower(t.Kind), t.Name, err)
	}
	return sel, nil
}
