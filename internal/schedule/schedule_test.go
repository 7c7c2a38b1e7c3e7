package schedule

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestCronJobSpec(t *testing.T) {
	trigger := Trigger{
		Labels:             map[string]string{"core.stashplane.io/session": "nightly"},
		ServiceAccountName: "app-backup",
		Container:          corev1.Container{Name: "trigger", Image: "stashplane:test", Args: []string{"trigger"}},
	}
	// base is the CronJob spec of a scheduler that sets only its schedule.
	base := func(mutate func(*batchv1.CronJobSpec)) batchv1.CronJobSpec {
		s := batchv1.CronJobSpec{
			Schedule:          "0 2 * * *",
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			Suspend:           ptr.To(false),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: trigger.Labels},
				Spec: batchv1.JobSpec{
					BackoffLimit: ptr.To[int32](2),
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: trigger.Labels},
						Spec: corev1.PodSpec{
							ServiceAccountName: "app-backup",
							RestartPolicy:      corev1.RestartPolicyOnFailure,
							Containers:         []corev1.Container{trigger.Container},
						},
					},
				},
			},
		}
		if mutate != nil {
			mutate(&s)
		}
		return s
	}
	toleration := corev1.Toleration{Key: "backup", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	cases := map[string]struct {
		reason  string
		sch     corev1alpha1.SchedulerSpec
		suspend bool
		want    batchv1.CronJobSpec
	}{
		"ScheduleOnly": {
			reason: "A scheduler with only a schedule runs the trigger with Forbid and a backoffLimit of 2.",
			sch:    corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *"},
			want:   base(nil),
		},
		"CronJobFields": {
			reason: "The scheduler's fields keep the meaning a CronJob gives them.",
			sch: corev1alpha1.SchedulerSpec{
				Schedule: "0 2 * * *", TimeZone: ptr.To("Europe/Paris"), StartingDeadlineSeconds: ptr.To[int64](300),
				ConcurrencyPolicy: corev1alpha1.ConcurrencyAllow, Suspend: ptr.To(true),
				SuccessfulJobsHistoryLimit: ptr.To[int32](5), FailedJobsHistoryLimit: ptr.To[int32](7),
			},
			want: base(func(s *batchv1.CronJobSpec) {
				s.TimeZone = ptr.To("Europe/Paris")
				s.StartingDeadlineSeconds = ptr.To[int64](300)
				s.ConcurrencyPolicy = batchv1.AllowConcurrent
				s.Suspend = ptr.To(true)
				s.SuccessfulJobsHistoryLimit = ptr.To[int32](5)
				s.FailedJobsHistoryLimit = ptr.To[int32](7)
			}),
		},
		"Paused": {
			reason:  "A paused configuration suspends the CronJob whatever the scheduler says.",
			sch:     corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *", Suspend: ptr.To(false)},
			suspend: true,
			want:    base(func(s *batchv1.CronJobSpec) { s.Suspend = ptr.To(true) }),
		},
		"JobTemplate": {
			reason: "The jobTemplate reaches the trigger's Job and pod; its metadata wins over the pod settings' podLabels, and the trigger's own labels win over both.",
			sch: corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *", JobTemplate: corev1alpha1.JobTemplate{
				BackoffLimit: ptr.To[int32](0), ActiveDeadlineSeconds: ptr.To[int64](600), TTLSecondsAfterFinished: ptr.To[int32](3600),
				Template: corev1alpha1.PodTemplate{
					Metadata: corev1alpha1.PodTemplateMetadata{
						Labels:      map[string]string{"team": "payments", "core.stashplane.io/session": "mine"},
						Annotations: map[string]string{"cost-center": "42"},
					},
					Spec: storagev1alpha1.PodRuntimeSettings{
						PodLabels: map[string]string{"tier": "trigger", "team": "other"}, PodAnnotations: map[string]string{"note": "x"},
						NodeSelector: map[string]string{"kubernetes.io/os": "linux"}, ServiceAccountName: "own-trigger",
						Tolerations: []corev1.Toleration{toleration}, PriorityClassName: "backup-low",
						ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
						SecurityContext:  &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
					},
				},
			}},
			want: base(func(s *batchv1.CronJobSpec) {
				j := &s.JobTemplate.Spec
				j.BackoffLimit = ptr.To[int32](0)
				j.ActiveDeadlineSeconds = ptr.To[int64](600)
				j.TTLSecondsAfterFinished = ptr.To[int32](3600)
				j.Template.Labels = map[string]string{"team": "payments", "tier": "trigger", "core.stashplane.io/session": "nightly"}
				j.Template.Annotations = map[string]string{"cost-center": "42", "note": "x"}
				p := &j.Template.Spec
				p.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
				p.ServiceAccountName = "own-trigger"
				p.Tolerations = []corev1.Toleration{toleration}
				p.PriorityClassName = "backup-low"
				p.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
				p.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
			}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tr := trigger
			tr.Suspend = tc.suspend
			got := CronJobSpec(tc.sch, tr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nCronJobSpec(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
