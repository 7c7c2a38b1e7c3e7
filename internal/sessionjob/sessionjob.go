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
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
func Ensure(ctx context.Context, c client.Client, owner client.Object, j *batchv1.Job, labels map[string]string) error {
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
	if err := c.Get(ctx, client.ObjectKeyFromObject(j), existing); err != nil {
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

// Mark labels a Job the provider makes, and the pods it will make, as the
// provider's (corev1alpha1.LabelProviderPod): the provider's cache holds
// those pods and no others.
func Mark(j *batchv1.Job) {
	for _, m := range []*metav1.ObjectMeta{&j.ObjectMeta, &j.Spec.Template.ObjectMeta} {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		m.Labels[corev1alpha1.LabelProviderPod] = "true"
	}
}

// Marked says whether Mark labelled the Job, so that its pods are in the
// provider's cache.
func Marked(j *batchv1.Job) bool {
	return j.Labels[corev1alpha1.LabelProviderPod] == "true"
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
