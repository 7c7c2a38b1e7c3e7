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

// Package function reports whether each Function's CUE template is usable,
// so that a broken template shows on the Function as soon as it is applied,
// with CUE's file:line:col, long before a backup would render it.
package function

import (
	"context"
	"fmt"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// name of the controller, in logs and metrics.
const name = "function"

// maxMessage bounds a condition message; the first problems of a template
// are the ones that matter.
const maxMessage = 2048

// Options configure the Function controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	// Renderer checks templates; one with default limits if nil.
	Renderer *render.Renderer
	// Clock stamps conditions; the real one if nil.
	Clock clock.PassiveClock
}

// Setup adds the Function controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Renderer == nil {
		o.Renderer = render.New(render.Options{})
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	r := &Reconciler{client: mgr.GetClient(), log: o.Log.WithValues("controller", name), renderer: o.Renderer, clock: o.Clock}
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		WithOptions(o.Controller).
		For(&addonsv1alpha1.Function{}).
		Complete(r)
}

// Reconciler sets a Function's TemplateValid condition.
type Reconciler struct {
	client   client.Client
	log      logr.Logger
	renderer *render.Renderer
	clock    clock.PassiveClock
}

// Reconcile checks the Function's template and records the outcome.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	fn := &addonsv1alpha1.Function{}
	if err := r.client.Get(ctx, req.NamespacedName, fn); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := fn.Status.DeepCopy()
	fn.SetConditions(Condition(r.renderer.CheckFunction(ctx, fn), fn.Generation, metav1.NewTime(r.clock.Now())))
	fn.Status.ObservedGeneration = fn.Generation
	if equality.Semantic.DeepEqual(before, &fn.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.client.Status().Update(ctx, fn); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot update status of function %q: %w", fn.Name, err)
	}
	r.log.V(1).Info("checked template", "function", fn.Name, "valid", fn.GetCondition(addonsv1alpha1.TypeTemplateValid).Status)
	return ctrl.Result{}, nil
}

// Condition is the TemplateValid condition for the outcome of checking a
// template at now: True, or False with the error, which names CUE's
// positions.
func Condition(err error, generation int64, now metav1.Time) xpv2.Condition {
	c := xpv2.Condition{
		Type:               addonsv1alpha1.TypeTemplateValid,
		Status:             corev1.ConditionTrue,
		Reason:             addonsv1alpha1.ReasonTemplateCompiled,
		LastTransitionTime: now,
		ObservedGeneration: generation,
	}
	if err != nil {
		c.Status = corev1.ConditionFalse
		c.Reason = addonsv1alpha1.ReasonTemplateInvalid
		c.Message = truncate(err.Error())
	}
	return c
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}
