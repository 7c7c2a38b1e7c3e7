package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestCheckJob(t *testing.T) {
	hostPath := func(name, path string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}}
	}
	c := Context{
		Task:    TaskInfo{Kind: TaskBackup},
		Storage: Storage{Volumes: []corev1.Volume{hostPath("storage", "/srv/backups")}},
		Target:  Target{Volumes: []corev1.Volume{hostPath("data", "/srv/app")}},
		Runtime: Runtime{Pod: storagev1alpha1.PodRuntimeSettings{ServiceAccountName: "runner"}},
	}
	job := func(mutate func(*corev1.PodSpec)) *batchv1.Job {
		j := &batchv1.Job{}
		j.Name = "backup"
		j.Spec.Template.Spec = corev1.PodSpec{
			ServiceAccountName: "runner",
			Containers:         []corev1.Container{{Name: "agent", Env: []corev1.EnvVar{{Name: "RESTIC_PACK_SIZE", Value: "64"}}}},
			Volumes:            []corev1.Volume{hostPath("storage", "/srv/backups"), hostPath("data", "/srv/app")},
		}
		if mutate != nil {
			mutate(&j.Spec.Template.Spec)
		}
		return j
	}
	cases := map[string]struct {
		reason string
		job    *batchv1.Job
		chosen string
		kind   TaskKind
		want   string
	}{
		"Kept": {
			reason: "A Job on the storage's and target's host paths, with a tuning variable, keeps the rules.",
			job:    job(nil),
		},
		"OwnAccount": {
			reason: "A template may not pick the account its Job runs as.",
			job:    job(nil), chosen: "cluster-admin-sa",
			want: `cannot render Job "backup": it breaks the rules of a Stashplane Job: the template names serviceAccountName "cluster-admin-sa": a Job runs as the account its run composed, or the one runtimeSettings name`,
		},
		"HostNetwork": {
			reason: "No host namespace.",
			job:    job(func(s *corev1.PodSpec) { s.HostPID = true }),
			want:   `cannot render Job "backup": it breaks the rules of a Stashplane Job: the host's network, PID or IPC namespace is not for a backup Job`,
		},
		"OtherHostPath": {
			reason: "A host path that is neither the storage's nor the target's is refused.",
			job:    job(func(s *corev1.PodSpec) { s.Volumes = append(s.Volumes, hostPath("root", "/")) }),
			want:   `cannot render Job "backup": it breaks the rules of a Stashplane Job: volume "root" mounts host path "/", which is neither the storage's nor the target's`,
		},
		"Privileged": {
			reason: "No privileged container, init containers included, and no SYS_ADMIN.",
			job: job(func(s *corev1.PodSpec) {
				s.InitContainers = []corev1.Container{{Name: "init", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
				s.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}
			}),
			want: `cannot render Job "backup": it breaks the rules of a Stashplane Job: container "init" is privileged; container "agent" adds capability SYS_ADMIN`,
		},
		"AgentEnv": {
			reason: "No variable that redirects the agent or restic.",
			job: job(func(s *corev1.PodSpec) {
				s.Containers[0].Env = append(s.Containers[0].Env, corev1.EnvVar{Name: "RESTIC_REPOSITORY", Value: "s3:elsewhere"}, corev1.EnvVar{Name: "https_proxy", Value: "http://x"})
			}),
			want: `cannot render Job "backup": it breaks the rules of a Stashplane Job: container "agent": RESTIC_REPOSITORY is not one of the RESTIC_* variables the agent passes on (RESTIC_COMPRESSION, RESTIC_PACK_SIZE, RESTIC_READ_CONCURRENCY); container "agent": https_proxy would redirect the agent`,
		},
		"HookEnv": {
			reason: "A hook's Job runs the user's own program: the agent's environment rule is not its.",
			job: job(func(s *corev1.PodSpec) {
				s.Containers[0].Env = append(s.Containers[0].Env, corev1.EnvVar{Name: "HTTPS_PROXY", Value: "http://x"})
			}),
			kind: TaskHook,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cc := c
			if tc.kind != "" {
				cc.Task.Kind = tc.kind
			}
			got := ""
			if err := checkJob(tc.job, tc.chosen, cc); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ncheckJob(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
