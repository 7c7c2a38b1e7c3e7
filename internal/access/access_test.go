package access

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
)

func TestShortName(t *testing.T) {
	long := "a-very-long-backup-configuration-name-that-goes-on-and-on"
	cases := map[string]struct {
		reason string
		base   string
		suffix string
		max    int
		want   int
	}{
		"Short":      {reason: "A name that fits is kept whole.", base: "app", suffix: "-nightly", max: 52, want: len("app-nightly")},
		"Long":       {reason: "A name that does not fit is cut to the limit.", base: long + "-nightly", max: 52, want: 52},
		"LongSuffix": {reason: "The suffix survives the cut.", base: long, suffix: "-stashplane", max: 63, want: 63},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := ShortName(tc.base, tc.suffix, tc.max)
			if diff := cmp.Diff(tc.want, len(got)); diff != "" {
				t.Errorf("%s\nlen(ShortName(...)) = %q: -want +got:\n%s", tc.reason, got, diff)
			}
		})
	}
	if ShortName(long+"-nightly", "", 52) == ShortName(long+"-weekly", "", 52) {
		t.Errorf("ShortName gives two different bases the same name")
	}
}

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
