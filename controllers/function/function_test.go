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

package function

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
)

// kube talks to the test API server, on which the Function controller
// runs; startErr says why it did not start.
var (
	kube     client.Client
	startErr error
)

func TestMain(m *testing.M) {
	stop, err := start()
	startErr = err
	code := m.Run()
	stop()
	os.Exit(code)
}

// start runs a real kube-apiserver and etcd from KUBEBUILDER_ASSETS (or the
// repository's bin/) with Stashplane's CRDs, and the controller against it.
func start() (func(), error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir, _ = filepath.Abs(filepath.Join("..", "..", "bin"))
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return func() {}, fmt.Errorf("cannot find %s in %q: run `make tools`: %w", b, dir, err)
		}
	}
	s := runtime.NewScheme()
	if err := addonsv1alpha1.AddToScheme(s); err != nil {
		return func() {}, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "package", "crds")},
		ErrorIfCRDPathMissing: true,
		Scheme:                s,
	}
	cfg, err := env.Start()
	if err != nil {
		return func() {}, fmt.Errorf("cannot start test control plane: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: s, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		_ = env.Stop()
		return func() {}, fmt.Errorf("cannot create manager: %w", err)
	}
	if err := Setup(mgr, Options{Log: logr.Discard(), Clock: clocktesting.NewFakePassiveClock(stamp)}); err != nil {
		_ = env.Stop()
		return func() {}, err
	}
	// The tests read through a client without the manager's cache, so that
	// what they see is what the API server holds.
	if kube, err = client.New(cfg, client.Options{Scheme: s}); err != nil {
		_ = env.Stop()
		return func() {}, fmt.Errorf("cannot create client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = mgr.Start(ctx) }()
	return func() { cancel(); _ = env.Stop() }, nil
}

// stamp is the time of the controller's clock: every condition it sets
// carries it.
var stamp = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const validTemplate = `#Params: {paths!: [...string]}
objects: [{apiVersion: "batch/v1", kind: "Job", metadata: name: context.session.name}]
`

// brokenTemplate has a type conflict on line 2, column 31.
const brokenTemplate = `#Params: {}
objects: [{kind: "Job", spec: 1 & "one"}]
`

// waitCondition polls until the Function's TemplateValid condition was set
// for its current generation, and returns it.
func waitCondition(t *testing.T, name string) xpv2.Condition {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		fn := &addonsv1alpha1.Function{}
		if err := kube.Get(context.Background(), types.NamespacedName{Name: name}, fn); err != nil {
			t.Fatal(err)
		}
		c := fn.GetCondition(addonsv1alpha1.TypeTemplateValid)
		if c.Status != corev1.ConditionUnknown && fn.Status.ObservedGeneration == fn.Generation {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("function %q: TemplateValid not set for generation %d", name, fn.Generation)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestFunctionController(t *testing.T) {
	if startErr != nil {
		t.Fatal(startErr)
	}
	type want struct {
		status corev1.ConditionStatus
		reason xpv2.ConditionReason
		// message must contain this.
		message string
	}
	cases := map[string]struct {
		reason   string
		template string
		// fixed, when set, replaces the template after the first check.
		fixed     string
		want      want
		wantFixed want
	}{
		"Valid": {
			reason:   "A template that follows the contract is TemplateValid.",
			template: validTemplate,
			want:     want{status: corev1.ConditionTrue, reason: addonsv1alpha1.ReasonTemplateCompiled},
		},
		"Broken": {
			reason:   "A deliberately broken template is not valid, and the condition carries CUE's file:line:col, path and reason.",
			template: brokenTemplate,
			want: want{status: corev1.ConditionFalse, reason: addonsv1alpha1.ReasonTemplateInvalid,
				message: `broken.cue:2:31: objects.0.spec: conflicting values 1 and "one"`},
		},
		"Fixed": {
			reason:    "Fixing a broken template makes it valid again.",
			template:  brokenTemplate,
			fixed:     validTemplate,
			want:      want{status: corev1.ConditionFalse, reason: addonsv1alpha1.ReasonTemplateInvalid, message: "fixed.cue:2:31"},
			wantFixed: want{status: corev1.ConditionTrue, reason: addonsv1alpha1.ReasonTemplateCompiled},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fn := &addonsv1alpha1.Function{
				ObjectMeta: metav1.ObjectMeta{Name: strings.ToLower(name)},
				Spec:       addonsv1alpha1.FunctionSpec{Template: tc.template},
			}
			if err := kube.Create(context.Background(), fn); err != nil {
				t.Fatal(err)
			}
			check := func(w want) {
				t.Helper()
				c := waitCondition(t, fn.Name)
				if diff := cmp.Diff(w.status, c.Status); diff != "" {
					t.Errorf("\n%s\nstatus: -want +got:\n%s\nmessage: %s", tc.reason, diff, c.Message)
				}
				if diff := cmp.Diff(w.reason, c.Reason); diff != "" {
					t.Errorf("\n%s\nreason: -want +got:\n%s", tc.reason, diff)
				}
				if !strings.Contains(c.Message, w.message) {
					t.Errorf("\n%s\nmessage %q does not contain %q", tc.reason, c.Message, w.message)
				}
				if diff := cmp.Diff(stamp, c.LastTransitionTime.UTC()); diff != "" {
					t.Errorf("\n%s\nlastTransitionTime, from the controller's clock: -want +got:\n%s", tc.reason, diff)
				}
			}
			check(tc.want)
			if tc.fixed == "" {
				return
			}
			if err := kube.Get(context.Background(), types.NamespacedName{Name: fn.Name}, fn); err != nil {
				t.Fatal(err)
			}
			fn.Spec.Template = tc.fixed
			if err := kube.Update(context.Background(), fn); err != nil {
				t.Fatal(err)
			}
			check(tc.wantFixed)
		})
	}
}
