package backupconfiguration

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestCheckHooks(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1alpha1.AddToScheme, corev1.AddToScheme, addonsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := func(ns, name string, ex corev1alpha1.HookExecutorType, a corev1alpha1.HookAction) *corev1alpha1.HookTemplate {
		return &corev1alpha1.HookTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1alpha1.HookTemplateSpec{Action: &a, Executor: corev1alpha1.HookExecutor{Type: ex}}}
	}
	exec := corev1alpha1.HookAction{Exec: &corev1.ExecAction{Command: []string{"true"}}}
	fnTmpl := func(name, fn string, a *corev1alpha1.HookAction) *corev1alpha1.HookTemplate {
		return &corev1alpha1.HookTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name},
			Spec: corev1alpha1.HookTemplateSpec{Action: a, Executor: corev1alpha1.HookExecutor{
				Type: corev1alpha1.HookExecutorFunction, Function: &corev1alpha1.FunctionHookExecutorSpec{Name: fn}}}}
	}
	get := corev1alpha1.HookAction{HTTPGet: &corev1.HTTPGetAction{Path: "/"}}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithRuntimeObjects(
		tmpl("app", "freeze", corev1alpha1.HookExecutorPod, exec),
		tmpl("app", "job", corev1alpha1.HookExecutorFunction, exec),
		fnTmpl("fn-job", "quiesce", nil),
		fnTmpl("fn-missing", "absent", nil),
		fnTmpl("fn-action", "quiesce", &exec),
		&addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: "quiesce"}},
		tmpl("app", "pod-get", corev1alpha1.HookExecutorPod, get),
		tmpl("platform", "private", corev1alpha1.HookExecutorPod, exec),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}},
	).Build()
	with := func(pre, post string, mod ...func(*corev1alpha1.HookInfo)) *corev1alpha1.BackupConfiguration {
		bc := config(func(s *corev1alpha1.BackupConfigurationSpec) {
			s.Sessions[0].Hooks = &corev1alpha1.BackupHooks{}
			if pre != "" {
				s.Sessions[0].Hooks.PreBackup = []corev1alpha1.HookInfo{{Name: "pre", HookTemplate: storagev1alpha1.ObjectReference{Name: pre}}}
				for _, m := range mod {
					m(&s.Sessions[0].Hooks.PreBackup[0])
				}
			}
			if post != "" {
				s.Sessions[0].Hooks.PostBackup = []corev1alpha1.HookInfo{{Name: "post", HookTemplate: storagev1alpha1.ObjectReference{Name: post}}}
			}
		})
		bc.Namespace = "app"
		return bc
	}
	cases := map[string]struct {
		bc          *corev1alpha1.BackupConfiguration
		want        string
		wantInvalid bool
	}{
		"hooks that can run": {bc: with("freeze", "freeze")},
		"no hooks":           {bc: config(nil)},
		"a missing template": {bc: with("freeze", "thaw"), want: `session "nightly", postBackup: hooktemplate "thaw" not found in namespace "app"`},
		"a template its policy keeps from this namespace": {
			bc:   with("private", "", func(h *corev1alpha1.HookInfo) { h.HookTemplate.Namespace = "platform" }),
			want: `session "nightly", preBackup: hooktemplate platform/private may not be used from namespace "app": its usagePolicy allows only namespace "platform"`,
		},
		"a Function executor whose Function exists": {bc: with("fn-job", "fn-job")},
		"a Function executor without its function": {
			bc: with("job", ""), wantInvalid: true,
			want: `session "nightly", preBackup: hook "pre": a Function executor needs executor.function, the Function whose Job runs the hook`,
		},
		"a Function executor whose Function is missing": {
			bc:   with("", "fn-missing"),
			want: `session "nightly", postBackup: hook "post": function "absent" of hooktemplate "fn-missing" does not exist`,
		},
		"a Function executor given an action": {
			bc: with("fn-action", ""), wantInvalid: true,
			want: `session "nightly", preBackup: hook "pre": a Function executor runs its Function's Job, which takes no action: remove spec.action, or use a Pod or Operator executor`,
		},
		"an HTTP action in pods": {
			bc: with("pod-get", ""), wantInvalid: true,
			want: `session "nightly", preBackup: hook "pre": a Pod executor carries out exec actions only`,
		},
		"a param the template does not declare": {
			bc: with("freeze", "", func(h *corev1alpha1.HookInfo) { h.Params = &runtime.RawExtension{Raw: []byte(`{"x":"1"}`)} }), wantInvalid: true,
			want: `session "nightly", preBackup: hook "pre" gives params its template does not declare: [x]`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			msg, invalid, err := checkHooks(context.Background(), &input{kube: kube, bc: tc.bc, status: &tc.bc.Status})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, msg); diff != "" || invalid != tc.wantInvalid {
				t.Errorf("invalid %v, want %v; message -want +got:\n%s", invalid, tc.wantInvalid, diff)
			}
		})
	}
}
