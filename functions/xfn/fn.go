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

// Package xfn serves Stashplane's renderer to Crossplane as a composition
// function: a Composition step names an Addon task in its input, the
// composite resource's spec supplies the context, and the rendered Jobs
// become the composed resources. A Job is ready once it has completed.
package xfn

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"github.com/crossplane/function-sdk-go/response"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stashplane/stashplane/apis/naming"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/functions/xfn/input/v1alpha1"
)

// Function renders Addon tasks for composite resources.
type Function struct {
	fnv1.UnimplementedFunctionRunnerServiceServer

	log      logging.Logger
	renderer *render.Renderer
	catalog  *render.Catalog
	image    string
}

// New returns a Function that renders the Addons of the catalog; image is
// the stashplane image used when the input names none.
func New(log logging.Logger, catalog *render.Catalog, image string) *Function {
	return &Function{log: log, renderer: render.New(render.Options{}), catalog: catalog, image: image}
}

// Spec is the part of a composite resource's spec the function reads. A
// Composition's XRD gives its XR these fields (compositions/ has one).
type Spec struct {
	// Target is the workload, with the volumes the task works on.
	Target struct {
		APIGroup     string               `json:"apiGroup"`
		Kind         string               `json:"kind"`
		Name         string               `json:"name"`
		Volumes      []corev1.Volume      `json:"volumes"`
		VolumeMounts []corev1.VolumeMount `json:"volumeMounts"`
	} `json:"target"`
	// Storage is the BackupStorage the Repository is in.
	Storage render.Storage `json:"storage"`
	// Repository is where the backup goes.
	Repository struct {
		Name             string `json:"name"`
		Directory        string `json:"directory"`
		EncryptionSecret string `json:"encryptionSecret"`
	} `json:"repository"`
	// Session names the run; the XR's name if empty.
	Session string `json:"session"`
	// Params of the task.
	Params map[string]any `json:"params"`
}

// RunFunction renders the input's task for the observed composite resource
// and adds the objects to the desired composed resources.
func (f *Function) RunFunction(_ context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	rsp := response.To(req, response.DefaultTTL)

	in := &v1alpha1.Input{}
	if err := request.GetInput(req, in); err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get function input: %w", err))
		return rsp, nil
	}
	xr, err := request.GetObservedCompositeResource(req)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get observed composite resource: %w", err))
		return rsp, nil
	}
	rin, err := f.input(in, xr)
	if err != nil {
		response.Fatal(rsp, err)
		return rsp, nil
	}
	res, err := f.renderer.Render(context.Background(), rin)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot render %s task %q of addon %q: %w", rin.TaskKind, rin.Task, rin.Addon.Name, err))
		return rsp, nil
	}

	desired, err := request.GetDesiredComposedResources(req)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get desired composed resources: %w", err))
		return rsp, nil
	}
	observed, err := request.GetObservedComposedResources(req)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get observed composed resources: %w", err))
		return rsp, nil
	}
	for _, o := range res.Objects {
		cd := composed.New()
		cd.SetUnstructuredContent(o.Object)
		name := resource.Name(o.GetKind() + "-" + o.GetName())
		desired[name] = &resource.DesiredComposed{Resource: cd, Ready: readiness(observed[name])}
	}
	if err := response.SetDesiredComposedResources(rsp, desired); err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot set desired composed resources: %w", err))
		return rsp, nil
	}
	f.log.Debug("rendered addon task", "addon", in.Addon, "task", in.Task, "objects", len(res.Objects))
	response.Normalf(rsp, "rendered %d objects for %s task %q of addon %q", len(res.Objects), rin.TaskKind, in.Task, in.Addon)
	return rsp, nil
}

// input builds the render input from the function input and the XR.
func (f *Function) input(in *v1alpha1.Input, xr *resource.Composite) (render.Input, error) {
	addon, err := f.catalog.Addon(in.Addon)
	if err != nil {
		return render.Input{}, err
	}
	kind := render.TaskKind(in.TaskKind)
	if kind == "" {
		kind = render.TaskBackup
	}
	task, err := render.FindTask(addon, kind, in.Task)
	if err != nil {
		return render.Input{}, err
	}
	fn, err := f.catalog.Function(task.Function)
	if err != nil {
		return render.Input{}, err
	}
	spec := Spec{}
	raw, _, err := unstructuredField(xr.Resource.Object, "spec")
	if err != nil {
		return render.Input{}, err
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return render.Input{}, fmt.Errorf("cannot read spec of composite resource %q: %w", xr.Resource.GetName(), err)
	}
	params, err := json.Marshal(spec.Params)
	if err != nil {
		return render.Input{}, fmt.Errorf("cannot encode params: %w", err)
	}
	image := in.Image
	if image == "" {
		image = f.image
	}
	ns := xr.Resource.GetNamespace()
	session := spec.Session
	if session == "" {
		session = xr.Resource.GetName()
	}
	gvk := xr.Resource.GroupVersionKind()
	return render.Input{
		Addon: addon, TaskKind: kind, Task: in.Task, Function: fn, Params: params,
		Context: render.Context{
			Namespace: ns,
			Invoker:   render.ObjectRef{APIGroup: gvk.Group, Kind: gvk.Kind, Name: xr.Resource.GetName()},
			Session:   render.ObjectRef{APIGroup: gvk.Group, Kind: gvk.Kind, Name: session},
			Target: render.Target{
				APIGroup: spec.Target.APIGroup, Kind: spec.Target.Kind, Name: spec.Target.Name, Namespace: ns,
				Volumes: spec.Target.Volumes, VolumeMounts: spec.Target.VolumeMounts,
			},
			Repository: render.Repository{Name: spec.Repository.Name, Namespace: ns, Directory: spec.Repository.Directory, EncryptionSecret: spec.Repository.EncryptionSecret},
			Storage:    spec.Storage,
			Snapshot:   naming.SnapshotName(spec.Repository.Name, session),
			Component:  "dump",
			Image:      image,
		},
	}, nil
}

// unstructuredField returns one top-level field of an object as JSON.
func unstructuredField(obj map[string]any, field string) ([]byte, bool, error) {
	v, ok := obj[field]
	if !ok {
		return []byte("{}"), false, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("cannot encode %s: %w", field, err)
	}
	return b, true, nil
}

// readiness says whether an observed composed resource is ready: a Job is
// ready once it has completed, not ready until then (and not ready for good
// once it failed); other kinds are ready once they exist.
func readiness(o resource.ObservedComposed) resource.Ready {
	if o.Resource == nil {
		return resource.ReadyFalse
	}
	if o.Resource.GetKind() != "Job" {
		return resource.ReadyTrue
	}
	job := &batchv1.Job{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Resource.Object, job); err != nil {
		return resource.ReadyFalse
	}
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return resource.ReadyTrue
		}
	}
	return resource.ReadyFalse
}
