package backupconfiguration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// A configuration's objects are applied in two rounds, each together: a
// RoleBinding goes only after the Role it binds (the API server refuses
// it before), and a CronJob only after the bindings of the account its
// Jobs run as.
func TestApplyStages(t *testing.T) {
	cases := map[string]struct {
		reason       string
		readsObjects bool
		jobAccount   string
		want         [][]string
	}{
		"Volumes": {
			reason: "The Repository, ServiceAccount and Role go first; the RoleBinding and CronJob after them.",
			want: [][]string{
				{"Repository/app", "ServiceAccount/app-backup-stashplane", "Role/app-backup-stashplane"},
				{"RoleBinding/app-backup-stashplane", "CronJob/app-backup-nightly"},
			},
		},
		"OwnJobAccount": {
			reason:     "A session's own Job account is bound in the second round too.",
			jobAccount: "runner",
			want: [][]string{
				{"Repository/app", "ServiceAccount/app-backup-stashplane", "Role/app-backup-stashplane"},
				{"RoleBinding/app-backup-stashplane", "CronJob/app-backup-nightly"},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bc := config(func(s *corev1alpha1.BackupConfigurationSpec) {
				s.Sessions[0].Repositories[0].Name = "app"
				if tc.jobAccount != "" {
					jt := &corev1alpha1.AddonJobTemplate{}
					jt.Spec.ServiceAccountName = tc.jobAccount
					s.Sessions[0].Addon = &corev1alpha1.AddonInfo{Name: "workload", JobTemplate: jt}
				}
			})
			bc.Name, bc.Namespace = "app-backup", "team"
			var objs []client.Object
			for _, r := range desiredRepositories(bc) {
				objs = append(objs, r)
			}
			objs = append(objs, desiredAccess(bc, tc.readsObjects)...)
			for _, cj := range desiredCronJobs(bc, "stashplane:test") {
				objs = append(objs, cj)
			}
			stages := applyStages(objs)
			got := make([][]string, len(stages))
			round := map[string]int{}
			for i, stage := range stages {
				for _, o := range stage {
					got[i] = append(got[i], kindName(o))
					round[kindName(o)] = i
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nrounds: -want +got:\n%s", tc.reason, diff)
			}
			// Whatever the names: every binding after its Role.
			for _, o := range objs {
				if b, ok := o.(*rbacv1.RoleBinding); ok {
					if r, ok := round["Role/"+b.RoleRef.Name]; !ok || r >= round[kindName(b)] {
						t.Errorf("RoleBinding %s is applied in round %d, its Role %s in round %d (present: %t)", b.Name, round[kindName(b)], b.RoleRef.Name, r, ok)
					}
				}
			}
		})
	}
}

func kindName(o client.Object) string {
	t := fmt.Sprintf("%T", o)
	return t[strings.LastIndex(t, ".")+1:] + "/" + o.GetName()
}
