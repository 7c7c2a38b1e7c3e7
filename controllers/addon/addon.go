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

// Package addon reports whether each Addon can be used: every task names a
// Function that exists and has a valid template, and the parameter
// defaults each task declares satisfy that Function's #Params. The check
// a configuration's task parameters must pass is render.ValidateTasks.
package addon

import (
	"context"
	"fmt"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// name of the controller, in logs and metrics.
const name = "addon"

// maxMessage bounds a condition message.
const maxMessage = 2048

// Options configure the Addon controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	// Renderer checks templates and defaults; one with default limits if
	// nil.
	Renderer *render.Renderer
	// Clock stamps conditions; the real one if nil.
	Clock clock.PassiveClock
}

// Setup adds the Addon controller to the manager. A change to a Function
// re-checks every Addon that names it.
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
		For(&addonsv1alpha1.Addon{}).
		Watches(&addonsv1alpha1.Function{}, handler.EnqueueRequestsFromMapFunc(r.addonsNaming)).
		Complete(r)
}

// Reconciler sets an Addon's FunctionsResolved condition.
type Reconciler struct {
	client   client.Client
	log      logr.Logger
	renderer *render.Renderer
	clock    clock.PassiveClock
}

// addonsNaming maps a Function to the Addons whose tasks name it.
func (r *Reconciler) addonsNaming(ctx context.Context, o client.Object) []reconcile.Request {
	l := &addonsv1alpha1.AddonList{}
	if err := r.client.List(ctx, l); err != nil {
		r.log.Error(err, "cannot list addons", "function", o.GetName())
		return nil
	}
	var out []reconcile.Request
	for i := range l.Items {
		for _, kt := range render.Tasks(&l.Items[i]) {
			if kt.Task.Function == o.GetName() {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: l.Items[i].Name}})
				break
			}
		}
	}
	return out
}

// Reconcile checks every task of the Addon and records the outcome.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := &addonsv1alpha1.Addon{}
	if err := r.client.Get(ctx, req.NamespacedName, a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	c, err := r.check(ctx, a)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := a.Status.DeepCopy()
	a.SetConditions(c)
	a.Status.ObservedGeneration = a.Generation
	if equality.Semantic.DeepEqual(before, &a.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.client.Status().Update(ctx, a); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot update status of addon %q: %w", a.Name, err)
	}
	r.log.V(1).Info("checked addon", "addon", a.Name, "reason", c.Reason)
	return ctrl.Result{}, nil
}

// check returns the FunctionsResolved condition of an Addon, naming the
// first task that is not usable. An error is returned only when the API
// server could not be asked.
func (r *Reconciler) check(ctx context.Context, a *addonsv1alpha1.Addon) (xpv2.Condition, error) {
	c := xpv2.Condition{
		Type:               addonsv1alpha1.TypeFunctionsResolved,
		Status:             corev1.ConditionTrue,
		Reason:             addonsv1alpha1.ReasonFunctionsResolved,
		LastTransitionTime: metav1.NewTime(r.clock.Now()),
		ObservedGeneration: a.Generation,
	}
	for _, kt := range render.Tasks(a) {
		fn := &addonsv1alpha1.Function{}
		err := r.client.Get(ctx, types.NamespacedName{Name: kt.Task.Function}, fn)
		if kerrors.IsNotFound(err) {
			c.Status, c.Reason = corev1.ConditionFalse, addonsv1alpha1.ReasonFunctionNotFound
			c.Message = fmt.Sprintf("%s task %q: function %q not found", kt.Kind, kt.Task.Name, kt.Task.Function)
			return c, nil
		}
		if err != nil {
			return c, fmt.Errorf("cannot get function %q: %w", kt.Task.Function, err)
		}
		if err := r.renderer.CheckFunction(ctx, fn); err != nil {
			c.Status, c.Reason = corev1.ConditionFalse, addonsv1alpha1.ReasonFunctionInvalid
			c.Message = truncate(fmt.Sprintf("%s task %q: function %q: %v", kt.Kind, kt.Task.Name, fn.Name, err))
			return c, nil
		}
		task := kt.Task
		if err := r.renderer.CheckTaskDefaults(ctx, &task, fn); err != nil {
			c.Status, c.Reason = corev1.ConditionFalse, addonsv1alpha1.ReasonFunctionInvalid
			c.Message = truncate(fmt.Sprintf("%s task %q: parameter defaults do not satisfy function %q: %v", kt.Kind, kt.Task.Name, fn.Name, err))
			return c, nil
		}
	}
	return c, nil
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}
