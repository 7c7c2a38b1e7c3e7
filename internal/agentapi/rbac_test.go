package agentapi

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

func TestRestoreRulesFor(t *testing.T) {
	want := []rbacv1.PolicyRule{{
		APIGroups:     []string{corev1alpha1.Group},
		Resources:     []string{"restoresessions/status"},
		ResourceNames: []string{"app-restore-1"},
		Verbs:         []string{"patch"},
	}}
	if diff := cmp.Diff(want, RestoreRulesFor("app-restore-1")); diff != "" {
		t.Errorf("RestoreRulesFor lets a restore patch only its own session's status: -want +got:\n%s", diff)
	}
	if got := RestoreRules(); len(got) != 1 || len(got[0].ResourceNames) != 0 {
		t.Errorf("RestoreRulesFor changed RestoreRules: %+v", got)
	}
}

func TestRules(t *testing.T) {
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"storage.stashplane.io"}, Resources: []string{"repositories", "backupstorages", "snapshots"}, Verbs: []string{"get"}},
		{APIGroups: []string{"storage.stashplane.io"}, Resources: []string{"repositories/status"}, Verbs: []string{"patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
	}
	if diff := cmp.Diff(want, Rules()); diff != "" {
		t.Errorf("Rules(): -want +got:\n%s", diff)
	}
}

func TestRestoreRules(t *testing.T) {
	got := RestoreRules()
	if len(got) != 1 || got[0].Resources[0] != "restoresessions/status" || len(got[0].Verbs) != 1 || got[0].Verbs[0] != "patch" {
		t.Errorf("RestoreRules() = %+v, want only patch of restoresessions/status", got)
	}
}

func TestReportRulesFor(t *testing.T) {
	want := []rbacv1.PolicyRule{{
		APIGroups:     []string{"storage.stashplane.io"},
		Resources:     []string{"snapshots/status"},
		ResourceNames: []string{"app-nightly-1", "db-nightly-1"},
		Verbs:         []string{"get", "patch", "update"},
	}}
	if diff := cmp.Diff(want, ReportRulesFor([]string{"app-nightly-1", "db-nightly-1"})); diff != "" {
		t.Errorf("ReportRulesFor lets a run's Jobs write only its own Snapshots' status: -want +got:\n%s", diff)
	}
	for _, r := range Rules() {
		for _, res := range r.Resources {
			if res == "snapshots/status" {
				t.Errorf("Rules() grants %v on snapshots/status to every run of the configuration", r.Verbs)
			}
		}
	}
}
