// Package sessionjob creates the Jobs a session composes from its rendered
// tasks: in the session's namespace, labelled, owned by the session, and
// created once (a Job that already exists is left as it is, since a Job's
// template cannot change). A Job of the same name that the session does
// not control is never taken for its own: Ensure says whose it is.
package sessionjob

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// ErrNotOwned is the error Ensure wraps when a Job of the name it would
// create exists and another object, or none, controls it.
var ErrNotOwned = errors.New("job belongs to another owner")

// Ensure puts j in owner's namespace, adds labels, makes owner its
// controller and creates it unless it exists. A Job that exists is adopted
// only when owner (by UID) controls it; otherwise the error wraps
// ErrNotOwned and names the Job's controller, so that the session's
// condition says what is in the way.
//
// The Job that exists is read through api, past c's cache: the cache holds
// only the Jobs Mark labelled, and one of another owner, or of an earlier
// provider, may carry no label.
func Ensure(ctx context.Context, c client.Client, api client.Reader, owner client.Object, j *batchv1.Job, labels map[string]string) error {
	j.Namespace = owner.GetNamespace()
	if j.Labels == nil {
		j.Labels = map[string]string{}
	}
	for k, v := range labels {
		j.Labels[k] = v
	}
	Mark(j)
	if err := controllerutil.SetControllerReference(owner, j, c.Scheme()); err != nil {
		return fmt.Errorf("cannot own job %q: %w", j.Name, err)
	}
	err := c.Create(ctx, j)
	if err == nil {
		return nil
	}
	if !kerrors.IsAlreadyExists(err) {
		return fmt.Errorf("cannot create job %q: %w", j.Name, err)
	}
	existing := &batchv1.Job{}
	if err := api.Get(ctx, client.ObjectKeyFromObject(j), existing); err != nil {
		return fmt.Errorf("cannot get existing job %q: %w", j.Name, err)
	}
	if metav1.IsControlledBy(existing, owner) {
		return nil
	}
	return fmt.Errorf("cannot create job %q: %w: %s", j.Name, ErrNotOwned, controllerOf(existing))
}

// controllerOf describes the object that controls o.
func controllerOf(o metav1.Object) string {
	ref := metav1.GetControllerOf(o)
	if ref == nil {
		return "it has no controller"
	}
	return fmt.Sprintf("%s %q (uid %s) controls it", ref.Kind, ref.Name, ref.UID)
}

// Ended says whether the Job has finished, Complete or Failed: its pods
// run no more.
func Ended(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// unstartable are the reasons a kubelet gives a container that waits for
// someone to change its inputs: a Secret, ConfigMap or key its environment
// names is missing, its image cannot be pulled or named.
var unstartable = map[string]bool{
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"ErrImagePull":               true,
	"ImagePullBackOff":           true,
}

// UnstartableGrace is how long a Job's pod may exist with a container
// waiting for an unstartable reason before its session gives up on it: a
// kubelet keeps such a pod Pending for ever, and its Job never fails.
const UnstartableGrace = time.Minute

// Unstartable says why the Job's pod cannot start ("" when it can, or
// when grace has not passed since the pod was created): the container,
// the kubelet's reason and its message.
func Unstartable(p *corev1.Pod, now time.Time, grace time.Duration) string {
	if p == nil || p.Status.Phase != corev1.PodPending || now.Sub(p.CreationTimestamp.Time) < grace {
		return ""
	}
	for _, st := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := st.State.Waiting; w != nil && unstartable[w.Reason] {
			return fmt.Sprintf("pod %s cannot start container %q (%s): %s", p.Name, st.Name, w.Reason, w.Message)
		}
	}
	return ""
}

// Mark labels a Job the provider or the CLI makes, and the pods it will
// make, as watched (corev1alpha1.LabelWatched): the provider's cache holds
// those Jobs and pods and no others.
func Mark(j *batchv1.Job) {
	for _, m := range []*metav1.ObjectMeta{&j.ObjectMeta, &j.Spec.Template.ObjectMeta} {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		m.Labels[corev1alpha1.LabelWatched] = "true"
	}
}

// Marked says whether the Job's pods carry Mark's label, so that they are
// in the provider's cache. A Job an earlier provider made has the label
// only on itself (MarkEarlier), never on its pod template.
func Marked(j *batchv1.Job) bool {
	return j.Spec.Template.Labels[corev1alpha1.LabelWatched] == "true"
}

// MarkEarlier labels watched the Jobs an earlier provider or CLI made and
// that have no LabelWatched (madeByStashplane). A provider whose cache holds only watched Jobs
// would otherwise lose sight of the runs under way when it was upgraded.
// Their pods keep the labels they have (a Job's template cannot change),
// so NewestPod reads them past the cache. It returns how many Jobs it
// labelled.
func MarkEarlier(ctx context.Context, c client.Client) (int, error) {
	unwatched, err := labels.NewRequirement(corev1alpha1.LabelWatched, selection.DoesNotExist, nil)
	if err != nil {
		return 0, err
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("JobList"))
	n := 0
	for cont := ""; ; {
		err := c.List(ctx, list, client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*unwatched)}, client.Limit(500), client.Continue(cont))
		if err != nil {
			return n, fmt.Errorf("cannot list jobs: %w", err)
		}
		for i := range list.Items {
			j := &list.Items[i]
			if !madeByStashplane(j) {
				continue
			}
			patch := client.MergeFrom(j.DeepCopy())
			if j.Labels == nil {
				j.Labels = map[string]string{}
			}
			j.Labels[corev1alpha1.LabelWatched] = "true"
			if err := c.Patch(ctx, j, patch); client.IgnoreNotFound(err) != nil {
				return n, fmt.Errorf("cannot label job %s/%s watched: %w", j.Namespace, j.Name, err)
			}
			n++
		}
		if cont = list.GetContinue(); cont == "" {
			return n, nil
		}
	}
}

// madeByStashplane says whether a Job is one Stashplane made: a kind of a
// stashplane.io group controls it, or nothing controls it and it carries a
// label of a stashplane.io domain (the CLI's). A Job another controller
// made is not, whatever its labels: the Jobs a schedule's CronJob starts
// carry the configuration's labels, and the provider never reads them.
func madeByStashplane(j *metav1.PartialObjectMetadata) bool {
	if ref := metav1.GetControllerOf(j); ref != nil {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		return err == nil && stashplaneDomain(gv.Group)
	}
	for k := range j.Labels {
		if prefix, _, ok := strings.Cut(k, "/"); ok && stashplaneDomain(prefix) {
			return true
		}
	}
	return false
}

func stashplaneDomain(s string) bool {
	return s == "stashplane.io" || strings.HasSuffix(s, ".stashplane.io")
}

// List is the Jobs of namespace ns with labels: read from cached, the
// provider's cache, and again from api, past it, when complete says the
// cached ones cannot be all of them. The cache may not hold a Job created
// a moment ago, nor one an earlier provider made before it was labelled
// watched, so only the API server can say that a Job is gone. Each kind
// says what it expects to find (a backup: at least one Job; a restore: one
// per component still restoring).
func List(ctx context.Context, cached, api client.Reader, ns string, labels map[string]string, complete func([]batchv1.Job) bool) ([]batchv1.Job, error) {
	jobs := &batchv1.JobList{}
	if err := cached.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
		return nil, fmt.Errorf("cannot list jobs: %w", err)
	}
	if complete(jobs.Items) {
		return jobs.Items, nil
	}
	if err := api.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
		return nil, fmt.Errorf("cannot list jobs: %w", err)
	}
	return jobs.Items, nil
}

// NewestPod is the newest pod the Job made, or nil when it has none or
// they cannot be listed: what a Job's pod printed is read from it. The
// pods of a Job Mark labelled are read from cached, the provider's cache;
// those of any other Job (one an earlier provider made) from api, past it.
func NewestPod(ctx context.Context, cached, api client.Reader, j *batchv1.Job) *corev1.Pod {
	c := cached
	if !Marked(j) {
		c = api
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(j.Namespace), client.MatchingLabels{batchv1.ControllerUidLabel: string(j.UID)}); err != nil || len(pods.Items) == 0 {
		return nil
	}
	newest := &pods.Items[0]
	for i := range pods.Items {
		if pods.Items[i].CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = &pods.Items[i]
		}
	}
	return newest
}

// PodLogs reads container logs through the API server, as kubectl logs
// does.
type PodLogs struct{ CS kubernetes.Interface }

// Tail is the last lines lines the container of the pod printed.
func (p PodLogs) Tail(ctx context.Context, namespace, pod, container string, lines int64) (string, error) {
	b, err := p.CS.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, TailLines: &lines}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("cannot read logs of pod %q: %w", pod, err)
	}
	return string(b), nil
}
