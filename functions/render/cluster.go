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

package render

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// What the renderer reads from a cluster: the installed Addons and
// Functions, for the controllers that render tasks and check them.

// LoadCatalog reads the installed Addons and Functions into the catalog
// sessions render their tasks from.
func LoadCatalog(ctx context.Context, c client.Reader) (*Catalog, error) {
	addons, fns := &addonsv1alpha1.AddonList{}, &addonsv1alpha1.FunctionList{}
	if err := c.List(ctx, addons); err != nil {
		return nil, fmt.Errorf("cannot list addons: %w", err)
	}
	if err := c.List(ctx, fns); err != nil {
		return nil, fmt.Errorf("cannot list functions: %w", err)
	}
	objs := make([]client.Object, 0, len(addons.Items)+len(fns.Items))
	for i := range addons.Items {
		objs = append(objs, &addons.Items[i])
	}
	for i := range fns.Items {
		objs = append(objs, &fns.Items[i])
	}
	return NewCatalog(objs...)
}

// ValidateTasks checks the tasks an object (a BackupConfiguration session,
// a RestoreSession, a BackupVerifier) asks of an Addon: the Addon and each
// task exist, and each task's parameters, merged with its declared
// defaults, satisfy its Function's #Params. The error names the task and
// carries the CUE problem (position, path, reason), so that it can be
// written to the object's ValidationPassed condition as is; an object that
// fails this is Invalid and no Job is ever rendered from it.
//
// kind says which of the Addon's task lists the tasks come from. The
// renderer is one with default limits if nil.
func ValidateTasks(ctx context.Context, c client.Reader, r *Renderer, kind TaskKind, info *corev1alpha1.AddonInfo) error {
	if info == nil {
		return fmt.Errorf("cannot validate addon tasks: no addon is set")
	}
	if r == nil {
		r = New(Options{})
	}
	a := &addonsv1alpha1.Addon{}
	if err := c.Get(ctx, types.NamespacedName{Name: info.Name}, a); err != nil {
		return fmt.Errorf("cannot get addon %q: %w", info.Name, err)
	}
	if len(info.Tasks) == 0 {
		return fmt.Errorf("cannot validate addon tasks: no task of addon %q is chosen", info.Name)
	}
	for _, ref := range info.Tasks {
		task, err := FindTask(a, kind, ref.Name)
		if err != nil {
			return err
		}
		fn := &addonsv1alpha1.Function{}
		if err := c.Get(ctx, types.NamespacedName{Name: task.Function}, fn); err != nil {
			return fmt.Errorf("cannot get function %q of task %q: %w", task.Function, ref.Name, err)
		}
		var params []byte
		if ref.Params != nil {
			params = ref.Params.Raw
		}
		if err := r.ValidateParams(ctx, a, kind, ref.Name, fn, params); err != nil {
			return fmt.Errorf("task %q of addon %q: %w", ref.Name, info.Name, err)
		}
	}
	return nil
}
