package backupconfiguration

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

func config(mutate func(*corev1alpha1.BackupConfigurationSpec)) *corev1alpha1.BackupConfiguration {
	bc := &corev1alpha1.BackupConfiguration{Spec: corev1alpha1.BackupConfigurationSpec{
		Backends: []corev1alpha1.BackendReference{{Name: "local"}},
		Sessions: []corev1alpha1.Session{{
			Name:         "nightly",
			Scheduler:    &corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *"},
			Repositories: []corev1alpha1.RepositoryInfo{{Name: "app", Backend: "local", Directory: "ns/app"}},
		}},
	}}
	if mutate != nil {
		mutate(&bc.Spec)
	}
	return bc
}

func TestShapeAndSchedules(t *testing.T) {
	cases := map[string]struct {
		reason string
		bc     *corev1alpha1.BackupConfiguration
		want   string
	}{
		"Valid": {reason: "A well-formed configuration passes.", bc: config(nil), want: ""},
		"UnknownBackend": {
			reason: "A repository must name a listed backend.",
			bc:     config(func(s *corev1alpha1.BackupConfigurationSpec) { s.Sessions[0].Repositories[0].Backend = "s3" }),
			want:   `repository "app" of session "nightly" names backend "s3", which the configuration does not list`,
		},
		"SharedDirectory": {
			reason: "Two repositories may not share a directory of one backend, however it is spelled.",
			bc: config(func(s *corev1alpha1.BackupConfigurationSpec) {
				s.Sessions[0].Repositories = append(s.Sessions[0].Repositories, corev1alpha1.RepositoryInfo{Name: "app2", Backend: "local", Directory: "/ns/app/"})
			}),
			want: `repositories "app" and "app2" share directory "/ns/app/" of backend "local"`,
		},
		"DuplicateSession": {
			reason: "Session names are unique.",
			bc: config(func(s *corev1alpha1.BackupConfigurationSpec) {
				s.Sessions = append(s.Sessions, s.Sessions[0])
				s.Sessions[1].Repositories = []corev1alpha1.RepositoryInfo{{Name: "other", Backend: "local", Directory: "x"}}
			}),
			want: `session name "nightly" is used twice`,
		},
		"BadCron": {
			reason: "A schedule that is not cron syntax is refused with the parser's words.",
			bc:     config(func(s *corev1alpha1.BackupConfigurationSpec) { s.Sessions[0].Scheduler.Schedule = "every night" }),
			want:   `session "nightly": schedule "every night": expected exactly 5 fields, found 2: [every night]`,
		},
		"Every": {
			reason: "@every is not a CronJob schedule.",
			bc:     config(func(s *corev1alpha1.BackupConfigurationSpec) { s.Sessions[0].Scheduler.Schedule = "@every 1h" }),
			want:   `session "nightly": schedule "@every 1h": @every is not a CronJob schedule`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := &input{bc: tc.bc, status: &tc.bc.Status}
			msg, _, err := checkShape(context.Background(), in)
			if err == nil && msg == "" {
				msg, _, err = checkSchedules(context.Background(), in)
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, msg); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
