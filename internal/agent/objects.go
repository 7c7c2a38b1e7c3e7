package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/resourcedump"
)

// ObjectsFile is the one file of a component of resource manifests: the
// objects as multi-document YAML, stored as a stream (encrypted by restic
// like any data, Secrets included).
const ObjectsFile = "resources.yaml"

// maxObjectsBytes bounds the resource manifests a restore reads into
// memory: they are checked against the content manifest before any object
// is made.
const maxObjectsBytes = 256 << 20

// Reasons a restore of resource manifests fails.
const (
	// ReasonObjectsRefused: the API server refused some objects; each is
	// named in the component's resources.
	ReasonObjectsRefused = "ObjectsRefused"
	// ReasonDataNotRestored: the data of the recreated workloads was not
	// restored, so they are left without pods.
	ReasonDataNotRestored = "DataNotRestored"
	// ReasonTargetNotInManifests: the session's target neither exists nor
	// is among the resource manifests.
	ReasonTargetNotInManifests = "TargetNotInManifests"
	// ReasonSourceNamespaceInvalid: the manifests hold several namespaces
	// and the task names none of them to recreate (sourceNamespace).
	ReasonSourceNamespaceInvalid = "SourceNamespaceInvalid"
	// ReasonManifestsUnreadable: the resource manifests do not parse.
	ReasonManifestsUnreadable = "ManifestsUnreadable"
)

// dataPoll is how often a restore of resource manifests looks at its
// RestoreSession while it waits for the data of the workloads it holds.
var dataPoll = 2 * time.Second

// BackupObjects stores the Kubernetes objects of the workload target (in
// the Snapshot's namespace) and what it needs to run, cleaned of what the
// API server set, as the component's one stream (ObjectsFile), recorded
// like any backup.
//
// A Namespace target is a namespace dump (the kubedump-addon): the
// objects of the Job's own namespace that filter picks. No target at all
// is a dump of the whole cluster (the kubedump-addon of a configuration
// without a target, which only the namespaces the operator lists may
// have): every namespace's objects and the cluster-scoped ones that
// filter picks, read with the account the Job runs as.
func (r *Runner) BackupObjects(ctx context.Context, target resourcedump.Ref, filter resourcedump.ClusterFilter) error {
	return r.BackupStream(ctx, ObjectsFile, func(ctx context.Context) (io.ReadCloser, error) {
		target.Namespace = r.Options.Namespace
		var objs []*unstructured.Unstructured
		var skipped, undiscovered []resourcedump.Skipped
		var err error
		if (target.Kind == "Namespace" || target.Kind == "" && target.Name == "") && r.Discovery != nil {
			filter.Custom, undiscovered, err = resourcedump.DiscoverCustom(r.Discovery)
			if err != nil {
				return nil, err
			}
		}
		switch {
		case target.Kind == "Namespace" && target.Name != target.Namespace:
			return nil, fmt.Errorf("cannot dump namespace %q from namespace %q: a namespace dump runs in the namespace it dumps; create its BackupConfiguration there", target.Name, target.Namespace)
		case target.Kind == "Namespace":
			objs, skipped, err = resourcedump.CollectNamespace(ctx, r.Kube, target.Namespace, filter.NamespaceFilter)
		case target.Kind == "" && target.Name == "":
			objs, skipped, err = resourcedump.CollectCluster(ctx, r.Kube, filter)
		default:
			objs, skipped, err = resourcedump.CollectWorkload(ctx, r.Kube, target)
		}
		if err != nil {
			return nil, err
		}
		skipped = append(undiscovered, skipped...)
		for _, s := range skipped {
			r.Log.Info("left out", "object", s.Object, "why", s.Reason)
		}
		data, err := resourcedump.Encode(objs)
		if err != nil {
			return nil, err
		}
		r.Log.Info("collected", "objects", len(objs), "left out", len(skipped))
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// ObjectsRestore says how a restore recreates objects.
type ObjectsRestore struct {
	// Target is the session's target; the restore fails when it neither
	// exists nor is among the objects.
	Target resourcedump.Ref
	// Overwrite replaces objects that exist; without it they are kept.
	Overwrite bool
	// DryRun only asks the API server to accept each object (a
	// server-side dry run, which validates and admits it, even one that
	// exists), making none; a verification restores so.
	DryRun bool
	// SourceNamespace picks, of a dump holding several namespaces (a
	// dump of the cluster), the one whose objects are recreated;
	// agentapi.SourceNamespaceAll recreates them all, each in its own namespace, with the
	// cluster-scoped ones.
	SourceNamespace string
}

// RestoreObjects recreates the objects of the component's resource
// manifests in the RestoreSession's namespace, after the whole stream
// has been read and matched with the content manifest: in the order a
// cluster needs, a StatefulSet's claims from its templates, workloads
// held without pods. Once the session's other components (the data) have
// ended it starts the held workloads, or, when one failed, leaves them
// without pods and fails. Each object's outcome is reported with the
// component.
func (r *Runner) RestoreObjects(ctx context.Context, o ObjectsRestore) error {
	return r.runRestore(ctx, func(ctx context.Context, t *target, errs *bridgeErrors, res *restoreResult, running func() error, ph *phases) error {
		var buf bytes.Buffer
		err := r.restoreStream(ctx, t, errs, res, running, ph, ObjectsFile, func(_ context.Context, rd io.Reader) error {
			n, err := io.Copy(&buf, io.LimitReader(rd, maxObjectsBytes+1))
			if err == nil && n > maxObjectsBytes {
				err = fmt.Errorf("the resource manifests are larger than %d MiB", maxObjectsBytes>>20)
			}
			return err
		})
		if err != nil {
			return err
		}
		return r.recreate(ctx, buf.Bytes(), o, res)
	})
}

// recreate makes the objects, waits for the data and starts the workloads.
func (r *Runner) recreate(ctx context.Context, data []byte, o ObjectsRestore, res *restoreResult) error {
	objs, err := resourcedump.Decode(data)
	if err != nil {
		return &reasonError{reason: ReasonManifestsUnreadable, msg: err.Error()}
	}
	dest := r.sessionNamespace()
	objs, from, err := fromNamespace(objs, o.SourceNamespace, o.DryRun)
	if err != nil {
		return &reasonError{reason: ReasonSourceNamespaceInvalid, msg: err.Error()}
	}
	switch {
	case o.SourceNamespace == agentapi.SourceNamespaceAll:
	case from != "":
		resourcedump.Retarget(objs, from, dest)
	default:
		retargetEach(objs, dest)
	}
	resourcedump.Order(objs)
	outcomes, held := resourcedump.Apply(ctx, r.Kube, objs, resourcedump.ApplyOptions{Update: o.Overwrite, Hold: !o.DryRun, DryRun: o.DryRun})
	if o.DryRun {
		for i := range outcomes {
			if outcomes[i].Result != resourcedump.Refused {
				outcomes[i].Result = resourcedump.Result(corev1alpha1.ResourceAccepted)
			}
		}
	}
	res.resources, res.totalResources = reportedOutcomes(outcomes)
	for _, oc := range outcomes {
		r.Log.Info("object", "kind", oc.Kind, "name", oc.Name, "result", oc.Result, "message", oc.Message)
	}
	o.Target.Namespace = dest
	if !o.DryRun {
		if err := r.targetMade(ctx, o.Target, outcomes); err != nil {
			return err
		}
	}
	if len(held) > 0 {
		failed, err := r.waitForData(ctx)
		if err != nil {
			return err
		}
		if len(failed) > 0 {
			var names []string
			for _, h := range held {
				names = append(names, h.GetKind()+" "+h.GetName())
			}
			return &reasonError{reason: ReasonDataNotRestored, msg: fmt.Sprintf("components %s were not restored, so %s keep no pods (annotation %s holds a workload's replicas; a DaemonSet's pods select the node label %s, which no node has; a CronJob stays suspended, that annotation saying whether it was)",
				strings.Join(failed, ", "), strings.Join(names, ", "), corev1alpha1.AnnotationHeldReplicas, corev1alpha1.LabelHeld)}
		}
		if err := resourcedump.Release(ctx, r.Kube, held); err != nil {
			return err
		}
		r.Log.Info("started the held workloads", "count", len(held))
	}
	var refused []string
	for _, oc := range outcomes {
		if oc.Result == resourcedump.Refused {
			refused = append(refused, fmt.Sprintf("%s %q: %s", oc.Kind, oc.Name, oc.Message))
		}
	}
	if n := len(refused); n > 0 {
		more := ""
		if n > 3 {
			more = fmt.Sprintf(" and %d more", n-3)
			refused = refused[:3]
		}
		return &reasonError{reason: ReasonObjectsRefused, msg: fmt.Sprintf("%d of %d objects were refused: %s%s", n, len(outcomes), strings.Join(refused, "; "), more)}
	}
	return nil
}

// sessionNamespace is the RestoreSession's namespace, where its Jobs run
// and the objects are recreated.
func (r *Runner) sessionNamespace() string {
	if ns := r.Options.RestoreSessionNamespace; ns != "" {
		return ns
	}
	return r.Options.Namespace
}

// recordedNamespace is the namespace the objects were backed up from.
// fromNamespace keeps, of a dump, the objects of one namespace, and names
// it: source, else the one namespace the dump holds. A dump of several
// namespaces (of the cluster) without source is refused, naming them;
// its cluster-scoped objects are never recreated here. A dry run
// (dryRun: a verification's) of such a dump keeps every object and names
// no namespace: each namespace's objects are checked in the session's
// (retargetEach), the cluster-scoped ones as they are.
func fromNamespace(objs []*unstructured.Unstructured, source string, dryRun bool) ([]*unstructured.Unstructured, string, error) {
	var namespaces []string
	for _, u := range objs {
		if ns := u.GetNamespace(); ns != "" && !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	if source == agentapi.SourceNamespaceAll {
		// Every object in its own namespace (the controller let only a
		// namespace the operator lists ask for it).
		return objs, "", nil
	}
	if source == "" {
		if len(namespaces) > 1 && dryRun {
			return objs, "", nil
		}
		if len(namespaces) > 1 {
			slices.Sort(namespaces)
			return nil, "", fmt.Errorf("the resource manifests hold the objects of %d namespaces (%s): name the one to recreate here with the task's sourceNamespace parameter", len(namespaces), strings.Join(namespaces, ", "))
		}
		return objs, recordedNamespace(objs), nil
	}
	if !slices.Contains(namespaces, source) {
		return nil, "", fmt.Errorf("the resource manifests hold no object of namespace %q (sourceNamespace); they hold %s", source, strings.Join(namespaces, ", "))
	}
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetNamespace() == source {
			out = append(out, u)
		}
	}
	return out, source, nil
}

// retargetEach moves the objects of every namespace into to, each
// namespace's references with them.
func retargetEach(objs []*unstructured.Unstructured, to string) {
	byNamespace := map[string][]*unstructured.Unstructured{}
	for _, u := range objs {
		if ns := u.GetNamespace(); ns != "" {
			byNamespace[ns] = append(byNamespace[ns], u)
		}
	}
	for ns, group := range byNamespace {
		resourcedump.Retarget(group, ns, to)
	}
}

func recordedNamespace(objs []*unstructured.Unstructured) string {
	for _, u := range objs {
		if ns := u.GetNamespace(); ns != "" {
			return ns
		}
	}
	return ""
}

// targetMade fails a restore whose target neither was among the objects
// nor exists.
func (r *Runner) targetMade(ctx context.Context, t resourcedump.Ref, outcomes []resourcedump.Outcome) error {
	// A namespace's dump is restored into the session's own namespace,
	// which exists.
	if t.Kind == "" || (t.Kind == "Namespace" && t.Name == r.sessionNamespace()) {
		return nil
	}
	for _, oc := range outcomes {
		if oc.Kind == t.Kind && oc.Name == t.Name && oc.Result != resourcedump.Refused {
			return nil
		}
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(strings.TrimPrefix(t.APIGroup+"/v1", "/"))
	u.SetKind(t.Kind)
	if err := r.Kube.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.Name}, u); err == nil {
		return nil
	}
	return &reasonError{reason: ReasonTargetNotInManifests, msg: fmt.Sprintf("%s %q was not recreated: the snapshot's resource manifests do not hold it, or it was refused", t.Kind, t.Name)}
}

// waitForData waits until the controller has found the recreated target
// and every other component of the session has ended; it returns those
// that failed.
func (r *Runner) waitForData(ctx context.Context) ([]string, error) {
	rs := &unstructured.Unstructured{}
	rs.SetGroupVersionKind(corev1alpha1.GroupVersion.WithKind("RestoreSession"))
	key := client.ObjectKey{Namespace: r.sessionNamespace(), Name: r.Options.RestoreSession}
	logged := time.Time{}
	for {
		if err := r.Kube.Get(ctx, key, rs); err != nil {
			return nil, fmt.Errorf("cannot get restoresession %q: %w", key.Name, err)
		}
		failed, pending := dataState(rs, r.Options.Component)
		if pending == 0 {
			return failed, nil
		}
		if time.Since(logged) > time.Minute {
			r.Log.Info("waiting for the data before starting the workloads", "components", pending)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(dataPoll):
		}
	}
}

// dataState counts the session's components other than own that have not
// ended, and names those that failed; until the controller has found the
// target (status.targetFound), the data is not planned yet and counts as
// one pending component.
func dataState(rs *unstructured.Unstructured, own string) (failed []string, pending int) {
	if found, _, _ := unstructured.NestedBool(rs.Object, "status", "targetFound"); !found {
		return nil, 1
	}
	components, _, _ := unstructured.NestedMap(rs.Object, "status", "components")
	names := make([]string, 0, len(components))
	for name := range components {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == own {
			continue
		}
		phase, _, _ := unstructured.NestedString(components, name, "phase")
		switch corev1alpha1.RestorePhase(phase) {
		case corev1alpha1.RestoreSucceeded:
		case corev1alpha1.RestoreFailed:
			failed = append(failed, name)
		default:
			pending++
		}
	}
	return failed, pending
}

// reportedOutcomes are the outcomes a component's status lists, refusals
// first, at most corev1alpha1.MaxResourceOutcomes, with the total.
func reportedOutcomes(outcomes []resourcedump.Outcome) ([]corev1alpha1.ResourceOutcome, int64) {
	out := make([]corev1alpha1.ResourceOutcome, 0, len(outcomes))
	for _, oc := range outcomes {
		out = append(out, corev1alpha1.ResourceOutcome{Kind: oc.Kind, Name: oc.Name, Namespace: oc.Namespace,
			Result: corev1alpha1.ResourceResult(oc.Result), Message: oc.Message})
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Result == corev1alpha1.ResourceRefused && out[j].Result != corev1alpha1.ResourceRefused
	})
	if len(out) > corev1alpha1.MaxResourceOutcomes {
		out = out[:corev1alpha1.MaxResourceOutcomes]
	}
	return out, int64(len(outcomes))
}
