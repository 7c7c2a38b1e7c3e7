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

// Package xfn serves Stashplane to Crossplane as a composition function.
// A Composition step gives it a ProtectionClass as input; for the
// Protection being composed it returns the BackupConfiguration and
// BackupVerifier the provider runs (functions/protection), asks Crossplane
// for the storage and the Repository's Snapshots, and writes back what
// they report: the configuration's phase, the newest Snapshot and its
// verdict, and conditions saying why a Protection is not ready.
package xfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"github.com/crossplane/function-sdk-go/response"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/protection"
	"github.com/stashplane/stashplane/functions/xfn/input/v1alpha1"
)

// Names of the composed resources and of the resources the function asks
// Crossplane for.
const (
	ResourceConfiguration = resource.Name("configuration")
	ResourceVerifier      = resource.Name("verifier")
	RequiredStorage       = "storage"
	RequiredSnapshots     = "snapshots"
)

// Function composes Protections.
type Function struct {
	fnv1.UnimplementedFunctionRunnerServiceServer

	log logging.Logger
}

// New returns the Function.
func New(log logging.Logger) *Function {
	return &Function{log: log}
}

// RunFunction composes the observed Protection with the input's class.
// Input that cannot be composed is a Fatal result naming the field, so
// Crossplane keeps what it composed before and deletes nothing.
func (f *Function) RunFunction(_ context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	rsp := response.To(req, response.DefaultTTL)

	class := &v1alpha1.ProtectionClass{}
	if err := request.GetInput(req, class); err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get function input: %w", err))
		return rsp, nil
	}
	xr, err := request.GetObservedCompositeResource(req)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get observed composite resource: %w", err))
		return rsp, nil
	}
	ns, name := xr.Resource.GetNamespace(), xr.Resource.GetName()
	spec := protection.Spec{}
	if err := decode(xr.Resource.Object["spec"], &spec); err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot read spec of %s %q: %w", xr.Resource.GetKind(), name, err))
		return rsp, nil
	}
	if err := protection.Check(spec, class); err != nil {
		response.Fatal(rsp, err)
		return rsp, nil
	}

	storageNS, storageName := protection.StorageKey(ns, spec)
	rsp.Requirements = &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{
		RequiredStorage: {
			ApiVersion: storagev1alpha1.GroupVersion.String(), Kind: "BackupStorage",
			Match: &fnv1.ResourceSelector_MatchName{MatchName: storageName}, Namespace: ptr.To(storageNS),
		},
		RequiredSnapshots: {
			ApiVersion: storagev1alpha1.GroupVersion.String(), Kind: "Snapshot",
			Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: map[string]string{
				storagev1alpha1.LabelRepository: protection.Repository(name),
			}}},
			Namespace: ptr.To(ns),
		},
	}}
	storages, resolved, err := request.GetRequiredResource(req, RequiredStorage)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot read the required backupstorage: %w", err))
		return rsp, nil
	}
	if resolved && len(storages) == 0 {
		response.Fatal(rsp, &protection.FieldError{Field: "spec.storage.name", Message: fmt.Sprintf("backupstorage %s/%s does not exist", storageNS, storageName)})
		return rsp, nil
	}

	observed, err := request.GetObservedComposedResources(req)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get observed composed resources: %w", err))
		return rsp, nil
	}
	desired, err := request.GetDesiredComposedResources(req)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get desired composed resources: %w", err))
		return rsp, nil
	}
	var bc *corev1alpha1.BackupConfiguration
	if o, ok := observed[ResourceConfiguration]; ok && o.Resource != nil {
		bc = &corev1alpha1.BackupConfiguration{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Resource.Object, bc); err != nil {
			response.Fatal(rsp, fmt.Errorf("cannot read the observed backupconfiguration: %w", err))
			return rsp, nil
		}
	}
	for _, obj := range protection.Compose(ns, name, spec, class) {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			response.Fatal(rsp, fmt.Errorf("cannot encode composed resource: %w", err))
			return rsp, nil
		}
		cd := composed.New()
		cd.SetUnstructuredContent(u)
		delete(cd.Object, "status")
		switch obj.(type) {
		case *corev1alpha1.BackupConfiguration:
			ready := resource.ReadyFalse
			if bc != nil && bc.Status.Phase == corev1alpha1.BackupInvokerReady {
				ready = resource.ReadyTrue
			}
			desired[ResourceConfiguration] = &resource.DesiredComposed{Resource: cd, Ready: ready}
		case *corev1alpha1.BackupVerifier:
			// A verifier has no status: it is ready once it exists.
			ready := resource.ReadyFalse
			if o, ok := observed[ResourceVerifier]; ok && o.Resource != nil {
				ready = resource.ReadyTrue
			}
			desired[ResourceVerifier] = &resource.DesiredComposed{Resource: cd, Ready: ready}
		}
	}
	if err := response.SetDesiredComposedResources(rsp, desired); err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot set desired composed resources: %w", err))
		return rsp, nil
	}

	if err := f.status(req, rsp, bc, class.VerifySchedule != ""); err != nil {
		response.Fatal(rsp, err)
		return rsp, nil
	}
	f.log.Debug("composed protection", "namespace", ns, "name", name)
	return rsp, nil
}

// status writes what the Protection shows: the configuration's phase, the
// newest Snapshot, and the BackupReady and Verified conditions.
func (f *Function) status(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse, bc *corev1alpha1.BackupConfiguration, verifies bool) error {
	required, _, err := request.GetRequiredResource(req, RequiredSnapshots)
	if err != nil {
		return fmt.Errorf("cannot read the required snapshots: %w", err)
	}
	snaps := make([]storagev1alpha1.Snapshot, 0, len(required))
	for _, r := range required {
		s := storagev1alpha1.Snapshot{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(r.Resource.Object, &s); err != nil {
			return fmt.Errorf("cannot read snapshot %q: %w", r.Resource.GetName(), err)
		}
		snaps = append(snaps, s)
	}
	st, conds := protection.Observe(bc, snaps, verifies)
	dxr, err := request.GetDesiredCompositeResource(req)
	if err != nil {
		return fmt.Errorf("cannot get desired composite resource: %w", err)
	}
	var values map[string]any
	if err := decode(st, &values); err != nil {
		return err
	}
	for k, v := range values {
		if err := dxr.Resource.SetValue("status."+k, v); err != nil {
			return fmt.Errorf("cannot set status.%s: %w", k, err)
		}
	}
	if err := response.SetDesiredCompositeResource(rsp, dxr); err != nil {
		return fmt.Errorf("cannot set desired composite resource: %w", err)
	}
	for _, c := range conds {
		var o *response.ConditionOption
		switch c.Status {
		case corev1.ConditionTrue:
			o = response.ConditionTrue(rsp, c.Type, c.Reason)
		case corev1.ConditionFalse:
			o = response.ConditionFalse(rsp, c.Type, c.Reason)
		default:
			o = response.ConditionUnknown(rsp, c.Type, c.Reason)
		}
		if c.Message != "" {
			o = o.WithMessage(c.Message)
		}
		o.TargetComposite()
	}
	return nil
}

// decode converts a value into out through JSON.
func decode(v, out any) error {
	if v == nil {
		return errors.New("no value")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode value: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("cannot decode value: %w", err)
	}
	return nil
}
