package stashpkg_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/stashplane/stashplane/internal/agentapi"
	stashpkg "github.com/stashplane/stashplane/package"
)

type access struct {
	group, resource string
	verbs           []string
}

// TestRules lists what the controllers are known to do to each resource
// (allowed) and what they must not be able to do, so that the rules stay
// least. A controller that reads or writes something new must add it here
// and to rbac/provider.yaml; test/e2e/rbac_test.go catches one that does
// not.
func TestRules(t *testing.T) {
	rules, err := stashpkg.Rules()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason  string
		allowed bool
		access  access
	}{
		"Jobs": {
			reason:  "Backup, restore and verifier Jobs are created, watched, and deleted when finished or beyond history.",
			allowed: true,
			access:  access{"batch", "jobs", []string{"get", "list", "watch", "create", "delete"}},
		},
		"CronJobs": {
			reason:  "Configuration and verifier schedules are applied and removed.",
			allowed: true,
			access:  access{"batch", "cronjobs", []string{"get", "list", "watch", "create", "patch", "delete"}},
		},
		"Pods": {
			reason:  "Accessor pods are watched, a DaemonSet's pods are listed for their nodes.",
			allowed: true,
			access:  access{"", "pods", []string{"get", "list", "watch"}},
		},
		"PodLogs": {
			reason:  "A Query or Script verifier's result is the last line of its pod's log.",
			allowed: true,
			access:  access{"", "pods/log", []string{"get"}},
		},
		"PersistentVolumeClaims": {
			reason:  "A verification restores into a scratch claim and removes it.",
			allowed: true,
			access:  access{"", "persistentvolumeclaims", []string{"get", "list", "watch", "create", "delete"}},
		},
		"Namespaces": {
			reason:  "Usage policies select namespaces by label.",
			allowed: true,
			access:  access{"", "namespaces", []string{"get", "list", "watch"}},
		},
		"Secrets": {
			reason:  "Credentials and repository passwords are read; a local storage's accessor Secret is created and removed.",
			allowed: true,
			access:  access{"", "secrets", []string{"get", "list", "watch", "create", "delete"}},
		},
		"Events": {
			reason:  "Managed resources record events.",
			allowed: true,
			access:  access{"", "events", []string{"create", "patch"}},
		},
		"Leases": {
			reason:  "Replicas take turns through a Lease; a verification session locks its Snapshot with one and removes it when done.",
			allowed: true,
			access:  access{"coordination.k8s.io", "leases", []string{"get", "create", "update", "delete"}},
		},
		"TokenReviews": {
			reason:  "The metrics endpoint authenticates a scraper's bearer token.",
			allowed: true,
			access:  access{"authentication.k8s.io", "tokenreviews", []string{"create"}},
		},
		"SubjectAccessReviews": {
			reason:  "The metrics endpoint asks whether a scraper may get /metrics.",
			allowed: true,
			access:  access{"authorization.k8s.io", "subjectaccessreviews", []string{"create"}},
		},
		"ServiceAccounts": {
			reason:  "The agent's ServiceAccount is applied and owned.",
			allowed: true,
			access:  access{"", "serviceaccounts", []string{"get", "list", "watch", "create", "patch"}},
		},
		"Roles": {
			reason:  "The agent's Role is applied and owned; one in another namespace is deleted with its restore or backup configuration.",
			allowed: true,
			access:  access{"rbac.authorization.k8s.io", "roles", []string{"get", "list", "watch", "create", "patch", "delete"}},
		},
		"RoleBindings": {
			reason:  "The agent's RoleBinding is applied, and deleted with a restore or backup configuration that reached another namespace.",
			allowed: true,
			access:  access{"rbac.authorization.k8s.io", "rolebindings", []string{"create", "patch", "delete"}},
		},
		"Deployments": {
			reason:  "Deployments are targets and run a local storage's accessor.",
			allowed: true,
			access:  access{"apps", "deployments", []string{"get", "list", "watch", "create", "patch", "delete"}},
		},
		"StatefulSetsDaemonSets": {
			reason:  "StatefulSets and DaemonSets are targets.",
			allowed: true,
			access:  access{"apps", "statefulsets", []string{"get", "list", "watch"}},
		},
		"DaemonSets": {
			reason:  "DaemonSets are targets.",
			allowed: true,
			access:  access{"apps", "daemonsets", []string{"get", "list", "watch"}},
		},
		"OldSessions": {
			reason:  "Sessions beyond a history limit are deleted, which the system role does not allow.",
			allowed: true,
			access:  access{"core.stashplane.io", "backupsessions", []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		},
		"OldVerificationSessions": {
			reason:  "Verification sessions beyond a history limit are deleted.",
			allowed: true,
			access:  access{"core.stashplane.io", "backupverificationsessions", []string{"create", "delete"}},
		},
		"RestoreSessionsOfOldVerifications": {
			reason:  "A removed verification session's RestoreSession goes with it.",
			allowed: true,
			access:  access{"core.stashplane.io", "restoresessions", []string{"create", "delete"}},
		},
		"SnapshotStatus": {
			reason:  "Sessions record a Snapshot's backup and verification in its status.",
			allowed: true,
			access:  access{"storage.stashplane.io", "snapshots/status", []string{"get", "update", "patch"}},
		},
		"Finalizers": {
			reason:  "Owner references that block deletion need update on the owner's finalizers.",
			allowed: true,
			access:  access{"storage.stashplane.io", "backupstorages/finalizers", []string{"update"}},
		},
		"Escalate": {
			reason: "Agent Roles only hold rules the provider holds, so it needs no escalate or bind.",
			access: access{"rbac.authorization.k8s.io", "roles", []string{"escalate", "bind"}},
		},
		"ClusterRoles": {
			reason: "Everything the provider grants is namespaced.",
			access: access{"rbac.authorization.k8s.io", "clusterroles", []string{"create", "patch", "bind"}},
		},
		"PodsWrite": {
			reason: "Pods are made by Jobs and Deployments, never directly.",
			access: access{"", "pods", []string{"create", "delete", "patch"}},
		},
		"PodsAttach": {
			reason: "Pod hooks exec a command; nothing attaches to a workload's running process.",
			access: access{"", "pods/attach", []string{"create", "get"}},
		},
		"Nodes": {
			reason: "Node names come from pods.",
			access: access{"", "nodes", []string{"get", "list"}},
		},
		"WorkloadsDelete": {
			reason: "Targets are read, and recreated by a manifest-restore Job's Role, never deleted.",
			access: access{"apps", "statefulsets", []string{"delete"}},
		},
		"ObjectsRecreated": {
			reason:  "A manifest-restore Job is granted what recreates a workload and what it needs, which the provider must hold.",
			allowed: true,
			access:  access{"apps", "daemonsets", []string{"get", "list", "watch", "create", "update", "patch"}},
		},
		"SnapshotsDelete": {
			reason:  "Retention removes the Snapshots its policy no longer keeps.",
			allowed: true,
			access:  access{"storage.stashplane.io", "snapshots", []string{"delete"}},
		},
		"RepositoriesDelete": {
			reason: "The provider never deletes a Repository, nor through it its Snapshots and data: a user does (docs/retention.md).",
			access: access{"storage.stashplane.io", "repositories", []string{"delete"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff([]string(nil), mismatched(rules, tc.access, tc.allowed)); diff != "" {
				t.Errorf("\n%s\nverbs on %s %q whose allowed is not %t, -want +got:\n%s", tc.reason, tc.access.group, tc.access.resource, tc.allowed, diff)
			}
		})
	}
}

// mismatched returns the verbs of a that rules allow when allowed is
// false, or do not allow when it is true.
func mismatched(rules []rbacv1.PolicyRule, a access, allowed bool) []string {
	var out []string
	for _, v := range a.verbs {
		if stashpkg.Allows(rules, a.group, a.resource, v) != allowed {
			out = append(out, v)
		}
	}
	return out
}

// TestAgentRulesHeld checks that the provider holds every rule it puts in
// an agent's Role: the API server refuses a Role granting more than its
// creator has unless the creator may escalate.
func TestAgentRulesHeld(t *testing.T) {
	rules, err := stashpkg.Rules()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]rbacv1.PolicyRule{
		"Rules":            agentapi.Rules(),
		"StorageRules":     agentapi.StorageRules(),
		"RestoreRules":     agentapi.RestoreRules(),
		"RestoreReadRules": agentapi.RestoreReadRules("app", "app-1"),
		"StorageRulesFor":  agentapi.StorageRulesFor("shared"),
		"PruneLockRules":   agentapi.PruneLockRules(),
		"ReportRulesFor":   agentapi.ReportRulesFor([]string{"app-nightly-1"}),
		"ObjectReadRules":  agentapi.ObjectReadRules(),
		"ObjectWriteRules": agentapi.ObjectWriteRulesFor("app-restore"),
	}
	for name, granted := range cases {
		t.Run(name, func(t *testing.T) {
			var missing []string
			for _, r := range granted {
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							if !stashpkg.Allows(rules, g, res, v) {
								missing = append(missing, g+"/"+res+":"+v)
							}
						}
					}
				}
			}
			if diff := cmp.Diff([]string(nil), missing); diff != "" {
				t.Errorf("agentapi.%s grants what the provider does not hold, -want +got:\n%s", name, diff)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get"}},
		{APIGroups: []string{"*"}, Resources: []string{"widgets"}, Verbs: []string{"*"}},
		{APIGroups: []string{"x.io"}, Resources: []string{"*/finalizers"}, Verbs: []string{"update"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"one"}},
	}
	cases := map[string]struct {
		reason                string
		group, resource, verb string
		want                  bool
	}{
		"Listed":            {reason: "A rule naming group, resource and verb allows it.", group: "batch", resource: "jobs", verb: "get", want: true},
		"OtherVerb":         {reason: "Other verbs are not allowed.", group: "batch", resource: "jobs", verb: "create"},
		"OtherGroup":        {reason: "The group must match.", group: "apps", resource: "jobs", verb: "get"},
		"Subresource":       {reason: "A resource does not allow its subresources.", group: "batch", resource: "jobs/status", verb: "get"},
		"Wildcards":         {reason: "Any group and verb.", group: "y.io", resource: "widgets", verb: "delete", want: true},
		"FinalizersOfAny":   {reason: "*/finalizers matches each resource's finalizers.", group: "x.io", resource: "things/finalizers", verb: "update", want: true},
		"FinalizersNotKind": {reason: "*/finalizers does not match the resource itself.", group: "x.io", resource: "things", verb: "update"},
		"ResourceNames":     {reason: "A rule limited to names does not allow every object.", group: "", resource: "secrets", verb: "get"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := stashpkg.Allows(rules, tc.group, tc.resource, tc.verb)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nAllows(%q, %q, %q), -want +got:\n%s", tc.reason, tc.group, tc.resource, tc.verb, diff)
			}
		})
	}
}

// TestMetricsReaderRules: a scraper bound to stashplane-metrics-reader may
// get /metrics and nothing else.
func TestMetricsReaderRules(t *testing.T) {
	rules, err := stashpkg.MetricsReaderRules()
	if err != nil {
		t.Fatal(err)
	}
	want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("stashplane-metrics-reader: -want +got:\n%s", diff)
	}
}
