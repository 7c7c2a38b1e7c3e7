package tenancy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
)

func TestObjects(t *testing.T) {
	rules := []rbacv1.PolicyRule{{APIGroups: []string{"x"}, Resources: []string{"y"}, Verbs: []string{"get"}}}
	objs := Objects("runner", "apps", nil, rules)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind+"/"+o.GetNamespace()+"/"+o.GetName())
	}
	if diff := cmp.Diff([]string{"ServiceAccount/apps/runner", "Role/apps/runner", "RoleBinding/apps/runner"}, kinds); diff != "" {
		t.Errorf("Objects(): -want +got:\n%s", diff)
	}
	if diff := cmp.Diff(rules, objs[1].(*rbacv1.Role).Rules); diff != "" {
		t.Errorf("Role rules: -want +got:\n%s", diff)
	}
	rb := objs[2].(*rbacv1.RoleBinding)
	if rb.RoleRef.Name != "runner" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "runner" || rb.Subjects[0].Namespace != "apps" {
		t.Errorf("RoleBinding does not bind the account to the role: %+v", rb)
	}
}

// TestObjectsAlso: the accounts a user's jobTemplate names are bound to
// the Role too, each once, beside the account Stashplane makes.
func TestObjectsAlso(t *testing.T) {
	cases := map[string]struct {
		reason string
		also   []string
		want   []string
	}{
		"None":     {reason: "Without a named account only Stashplane's is bound.", want: []string{"runner"}},
		"Named":    {reason: "A named account is bound beside it.", also: []string{"backup-runner"}, want: []string{"runner", "backup-runner"}},
		"Repeated": {reason: "An account named twice, empty or Stashplane's own, is bound once.", also: []string{"b", "", "b", "runner"}, want: []string{"runner", "b"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rb := Objects("runner", "apps", nil, nil, tc.also...)[2].(*rbacv1.RoleBinding)
			var got []string
			for _, s := range rb.Subjects {
				if s.Kind != rbacv1.ServiceAccountKind || s.Namespace != "apps" {
					t.Errorf("%s\nsubject %+v is not a ServiceAccount of apps", tc.reason, s)
				}
				got = append(got, s.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nRoleBinding subjects: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestVerdictPolicy(t *testing.T) {
	cases := map[string]struct {
		reason string
		user   string
		want   string
	}{
		"ServiceAccount": {
			reason: "The provider's account is the one user the policy lets change a verdict, beside system:masters.",
			user:   "system:serviceaccount:crossplane-system:provider-stashplane",
			want:   `request.userInfo.username == "system:serviceaccount:crossplane-system:provider-stashplane" || 'system:masters' in request.userInfo.groups || (`,
		},
		"QuotedName": {
			reason: "A user name holding quotes stays one CEL string literal.",
			user:   `a"b\c`,
			want:   `request.userInfo.username == "a\"b\\c" || 'system:masters' in request.userInfo.groups || (`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			policy, binding := VerdictPolicy(tc.user)
			expr := policy.Spec.Validations[0].Expression
			if diff := cmp.Diff(tc.want, expr[:len(tc.want)]); diff != "" {
				t.Errorf("%s\nexpression: -want +got:\n%s", tc.reason, diff)
			}
			for _, f := range verdictFields {
				if !strings.Contains(expr, "object.?status.?"+f+" == oldObject.?status.?"+f) {
					t.Errorf("%s\nexpression does not keep %s: %s", tc.reason, f, expr)
				}
			}
			if binding.Spec.PolicyName != policy.Name || policy.Name != VerdictPolicyName {
				t.Errorf("%s\nbinding %q binds policy %q, want %q", tc.reason, binding.Name, binding.Spec.PolicyName, policy.Name)
			}
		})
	}
}
