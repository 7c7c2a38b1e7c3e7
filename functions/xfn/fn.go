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

// Package xfn serves Stashplane to Crossplane as a composition function,
// composing with functions/protection. It takes two inputs:
//
//   - a ProtectionClass, in a Composition of Protections: the Protection,
//     an app team's namespaced composite resource, names a workload and
//     the function composes its BackupConfiguration and BackupVerifier;
//   - a Protect, as one step of any platform team's Composition: it
//     composes the same for workloads the steps before it composed.
//
// Either way it asks Crossplane for the storage and the Repositories'
// Snapshots, and writes back what they report: conditions saying whether
// the backups are configured and the newest one verified, and, on a
// Protection, the configuration's phase and the newest Snapshot.
package xfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/resource/composed"
	"github.com/crossplane/function-sdk-go/response"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/protection"
	"github.com/stashplane/stashplane/functions/xfn/input/v1alpha1"
)

// Names of the composed resources of a Protection and of the resources
// the function asks Crossplane for. A protect step names its composed
// resources after each workload's: <resource>-backup, <resource>-verifier.
const (
	ResourceConfiguration = resource.Name("configuration")
	ResourceVerifier      = resource.Name("verifier")
	RequiredStorage       = "storage"
	RequiredSnapshots     = "snapshots"
)

// Function composes Protections and protect steps.
type Function struct {
	fnv1.UnimplementedFunctionRunnerServiceServer

	log logging.Logger
}

// New returns the Function.
func New(log logging.Logger) *Function {
	return &Function{log: log}
}

// target is one workload the function protects in a pass.
type target struct {
	// field prefixes the fields Check names: "" for a Protection's spec,
	// input.workloads[i] for a protect step.
	field string
	// name of the composed configuration, its Repository and verifier.
	name string
	spec protection.Spec
	// configuration, verifier and snapshots name the composed resources
	// and the required Snapshots.
	configuration, verifier resource.Name
	snapshots               string
}

// plan is what one pass composes.
type plan struct {
	class   v1alpha1.Class
	targets []target
	// storageField names the field of the storage, for its refusal.
	storageField string
	// status says whether the composite resource's status is ours to
	// write (a Protection's is; a platform team's own XR's is not).
	status bool
}

// RunFunction composes the observed composite resource. Input that
// cannot be composed is a Fatal result naming the field, so Crossplane
// keeps what it composed before and deletes nothing. Composing reads
// only the request (no API call, no storage), so nothing in it waits on
// the request's context; a request already cancelled is answered with
// its error rather than composed.
func (f *Function) RunFunction(ctx context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rsp := response.To(req, response.DefaultTTL)
	xr, err := request.GetObservedCompositeResource(req)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get observed composite resource: %w", err))
		return rsp, nil
	}
	desired, err := request.GetDesiredComposedResources(req)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get desired composed resources: %w", err))
		return rsp, nil
	}
	p, err := planFor(req, xr, desired)
	if err != nil {
		response.Fatal(rsp, err)
		return rsp, nil
	}
	ns := xr.Resource.GetNamespace()
	if ns == "" {
		response.Fatal(rsp, fmt.Errorf("%s %q is cluster scoped: Stashplane composes into the namespace of a namespaced composite resource", xr.Resource.GetKind(), xr.Resource.GetName()))
		return rsp, nil
	}
	for _, t := range p.targets {
		if err := protection.Check(t.spec, &p.class); err != nil {
			response.Fatal(rsp, prefixed(t.field, err))
			return rsp, nil
		}
	}

	storageNS, storageName := protection.StorageKey(ns, p.targets[0].spec)
	rsp.Requirements = &fnv1.Requirements{Resources: map[string]*fnv1.ResourceSelector{
		RequiredStorage: {
			ApiVersion: storagev1alpha1.GroupVersion.String(), Kind: "BackupStorage",
			Match: &fnv1.ResourceSelector_MatchName{MatchName: storageName}, Namespace: ptr.To(storageNS),
		},
	}}
	for _, t := range p.targets {
		rsp.Requirements.Resources[t.snapshots] = &fnv1.ResourceSelector{
			ApiVersion: storagev1alpha1.GroupVersion.String(), Kind: "Snapshot",
			Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: map[string]string{
				storagev1alpha1.LabelRepository: protection.Repository(t.name),
			}}},
			Namespace: ptr.To(ns),
		}
	}
	storages, resolved, err := request.GetRequiredResource(req, RequiredStorage)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot read the required backupstorage: %w", err))
		return rsp, nil
	}
	if resolved && len(storages) == 0 {
		response.Fatal(rsp, &protection.FieldError{Field: p.storageField, Message: fmt.Sprintf("backupstorage %s/%s does not exist", storageNS, storageName)})
		return rsp, nil
	}

	observed, err := request.GetObservedComposedResources(req)
	if err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot get observed composed resources: %w", err))
		return rsp, nil
	}
	var all [][]protection.Condition
	for _, t := range p.targets {
		st, conds, err := compose(req, observed, desired, ns, t, &p.class)
		if err != nil {
			response.Fatal(rsp, err)
			return rsp, nil
		}
		all = append(all, conds)
		if p.status {
			if err := writeStatus(req, rsp, st); err != nil {
				response.Fatal(rsp, err)
				return rsp, nil
			}
		}
	}
	if err := response.SetDesiredComposedResources(rsp, desired); err != nil {
		response.Fatal(rsp, fmt.Errorf("cannot set desired composed resources: %w", err))
		return rsp, nil
	}
	for _, c := range merge(p.targets, all) {
		setCondition(rsp, c)
	}
	f.log.Debug("composed protection", "namespace", ns, "name", xr.Resource.GetName(), "workloads", len(p.targets))
	return rsp, nil
}

// planFor reads the input: a ProtectionClass composes the observed
// Protection, a Protect the workloads desired by the steps before it.
func planFor(req *fnv1.RunFunctionRequest, xr *resource.Composite, desired map[resource.Name]*resource.DesiredComposed) (plan, error) {
	in := &unstructured.Unstructured{}
	if err := request.GetInput(req, in); err != nil {
		return plan{}, fmt.Errorf("cannot get function input: %w", err)
	}
	switch in.GetKind() {
	case "ProtectionClass":
		class := &v1alpha1.ProtectionClass{}
		if err := request.GetInput(req, class); err != nil {
			return plan{}, fmt.Errorf("cannot get function input: %w", err)
		}
		spec := protection.Spec{}
		if err := decode(xr.Resource.Object["spec"], &spec); err != nil {
			return plan{}, fmt.Errorf("cannot read spec of %s %q: %w", xr.Resource.GetKind(), xr.Resource.GetName(), err)
		}
		name := xr.Resource.GetName()
		return plan{class: class.Class, storageField: "spec.storage.name", status: true, targets: []target{{
			name: name, spec: spec, configuration: ResourceConfiguration, verifier: ResourceVerifier, snapshots: RequiredSnapshots,
		}}}, nil
	case "Protect":
		in := &v1alpha1.Protect{}
		if err := request.GetInput(req, in); err != nil {
			return plan{}, fmt.Errorf("cannot get function input: %w", err)
		}
		return protectPlan(in, xr, desired)
	}
	return plan{}, fmt.Errorf("input kind %q is not one the function takes: use ProtectionClass or Protect", in.GetKind())
}

// protectPlan finds each workload a Protect names among the resources
// the steps before it desire.
func protectPlan(in *v1alpha1.Protect, xr *resource.Composite, desired map[resource.Name]*resource.DesiredComposed) (plan, error) {
	// Crossplane does not hold a step's input to its schema: the rule
	// "one of name and fromFieldPath" is kept here.
	if (in.EncryptionSecret.Name == "") == (in.EncryptionSecret.FromFieldPath == "") {
		return plan{}, &protection.FieldError{Field: "input.encryptionSecret", Message: "set one of name and fromFieldPath"}
	}
	secret := in.EncryptionSecret.Name
	if path := in.EncryptionSecret.FromFieldPath; path != "" {
		v, err := xr.Resource.GetString(path)
		if err != nil || v == "" {
			return plan{}, &protection.FieldError{Field: "input.encryptionSecret.fromFieldPath",
				Message: fmt.Sprintf("%s %q has no %s naming the password Secret", xr.Resource.GetKind(), xr.Resource.GetName(), path)}
		}
		secret = v
	}
	if len(in.Workloads) == 0 {
		return plan{}, &protection.FieldError{Field: "input.workloads", Message: "name at least one composed workload to protect"}
	}
	p := plan{class: in.Class, storageField: "input.storage.name"}
	for i, w := range in.Workloads {
		field := fmt.Sprintf("input.workloads[%d]", i)
		d, ok := desired[resource.Name(w.Resource)]
		if !ok || d.Resource == nil {
			return plan{}, &protection.FieldError{Field: field + ".resource",
				Message: fmt.Sprintf("no step before this one composes a resource %q: the protect step must come after the step composing the workload", w.Resource)}
		}
		gvk := d.Resource.GroupVersionKind()
		if d.Resource.GetName() == "" {
			return plan{}, &protection.FieldError{Field: field + ".resource",
				Message: fmt.Sprintf("composed %s %q has no metadata.name: give it one (a generated name cannot be backed up under a stable Repository)", gvk.Kind, w.Resource)}
		}
		spec := protection.Spec{Paths: w.Paths, Storage: in.Storage, EncryptionSecret: secret}
		spec.Target.APIGroup, spec.Target.Kind, spec.Target.Name = gvk.Group, gvk.Kind, d.Resource.GetName()
		p.targets = append(p.targets, target{
			field: field, name: d.Resource.GetName(), spec: spec,
			configuration: resource.Name(w.Resource + "-backup"), verifier: resource.Name(w.Resource + "-verifier"),
			snapshots: RequiredSnapshots + "-" + w.Resource,
		})
	}
	return p, nil
}

// prefixed names a protect step's workload before the field Check names.
func prefixed(field string, err error) error {
	var fe *protection.FieldError
	if field == "" || !errors.As(err, &fe) {
		return err
	}
	f := strings.TrimPrefix(fe.Field, "spec.")
	switch {
	case strings.HasPrefix(fe.Field, "input."):
		f = fe.Field
	case strings.HasPrefix(f, "target."):
		f = field + ".resource (" + f + ")"
	default:
		f = field + "." + f
	}
	return &protection.FieldError{Field: f, Message: fe.Message}
}

// compose adds one target's composed objects to desired and reads back
// what it shows.
func compose(req *fnv1.RunFunctionRequest, observed map[resource.Name]resource.ObservedComposed, desired map[resource.Name]*resource.DesiredComposed,
	ns string, t target, class *v1alpha1.Class) (protection.Status, []protection.Condition, error) {
	var bc *corev1alpha1.BackupConfiguration
	if o, ok := observed[t.configuration]; ok && o.Resource != nil {
		bc = &corev1alpha1.BackupConfiguration{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Resource.Object, bc); err != nil {
			return protection.Status{}, nil, fmt.Errorf("cannot read the observed backupconfiguration: %w", err)
		}
	}
	for _, obj := range protection.Compose(ns, t.name, t.spec, class) {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return protection.Status{}, nil, fmt.Errorf("cannot encode composed resource: %w", err)
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
			desired[t.configuration] = &resource.DesiredComposed{Resource: cd, Ready: ready}
		case *corev1alpha1.BackupVerifier:
			// A verifier has no status: it is ready once it exists.
			ready := resource.ReadyFalse
			if o, ok := observed[t.verifier]; ok && o.Resource != nil {
				ready = resource.ReadyTrue
			}
			desired[t.verifier] = &resource.DesiredComposed{Resource: cd, Ready: ready}
		}
	}
	required, _, err := request.GetRequiredResource(req, t.snapshots)
	if err != nil {
		return protection.Status{}, nil, fmt.Errorf("cannot read the required snapshots: %w", err)
	}
	snaps := make([]storagev1alpha1.Snapshot, 0, len(required))
	for _, r := range required {
		s := storagev1alpha1.Snapshot{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(r.Resource.Object, &s); err != nil {
			return protection.Status{}, nil, fmt.Errorf("cannot read snapshot %q: %w", r.Resource.GetName(), err)
		}
		snaps = append(snaps, s)
	}
	st, conds := protection.Observe(bc, snaps, class.VerifySchedule != "")
	return st, conds, nil
}

// merge folds the conditions of several workloads into one of each type:
// the worst status (False, then Unknown, then True), its reason, and the
// messages, each naming its workload (those not True only, when there are
// several). A Protection's conditions pass through: it is the workload.
func merge(targets []target, all [][]protection.Condition) []protection.Condition {
	if len(all) == 1 && targets[0].field == "" {
		return all[0]
	}
	rank := map[corev1.ConditionStatus]int{corev1.ConditionTrue: 0, corev1.ConditionUnknown: 1, corev1.ConditionFalse: 2}
	byType := map[string]*protection.Condition{}
	var msgs = map[string][]string{}
	var order []string
	for i, conds := range all {
		for _, c := range conds {
			m, ok := byType[c.Type]
			if !ok {
				cp := c
				cp.Message = ""
				byType[c.Type], m = &cp, &cp
				order = append(order, c.Type)
			} else if rank[c.Status] > rank[m.Status] {
				m.Status, m.Reason = c.Status, c.Reason
			}
			if (c.Status != corev1.ConditionTrue || len(all) == 1) && c.Message != "" {
				msgs[c.Type] = append(msgs[c.Type], targets[i].spec.Target.Kind+" "+targets[i].name+": "+c.Message)
			}
		}
	}
	sort.Strings(order)
	out := make([]protection.Condition, 0, len(order))
	for _, typ := range order {
		c := *byType[typ]
		c.Message = strings.Join(msgs[typ], "; ")
		out = append(out, c)
	}
	return out
}

// writeStatus writes a Protection's status fields.
func writeStatus(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse, st protection.Status) error {
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
	return nil
}

// setCondition sets one condition on the composite resource.
func setCondition(rsp *fnv1.RunFunctionResponse, c protection.Condition) {
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
