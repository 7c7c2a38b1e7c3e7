// Package schedule turns a SchedulerSpec into the spec of the CronJob that
// starts each run: the scheduler's fields with the meaning a CronJob gives
// them, and its jobTemplate applied to the Job and pod that run the trigger.
// The backup configuration's and the verifier's schedulers share it.
package schedule

import (
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// DefaultBackoffLimit is the trigger Job's backoffLimit when the
// jobTemplate gives none.
const DefaultBackoffLimit int32 = 2

// Trigger is what runs in the CronJob's pod.
type Trigger struct {
	// Labels of the CronJob's Job and pod; they win over the jobTemplate's.
	Labels map[string]string
	// ServiceAccountName of the pod unless the jobTemplate names another.
	ServiceAccountName string
	// Container that starts the run.
	Container corev1.Container
	// Suspend stops new runs whatever the scheduler says (a paused
	// configuration).
	Suspend bool
}

// CronJobSpec is the CronJob spec of sch that runs t. A concurrencyPolicy
// left empty is Forbid: a trigger that is still running is not doubled.
func CronJobSpec(sch corev1alpha1.SchedulerSpec, t Trigger) batchv1.CronJobSpec {
	jt := sch.JobTemplate
	pod := corev1.PodSpec{
		ServiceAccountName: t.ServiceAccountName,
		RestartPolicy:      corev1.RestartPolicyOnFailure,
		Containers:         []corev1.Container{t.Container},
	}
	applyPod(&pod, jt.Template.Spec)
	spec := batchv1.CronJobSpec{
		Schedule:                   sch.Schedule,
		TimeZone:                   sch.TimeZone,
		StartingDeadlineSeconds:    sch.StartingDeadlineSeconds,
		ConcurrencyPolicy:          batchv1.ConcurrencyPolicy(sch.ConcurrencyPolicy),
		Suspend:                    ptr.To(t.Suspend || ptr.Deref(sch.Suspend, false)),
		SuccessfulJobsHistoryLimit: sch.SuccessfulJobsHistoryLimit,
		FailedJobsHistoryLimit:     sch.FailedJobsHistoryLimit,
		JobTemplate: batchv1.JobTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: t.Labels},
			Spec: batchv1.JobSpec{
				BackoffLimit:            ptr.To(ptr.Deref(jt.BackoffLimit, DefaultBackoffLimit)),
				ActiveDeadlineSeconds:   jt.ActiveDeadlineSeconds,
				TTLSecondsAfterFinished: jt.TTLSecondsAfterFinished,
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{
						Labels:      merge(merge(jt.Template.Spec.PodLabels, jt.Template.Metadata.Labels), t.Labels),
						Annotations: merge(jt.Template.Spec.PodAnnotations, jt.Template.Metadata.Annotations),
					},
					Spec: pod,
				},
			},
		},
	}
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
	}
	return spec
}

// applyPod applies the jobTemplate's pod settings to the trigger's pod.
func applyPod(s *corev1.PodSpec, p storagev1alpha1.PodRuntimeSettings) {
	s.NodeSelector = merge(p.NodeSelector, nil)
	if p.ServiceAccountName != "" {
		s.ServiceAccountName = p.ServiceAccountName
	}
	s.PriorityClassName = p.PriorityClassName
	s.Tolerations = append([]corev1.Toleration(nil), p.Tolerations...)
	s.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), p.ImagePullSecrets...)
	if p.SecurityContext != nil {
		s.SecurityContext = p.SecurityContext.DeepCopy()
	}
}

// merge copies base and sets over's entries on it; nil when both are empty.
func merge(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// cronParser reads what a CronJob's schedule accepts: five fields or a
// descriptor such as @daily.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse reads a scheduler's schedule as the CronJob that carries it out
// will: @every and a TZ= or CRON_TZ= prefix, which the API server refuses
// in a CronJob's schedule, are refused here with what to write instead.
func Parse(schedule string) (cron.Schedule, error) {
	s := strings.TrimSpace(schedule)
	switch {
	case strings.HasPrefix(s, "@every"):
		return nil, fmt.Errorf("@every is not a CronJob schedule: write five fields, such as \"0 */2 * * *\"")
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ="):
		return nil, fmt.Errorf("a time zone in the schedule is refused by CronJobs: set the scheduler's timeZone instead")
	}
	return cronParser.Parse(s)
}
