package render

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
)

// One Renderer checks a sequence of parameters: what passed once passes
// again without being evaluated, and any change of the inputs is checked
// afresh.
func TestCheckedRemembersPasses(t *testing.T) {
	const retries = `#Params: {retries: int & >=0}
objects: [{apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}]
`
	const atLeastFive = `#Params: {retries: int & >=5}
objects: [{apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}]
`
	addon := &addonsv1alpha1.Addon{
		ObjectMeta: metav1.ObjectMeta{Name: "a"},
		Spec:       addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{{Name: "t", Function: "f"}}},
	}
	fn := func(template string) *addonsv1alpha1.Function {
		return &addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: addonsv1alpha1.FunctionSpec{Template: template}}
	}
	type call struct {
		why        string
		template   string
		params     string
		wantErr    bool
		remembered int
	}
	calls := []call{
		{why: "a pass is remembered", template: retries, params: `{"retries": 1}`, remembered: 1},
		{why: "the same check again passes from memory", template: retries, params: `{"retries": 1}`, remembered: 1},
		{why: "a changed template is evaluated, and refuses", template: atLeastFive, params: `{"retries": 1}`, wantErr: true, remembered: 1},
		{why: "changed parameters are evaluated, and refused", template: retries, params: `{"retries": -1}`, wantErr: true, remembered: 1},
		{why: "other parameters that pass are remembered too", template: retries, params: `{"retries": 2}`, remembered: 2},
	}
	r := New(Options{})
	for i, c := range calls {
		err := r.ValidateParams(context.Background(), addon, TaskBackup, "t", fn(c.template), []byte(c.params))
		if (err != nil) != c.wantErr {
			t.Errorf("call %d (%s): error %v, want error %t", i, c.why, err, c.wantErr)
		}
		if diff := cmp.Diff(c.remembered, len(r.checked.m)); diff != "" {
			t.Errorf("call %d (%s): checks remembered: -want +got:\n%s", i, c.why, diff)
		}
	}
}

// The memory is bounded: past maxChecked it starts again.
func TestCheckedBounded(t *testing.T) {
	c := &checked{}
	for i := range maxChecked + 1 {
		c.pass([32]byte{byte(i), byte(i >> 8), byte(i >> 16)})
	}
	if diff := cmp.Diff(1, len(c.m)); diff != "" {
		t.Errorf("remembered after maxChecked+1 passes: -want +got:\n%s", diff)
	}
}
