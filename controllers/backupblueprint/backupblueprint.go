// Package backupblueprint carries out BackupBlueprints: it makes, keeps up
// to date and removes the BackupConfiguration of each workload (Deployment,
// StatefulSet, DaemonSet, PersistentVolumeClaim) a blueprint protects —
// those annotated with its name, and those of the namespaces its subjects
// select — from its template, with the workload's variables written in.
//
// A configuration made from a blueprint is named after the workload's kind
// and name, labelled with the blueprint, and owned by the workload: it goes
// when the workload goes, and when the workload stops asking for the
// blueprint. Its Repositories, Snapshots and data stay, as for any
// configuration deleted (docs/retention.md). A configuration of that name
// not made by the blueprint is never touched. With a verifier template, a
// BackupVerifier of the same name is made, kept and removed beside the
// configuration. A workload asking for a blueprint that does not exist
// gets a Warning event, BlueprintNotFound.
//
// The blueprint's status counts the workloads it protects and lists those
// it should and does not, with why:
//
//	WorkloadsProtected  True when every workload the blueprint should
//	                    protect has its configuration; False with
//	                    SomeUnprotected naming the first that has not.
package backupblueprint

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/cachestore"
	"github.com/stashplane/stashplane/internal/sessionrun"
	"github.com/stashplane/stashplane/internal/usage"
)

// maxFailures bounds the failures a blueprint's status lists.
const maxFailures = 50

// Options configure the controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	Clock      clock.Clock
}

// Setup adds the BackupBlueprint controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	r := &reconciler{kube: mgr.GetClient(), clock: o.Clock, log: o.Log.WithValues("controller", "backupblueprint"),
		events: mgr.GetEventRecorderFor("backupblueprint")}
	toBlueprints := handler.EnqueueRequestsFromMapFunc(r.blueprintsOf)
	// Only what a blueprint reads wakes it: a workload's or namespace's
	// creation, deletion, annotations or labels, and a configuration's
	// spec or labels, not the status updates workloads and
	// configurations see all day.
	workloads := builder.WithPredicates(predicate.AnnotationChangedPredicate{})
	err := ctrl.NewControllerManagedBy(mgr).
		Named("backupblueprint").
		WithOptions(o.Controller).
		For(&corev1alpha1.BackupBlueprint{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Of the workloads and namespaces only their metadata is read, and
		// the cache holds no more of them; of StatefulSets also their
		// claim templates, which tell their claims.
		WatchesMetadata(&appsv1.Deployment{}, toBlueprints, workloads).
		Watches(&appsv1.StatefulSet{}, toBlueprints, workloads).
		WatchesMetadata(&appsv1.DaemonSet{}, toBlueprints, workloads).
		WatchesMetadata(&corev1.PersistentVolumeClaim{}, toBlueprints, workloads).
		WatchesMetadata(&corev1.Namespace{}, toBlueprints, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&corev1alpha1.BackupConfiguration{}, toBlueprints,
			builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&corev1alpha1.BackupVerifier{}, toBlueprints,
			builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up backupblueprint controller: %w", err)
	}
	return nil
}

type reconciler struct {
	kube   client.Client
	clock  clock.PassiveClock
	log    logr.Logger
	events record.EventRecorder
}

// blueprintsOf maps a change to the blueprints it may concern: the one a
// workload names, the one that made a configuration (or the workload's
// configuration), and every blueprint that selects namespaces.
func (r *reconciler) blueprintsOf(ctx context.Context, o client.Object) []reconcile.Request {
	set := map[client.ObjectKey]bool{}
	add := func(ns, name string) {
		if name != "" {
			set[client.ObjectKey{Namespace: ns, Name: name}] = true
		}
	}
	if a := o.GetAnnotations(); a[corev1alpha1.AnnotationBlueprintName] != "" {
		ns := a[corev1alpha1.AnnotationBlueprintNamespace]
		if ns == "" {
			ns = o.GetNamespace()
		}
		add(ns, a[corev1alpha1.AnnotationBlueprintName])
	}
	switch o.(type) {
	case *corev1alpha1.BackupConfiguration, *corev1alpha1.BackupVerifier:
		add(o.GetLabels()[corev1alpha1.LabelBlueprintNamespace], o.GetLabels()[corev1alpha1.LabelBlueprintName])
	default:
		if kindOf(o) == "" {
			// A Namespace: it names no configuration.
			break
		}
		// The workload's configuration names the blueprint it came from,
		// even once the workload no longer does.
		bc := &corev1alpha1.BackupConfiguration{}
		if err := r.kube.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: ConfigurationName(kindOf(o), o.GetName())}, bc); err == nil {
			add(bc.Labels[corev1alpha1.LabelBlueprintNamespace], bc.Labels[corev1alpha1.LabelBlueprintName])
		}
	}
	list := &corev1alpha1.BackupBlueprintList{}
	if err := r.kube.List(ctx, list); err == nil {
		for _, bp := range list.Items {
			if bp.Spec.Subjects != nil {
				add(bp.Namespace, bp.Name)
			}
		}
	}
	out := make([]reconcile.Request, 0, len(set))
	for k := range set {
		out = append(out, reconcile.Request{NamespacedName: k})
	}
	return out
}

func kindOf(o client.Object) string {
	switch o := o.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *appsv1.DaemonSet:
		return "DaemonSet"
	case *corev1.PersistentVolumeClaim:
		return "PersistentVolumeClaim"
	case *metav1.PartialObjectMetadata:
		// The workloads the cache holds as metadata carry their kind.
		if k := o.GroupVersionKind().Kind; workloadKinds[k] {
			return k
		}
	}
	return ""
}

// workloadKinds are the kinds of workload a blueprint protects that the
// cache holds as metadata.
var workloadKinds = map[string]bool{"Deployment": true, "DaemonSet": true, "PersistentVolumeClaim": true}

func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	bp := &corev1alpha1.BackupBlueprint{}
	err := r.kube.Get(ctx, req.NamespacedName, bp)
	if kerrors.IsNotFound(err) {
		// The blueprint is gone: so are the configurations it made.
		if err := r.prune(ctx, req.Namespace, req.Name, nil); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.reportUnknown(ctx, req.NamespacedName)
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("cannot get backupblueprint: %w", err)
	}
	if bp.DeletionTimestamp != nil {
		return reconcile.Result{}, r.prune(ctx, bp.Namespace, bp.Name, nil)
	}
	subjects, err := r.subjects(ctx, bp)
	if err != nil {
		return reconcile.Result{}, err
	}
	var failures []corev1alpha1.BlueprintFailure
	keep := map[madeObject]bool{}
	var protected int32
	for _, w := range subjects {
		kept, why, err := r.protect(ctx, bp, w)
		if err != nil {
			return reconcile.Result{}, err
		}
		for _, m := range kept {
			keep[m] = true
		}
		if why != "" {
			failures = append(failures, corev1alpha1.BlueprintFailure{Kind: w.Kind, Namespace: w.Meta.Namespace, Name: w.Meta.Name, Reason: why})
			continue
		}
		protected++
	}
	if err := r.prune(ctx, bp.Namespace, bp.Name, keep); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.record(ctx, bp, protected, failures)
}

// ReasonBlueprintNotFound is the reason of the Warning event a workload
// gets when it asks for a blueprint that does not exist.
const ReasonBlueprintNotFound = "BlueprintNotFound"

// reportUnknown tells each workload that asks for the blueprint bp, which
// does not exist, by a Warning event on it: no configuration is made.
func (r *reconciler) reportUnknown(ctx context.Context, bp client.ObjectKey) error {
	all, err := r.workloads(ctx)
	if err != nil {
		return err
	}
	for _, w := range all {
		a := w.Meta.Annotations
		ns := a[corev1alpha1.AnnotationBlueprintNamespace]
		if ns == "" {
			ns = w.Meta.Namespace
		}
		if a[corev1alpha1.AnnotationBlueprintName] != bp.Name || ns != bp.Namespace {
			continue
		}
		r.events.Eventf(w.object(), corev1.EventTypeWarning, ReasonBlueprintNotFound,
			"backupblueprint %s/%s, which annotation %s names, does not exist: no BackupConfiguration is made for this %s",
			bp.Namespace, bp.Name, corev1alpha1.AnnotationBlueprintName, w.Kind)
	}
	return nil
}

// subjects are the workloads bp should protect: those annotated with it,
// and, with subjects, those of the namespaces it selects that ask for no
// blueprint of their own, do not opt out, and that no blueprint sorted
// before it selects as well.
func (r *reconciler) subjects(ctx context.Context, bp *corev1alpha1.BackupBlueprint) ([]workload, error) {
	all, err := r.workloads(ctx)
	if err != nil {
		return nil, err
	}
	var selectors []*corev1alpha1.BackupBlueprint
	if bp.Spec.Subjects != nil {
		list := &corev1alpha1.BackupBlueprintList{}
		if err := r.kube.List(ctx, list); err != nil {
			return nil, fmt.Errorf("cannot list backupblueprints: %w", err)
		}
		sort.Slice(list.Items, func(i, j int) bool {
			a, b := list.Items[i], list.Items[j]
			return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
		})
		for i := range list.Items {
			if list.Items[i].Spec.Subjects != nil && list.Items[i].DeletionTimestamp == nil {
				selectors = append(selectors, &list.Items[i])
			}
		}
	}
	nsLabels := map[string]labels.Set{}
	if len(selectors) > 0 {
		nss := cachestore.MetadataList(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := r.kube.List(ctx, nss); err != nil {
			return nil, fmt.Errorf("cannot list namespaces: %w", err)
		}
		for _, ns := range nss.Items {
			nsLabels[ns.Name] = ns.Labels
		}
	}
	var out []workload
	for _, w := range all {
		a := w.Meta.Annotations
		if name := a[corev1alpha1.AnnotationBlueprintName]; name != "" {
			ns := a[corev1alpha1.AnnotationBlueprintNamespace]
			if ns == "" {
				ns = w.Meta.Namespace
			}
			if name == bp.Name && ns == bp.Namespace {
				out = append(out, w)
			}
			continue
		}
		if a[corev1alpha1.AnnotationBlueprintSkip] == "true" || w.partOf != "" || len(selectors) == 0 {
			continue
		}
		for _, s := range selectors {
			if selects(s, w, nsLabels[w.Meta.Namespace]) {
				if s.Namespace == bp.Namespace && s.Name == bp.Name {
					w.selected = true
					out = append(out, w)
				}
				break
			}
		}
	}
	return out, nil
}

// selects says whether blueprint s's subjects pick w, in a namespace with
// the given labels.
func selects(s *corev1alpha1.BackupBlueprint, w workload, nsLabels labels.Set) bool {
	sel, err := metav1.LabelSelectorAsSelector(&s.Spec.Subjects.NamespaceSelector)
	if err != nil || !sel.Matches(nsLabels) {
		return false
	}
	if len(s.Spec.Subjects.Kinds) == 0 {
		return true
	}
	for _, k := range s.Spec.Subjects.Kinds {
		if string(k) == w.Kind {
			return true
		}
	}
	return false
}

// workloads lists every workload of the kinds a blueprint protects.
func (r *reconciler) workloads(ctx context.Context) ([]workload, error) {
	var out []workload
	deps := cachestore.MetadataList(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	if err := r.kube.List(ctx, deps); err != nil {
		return nil, fmt.Errorf("cannot list deployments: %w", err)
	}
	for _, d := range deps.Items {
		out = append(out, workload{Kind: "Deployment", Group: "apps", Version: "v1", Meta: d.ObjectMeta})
	}
	sts := &appsv1.StatefulSetList{}
	if err := r.kube.List(ctx, sts); err != nil {
		return nil, fmt.Errorf("cannot list statefulsets: %w", err)
	}
	for _, s := range sts.Items {
		out = append(out, workload{Kind: "StatefulSet", Group: "apps", Version: "v1", Meta: s.ObjectMeta})
	}
	dss := cachestore.MetadataList(appsv1.SchemeGroupVersion.WithKind("DaemonSet"))
	if err := r.kube.List(ctx, dss); err != nil {
		return nil, fmt.Errorf("cannot list daemonsets: %w", err)
	}
	for _, d := range dss.Items {
		out = append(out, workload{Kind: "DaemonSet", Group: "apps", Version: "v1", Meta: d.ObjectMeta})
	}
	pvcs := cachestore.MetadataList(corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"))
	if err := r.kube.List(ctx, pvcs); err != nil {
		return nil, fmt.Errorf("cannot list persistentvolumeclaims: %w", err)
	}
	for _, p := range pvcs.Items {
		out = append(out, workload{Kind: "PersistentVolumeClaim", Version: "v1", Meta: p.ObjectMeta, partOf: claimOwner(p.ObjectMeta, sts.Items)})
	}
	var live []workload
	for _, w := range out {
		if w.Meta.DeletionTimestamp == nil {
			live = append(live, w)
		}
	}
	return live, nil
}

// madeObject names what a blueprint made: a configuration or a verifier.
type madeObject struct {
	kind string
	key  client.ObjectKey
}

// claimOwner names what a claim is part of when a blueprint that selects
// its namespace must leave it to that: a StatefulSet whose claim templates
// made it (the StatefulSet's configuration backs it up, pod by pod), or a
// verification or run of Stashplane's (a scratch claim). "" for a claim
// of its own.
func claimOwner(claim metav1.ObjectMeta, sets []appsv1.StatefulSet) string {
	if s := claim.Labels[corev1alpha1.LabelBackupVerificationSession]; s != "" {
		return "backupverificationsession " + s
	}
	if s := claim.Labels[sessionLabel]; s != "" {
		return "session " + s
	}
	for _, st := range sets {
		if st.Namespace != claim.Namespace {
			continue
		}
		for _, t := range st.Spec.VolumeClaimTemplates {
			rest, ok := strings.CutPrefix(claim.Name, t.Name+"-"+st.Name+"-")
			if _, err := strconv.Atoi(rest); ok && err == nil {
				return "statefulset " + st.Name
			}
		}
	}
	return ""
}

// sessionLabel marks the objects an addon's Function makes for a run.
const sessionLabel = "stashplane.io/session"

// protect makes or updates w's verifier (with a verifier template) and
// configuration from bp, returning what it keeps in place. why says what
// keeps it from doing so: then no configuration is made that stands
// without its verifier, and what an earlier, good template made is kept
// as it was (a bad edit of a blueprint does not unprotect its
// workloads), unless the usage policy no longer admits the workload.
func (r *reconciler) protect(ctx context.Context, bp *corev1alpha1.BackupBlueprint, w workload) ([]madeObject, string, error) {
	ok, why, err := usage.Allowed(ctx, r.kube, bp.Spec.UsagePolicy, bp.Namespace, w.Meta.Namespace)
	if err != nil {
		return nil, "", fmt.Errorf("cannot check the usage policy of backupblueprint %q: %w", bp.Name, err)
	}
	if !ok {
		return nil, fmt.Sprintf("backupblueprint %s/%s may not be used from namespace %q: %s", bp.Namespace, bp.Name, w.Meta.Namespace, why), nil
	}
	key := client.ObjectKey{Namespace: w.Meta.Namespace, Name: ConfigurationName(w.Kind, w.Meta.Name)}
	standing := []madeObject{{kind: "backupverifier", key: key}, {kind: "backupconfiguration", key: key}}
	wantV, err := verifier(bp, w)
	if err != nil {
		return standing, err.Error(), nil
	}
	wantC, err := configuration(bp, w)
	if err != nil {
		return standing, err.Error(), nil
	}
	var out []madeObject
	if wantV != nil {
		why, err := r.apply(ctx, bp, wantV, &corev1alpha1.BackupVerifier{}, "backupverifier", func(got client.Object) bool {
			g := got.(*corev1alpha1.BackupVerifier)
			if equality.Semantic.DeepEqual(g.Spec, wantV.Spec) {
				return false
			}
			g.Spec = wantV.Spec
			return true
		})
		if why != "" || err != nil {
			return standing, why, err
		}
		out = append(out, madeObject{kind: "backupverifier", key: key})
	}
	why, err = r.apply(ctx, bp, wantC, &corev1alpha1.BackupConfiguration{}, "backupconfiguration", func(got client.Object) bool {
		g := got.(*corev1alpha1.BackupConfiguration)
		if equality.Semantic.DeepEqual(g.Spec, wantC.Spec) {
			return false
		}
		g.Spec = wantC.Spec
		return true
	})
	if why != "" || err != nil {
		return standing, why, err
	}
	return append(out, madeObject{kind: "backupconfiguration", key: key}), "", nil
}

// apply creates want, or brings got, the object of its name, to it:
// setSpec copies want's spec into got and says whether it changed. An
// object of that name the blueprint did not make is left as it is. why
// says what the API server refused.
func (r *reconciler) apply(ctx context.Context, bp *corev1alpha1.BackupBlueprint, want, got client.Object, kind string, setSpec func(got client.Object) bool) (string, error) {
	err := r.kube.Get(ctx, client.ObjectKeyFromObject(want), got)
	switch {
	case kerrors.IsNotFound(err):
		if err := r.kube.Create(ctx, want); err != nil {
			if kerrors.IsInvalid(err) || kerrors.IsForbidden(err) || kerrors.IsAlreadyExists(err) {
				return fmt.Sprintf("cannot create %s %q: %v", kind, want.GetName(), err), nil
			}
			return "", fmt.Errorf("cannot create %s %q: %w", kind, want.GetName(), err)
		}
		return "", nil
	case err != nil:
		return "", fmt.Errorf("cannot get %s %q: %w", kind, want.GetName(), err)
	}
	if l := got.GetLabels(); l[corev1alpha1.LabelBlueprintName] != bp.Name || l[corev1alpha1.LabelBlueprintNamespace] != bp.Namespace {
		return fmt.Sprintf("%s %q exists and was not made by this blueprint: it is left as it is", kind, got.GetName()), nil
	}
	changed := setSpec(got)
	if !equality.Semantic.DeepEqual(got.GetOwnerReferences(), want.GetOwnerReferences()) {
		got.SetOwnerReferences(want.GetOwnerReferences())
		changed = true
	}
	if !changed {
		return "", nil
	}
	if err := r.kube.Update(ctx, got); err != nil {
		if kerrors.IsInvalid(err) || kerrors.IsForbidden(err) {
			return fmt.Sprintf("cannot update %s %q: %v", kind, got.GetName(), err), nil
		}
		return "", fmt.Errorf("cannot update %s %q: %w", kind, got.GetName(), err)
	}
	return "", nil
}

// prune deletes the configurations and verifiers made by blueprint
// ns/name that keep does not hold; nil keep deletes them all.
func (r *reconciler) prune(ctx context.Context, ns, name string, keep map[madeObject]bool) error {
	labels := client.MatchingLabels{corev1alpha1.LabelBlueprintName: name, corev1alpha1.LabelBlueprintNamespace: ns}
	configs := &corev1alpha1.BackupConfigurationList{}
	if err := r.kube.List(ctx, configs, labels); err != nil {
		return fmt.Errorf("cannot list backupconfigurations: %w", err)
	}
	verifiers := &corev1alpha1.BackupVerifierList{}
	if err := r.kube.List(ctx, verifiers, labels); err != nil {
		return fmt.Errorf("cannot list backupverifiers: %w", err)
	}
	var objs []client.Object
	for i := range configs.Items {
		objs = append(objs, &configs.Items[i])
	}
	for i := range verifiers.Items {
		objs = append(objs, &verifiers.Items[i])
	}
	for _, o := range objs {
		kind := "backupconfiguration"
		if _, ok := o.(*corev1alpha1.BackupVerifier); ok {
			kind = "backupverifier"
		}
		if keep[madeObject{kind: kind, key: client.ObjectKeyFromObject(o)}] || o.GetDeletionTimestamp() != nil {
			continue
		}
		if err := r.kube.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete %s %q: %w", kind, o.GetName(), err)
		}
		r.log.Info("removed what a workload no longer asks for", kind, o.GetNamespace()+"/"+o.GetName(), "backupblueprint", ns+"/"+name)
	}
	return nil
}

// record writes what the blueprint protects into its status.
func (r *reconciler) record(ctx context.Context, bp *corev1alpha1.BackupBlueprint, protected int32, failures []corev1alpha1.BlueprintFailure) error {
	sort.Slice(failures, func(i, j int) bool {
		a, b := failures[i], failures[j]
		return a.Namespace+"/"+a.Kind+"/"+a.Name < b.Namespace+"/"+b.Kind+"/"+b.Name
	})
	if len(failures) > maxFailures {
		failures = failures[:maxFailures]
	}
	before := bp.Status.DeepCopy()
	bp.Status.Protected, bp.Status.Failures = protected, failures
	if len(failures) == 0 {
		sessionrun.SetCondition(r.clock, bp, corev1alpha1.TypeWorkloadsProtected, true, corev1alpha1.ReasonAllProtected, fmt.Sprintf("%d workloads protected", protected))
	} else {
		f := failures[0]
		msg := fmt.Sprintf("%s %s/%s is not protected: %s", f.Kind, f.Namespace, f.Name, f.Reason)
		if len(failures) > 1 {
			msg += fmt.Sprintf("; and %d more (status.failures)", len(failures)-1)
		}
		sessionrun.SetCondition(r.clock, bp, corev1alpha1.TypeWorkloadsProtected, false, corev1alpha1.ReasonSomeUnprotected, msg)
	}
	if equality.Semantic.DeepEqual(before, &bp.Status) {
		return nil
	}
	if err := r.kube.Status().Update(ctx, bp); err != nil {
		return fmt.Errorf("cannot update backupblueprint status: %w", err)
	}
	return nil
}
