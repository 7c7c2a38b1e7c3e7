/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package addon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	stashpkg "github.com/stashplane/stashplane/package"
)

// kube reads and writes the test API server directly, without a cache.
var (
	kube     client.Client
	startErr error
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithCancel(context.Background())
	env, err := startControlPlane(ctx)
	startErr = err
	code := m.Run()
	cancel()
	if env != nil {
		_ = env.Stop()
	}
	os.Exit(code)
}

// startControlPlane runs kube-apiserver and etcd from KUBEBUILDER_ASSETS
// (or bin/) with the CRDs, and the Addon controller against them. Missing
// binaries fail every test rather than skipping it.
func startControlPlane(ctx context.Context) (*envtest.Environment, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets, _ = filepath.Abs(filepath.Join("..", "..", "bin"))
	}
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		return nil, fmt.Errorf("cannot find kube-apiserver in %q: run `make tools`: %w", assets, err)
	}
	scheme := runtime.NewScheme()
	if err := addonsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "package", "crds")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("cannot start test control plane: %w", err)
	}
	if kube, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return env, fmt.Errorf("cannot create client: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		return env, fmt.Errorf("cannot create manager: %w", err)
	}
	if err := Setup(mgr, Options{Log: logr.Discard(), Clock: clocktesting.NewFakePassiveClock(stamp)}); err != nil {
		return env, err
	}
	go func() { _ = mgr.Start(ctx) }()
	return env, nil
}

// copyFn is a Function whose #Params has a required list and an int with a
// lower bound, so that defaults can break it.
// stamp is the time of the controller's clock: every condition it sets
// carries it.
var stamp = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const copyFn = `#Params: {
	paths!: [...string]
	retries: int & >=0 | *2
}
objects: [{apiVersion: "batch/v1", kind: "Job", metadata: name: context.session.name}]
`

// waitResolved polls until the Addon's FunctionsResolved condition is set
// for its generation and satisfies ok.
func waitResolved(t *testing.T, name string, ok func(xpv2.Condition) bool) xpv2.Condition {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := &addonsv1alpha1.Addon{}
		if err := kube.Get(context.Background(), types.NamespacedName{Name: name}, a); err != nil {
			t.Fatal(err)
		}
		c := a.GetCondition(addonsv1alpha1.TypeFunctionsResolved)
		if c.Status != corev1.ConditionUnknown && a.Status.ObservedGeneration == a.Generation && ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("addon %q: FunctionsResolved is %s %s %q", name, c.Status, c.Reason, c.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func anyCondition(xpv2.Condition) bool { return true }

func TestAddonController(t *testing.T) {
	if startErr != nil {
		t.Fatal(startErr)
	}
	ctx := context.Background()
	fn := &addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: "copy-fn"}, Spec: addonsv1alpha1.FunctionSpec{Template: copyFn}}
	if err := kube.Create(ctx, fn); err != nil {
		t.Fatal(err)
	}
	type want struct {
		status  corev1.ConditionStatus
		reason  xpv2.ConditionReason
		message string
		time    time.Time
	}
	cases := map[string]struct {
		reason string
		task   addonsv1alpha1.Task
		want   want
	}{
		"Resolved": {
			reason: "A task whose Function exists, is valid and accepts the defaults resolves.",
			task: addonsv1alpha1.Task{Name: "copy", Function: "copy-fn", Parameters: []addonsv1alpha1.ParameterDefinition{
				{Name: "paths", Required: true}, {Name: "retries", Default: "3"},
			}},
			want: want{status: corev1.ConditionTrue, reason: addonsv1alpha1.ReasonFunctionsResolved},
		},
		"FunctionMissing": {
			reason: "A task naming a Function that does not exist is not resolved.",
			task:   addonsv1alpha1.Task{Name: "copy", Function: "no-such-fn"},
			want:   want{status: corev1.ConditionFalse, reason: addonsv1alpha1.ReasonFunctionNotFound, message: `backup task "copy": function "no-such-fn" not found`},
		},
		"DefaultViolatesSchema": {
			reason: "A declared default that #Params refuses makes the Addon not ready, with CUE's position and path.",
			task: addonsv1alpha1.Task{Name: "copy", Function: "copy-fn", Parameters: []addonsv1alpha1.ParameterDefinition{
				{Name: "retries", Default: "-1"},
			}},
			want: want{status: corev1.ConditionFalse, reason: addonsv1alpha1.ReasonFunctionInvalid, message: "copy-fn.cue:3:17: params.retries: invalid value -1"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := &addonsv1alpha1.Addon{
				ObjectMeta: metav1.ObjectMeta{Name: strings.ToLower(name)},
				Spec:       addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{tc.task}},
			}
			if err := kube.Create(ctx, a); err != nil {
				t.Fatal(err)
			}
			c := waitResolved(t, a.Name, anyCondition)
			got := want{status: c.Status, reason: c.Reason, message: c.Message, time: c.LastTransitionTime.UTC()}
			tc.want.time = stamp
			if !strings.Contains(c.Message, tc.want.message) {
				t.Errorf("\n%s\nmessage %q does not contain %q", tc.reason, c.Message, tc.want.message)
			}
			got.message = tc.want.message
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("\n%s\nFunctionsResolved: -want +got:\n%s", tc.reason, diff)
			}
		})
	}

	t.Run("FunctionCreatedLater", func(t *testing.T) {
		// An Addon waiting for its Function resolves once the Function
		// appears, without a change to the Addon.
		a := &addonsv1alpha1.Addon{
			ObjectMeta: metav1.ObjectMeta{Name: "waits-for-fn"},
			Spec:       addonsv1alpha1.AddonSpec{RestoreTasks: []addonsv1alpha1.Task{{Name: "restore", Function: "late-fn"}}},
		}
		if err := kube.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		waitResolved(t, a.Name, func(c xpv2.Condition) bool { return c.Reason == addonsv1alpha1.ReasonFunctionNotFound })
		late := &addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: "late-fn"}, Spec: addonsv1alpha1.FunctionSpec{Template: copyFn}}
		if err := kube.Create(ctx, late); err != nil {
			t.Fatal(err)
		}
		waitResolved(t, a.Name, func(c xpv2.Condition) bool { return c.Status == corev1.ConditionTrue })
	})

	t.Run("BuiltinAddons", func(t *testing.T) {
		// The addons shipped in the package resolve on a real API server.
		objs, err := stashpkg.Addons()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if err := kube.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range []string{"workload-addon", "pvc-addon"} {
			c := waitResolved(t, n, func(c xpv2.Condition) bool { return c.Status == corev1.ConditionTrue })
			if c.Reason != addonsv1alpha1.ReasonFunctionsResolved {
				t.Errorf("addon %q: reason %q", n, c.Reason)
			}
		}
	})
}

func TestValidateTasks(t *testing.T) {
	if startErr != nil {
		t.Fatal(startErr)
	}
	// The built-in workload-addon is created by TestAddonController's
	// BuiltinAddons; create it here too when this test runs alone.
	objs, err := stashpkg.Addons()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := kube.Create(context.Background(), o); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	cases := map[string]struct {
		reason string
		info   *corev1alpha1.AddonInfo
		// want is a part of the error; empty means no error.
		want string
	}{
		"Valid": {
			reason: "Parameters that satisfy the Function pass.",
			info:   addonInfo("workload-addon", "logical-backup", `{"paths": ["/data"]}`),
		},
		"MissingRequired": {
			reason: "Leaving out a required parameter is a clear error naming the task and the CUE path.",
			info:   addonInfo("workload-addon", "logical-backup", `{}`),
			want:   `task "logical-backup" of addon "workload-addon": cannot validate task parameters: params.paths: parameter is required`,
		},
		"WrongType": {
			reason: "A parameter of the wrong type names the path and the conflict.",
			info:   addonInfo("workload-addon", "logical-backup", `{"paths": 7}`),
			want:   "params.paths: conflicting values",
		},
		"UnknownTask": {
			reason: "A task the Addon does not have is an error.",
			info:   addonInfo("workload-addon", "no-such-task", `{}`),
			want:   `cannot find backup task "no-such-task" in addon "workload-addon"`,
		},
		"UnknownAddon": {
			reason: "An Addon that does not exist is an error.",
			info:   addonInfo("no-such-addon", "logical-backup", `{}`),
			want:   `cannot get addon "no-such-addon"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := render.ValidateTasks(context.Background(), kube, nil, render.TaskBackup, tc.info)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("\n%s\nValidateTasks(...): got error %q, want one containing %q", tc.reason, got, tc.want)
			}
		})
	}
}

func addonInfo(addon, task, params string) *corev1alpha1.AddonInfo {
	return &corev1alpha1.AddonInfo{Name: addon, Tasks: []corev1alpha1.TaskReference{{
		Name: task, Params: &runtime.RawExtension{Raw: []byte(params)},
	}}}
}
