package access

import (
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
