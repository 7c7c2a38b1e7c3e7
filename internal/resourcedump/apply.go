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

package resourcedump

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// AnnotationHeldReplicas records, on a workload held without pods, the
// replicas Release gives it back.
const AnnotationHeldReplicas = corev1alpha1.AnnotationHeldReplicas

// Hold makes a Deployment or StatefulSet start without pods: its wanted
// replicas (1 when unset) go into AnnotationHeldReplicas and spec.replicas
// becomes 0. A DaemonSet, which has no replicas, gets corev1alpha1.LabelHeld
// in its pods' nodeSelector, which no node matches, and as an annotation.
// A CronJob is suspended, corev1alpha1.LabelHeld recording as an
// annotation whether it was. Other kinds are left as they are, and false
// returned.
func Hold(u *unstructured.Unstructured) bool {
	gk := groupKind(u)
	if gk == "batch/CronJob" {
		suspended, _, err := unstructured.NestedBool(u.Object, "spec", "suspend")
		if err != nil {
			return false
		}
		a := u.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[corev1alpha1.LabelHeld] = strconv.FormatBool(suspended)
		u.SetAnnotations(a)
		_ = unstructured.SetNestedField(u.Object, true, "spec", "suspend")
		return true
	}
	if gk == "apps/DaemonSet" {
		if err := unstructured.SetNestedField(u.Object, "true", "spec", "template", "spec", "nodeSelector", corev1alpha1.LabelHeld); err != nil {
			return false
		}
		a := u.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[corev1alpha1.LabelHeld] = "true"
		u.SetAnnotations(a)
		return true
	}
	if gk != "apps/Deployment" && gk != "apps/StatefulSet" {
		return false
	}
	replicas, found, err := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if err != nil {
		return false
	}
	if !found {
		replicas = 1
	}
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationHeldReplicas] = strconv.FormatInt(replicas, 10)
	u.SetAnnotations(a)
	_ = unstructured.SetNestedField(u.Object, int64(0), "spec", "replicas")
	return true
}

// ClaimsFromTemplates are the claims a StatefulSet's pods use from its
// volumeClaimTemplates, "<template>-<statefulset>-<ordinal>" for each
// ordinal it will have (its held replicas when held), labelled with the
// template's labels and the StatefulSet's selector, so that their data can
// be restored before a pod starts.
func ClaimsFromTemplates(sts *unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	templates, _, err := unstructured.NestedSlice(sts.Object, "spec", "volumeClaimTemplates")
	if err != nil {
		return nil, fmt.Errorf("cannot read the claim templates of statefulset %q: %w", sts.GetName(), err)
	}
	replicas, found, err := unstructured.NestedInt64(sts.Object, "spec", "replicas")
	if err != nil {
		return nil, fmt.Errorf("cannot read the replicas of statefulset %q: %w", sts.GetName(), err)
	}
	if !found {
		replicas = 1
	}
	if held, ok := sts.GetAnnotations()[AnnotationHeldReplicas]; ok {
		if n, err := strconv.ParseInt(held, 10, 32); err == nil {
			replicas = n
		}
	}
	start, _, err := unstructured.NestedInt64(sts.Object, "spec", "ordinals", "start")
	if err != nil {
		return nil, fmt.Errorf("cannot read the ordinals of statefulset %q: %w", sts.GetName(), err)
	}
	selector, _, _ := unstructured.NestedStringMap(sts.Object, "spec", "selector", "matchLabels")
	var out []*unstructured.Unstructured
	for _, t := range templates {
		tm, ok := t.(map[string]any)
		if !ok {
			continue
		}
		tpl := &unstructured.Unstructured{Object: tm}
		for i := start; i < start+replicas; i++ {
			c := &unstructured.Unstructured{Object: map[string]any{}}
			c.SetAPIVersion("v1")
			c.SetKind("PersistentVolumeClaim")
			c.SetNamespace(sts.GetNamespace())
			c.SetName(fmt.Sprintf("%s-%s-%d", tpl.GetName(), sts.GetName(), i))
			labels := map[string]string{}
			for k, v := range tpl.GetLabels() {
				labels[k] = v
			}
			for k, v := range selector {
				labels[k] = v
			}
			if len(labels) > 0 {
				c.SetLabels(labels)
			}
			if a := tpl.GetAnnotations(); len(a) > 0 {
				c.SetAnnotations(a)
			}
			if spec, ok := tm["spec"]; ok {
				c.Object["spec"] = runtimeDeepCopy(spec)
			}
			Clean(c)
			out = append(out, c)
		}
	}
	return out, nil
}

// runtimeDeepCopy copies a JSON value of an unstructured object.
func runtimeDeepCopy(v any) any {
	return (&unstructured.Unstructured{Object: map[string]any{"v": v}}).DeepCopy().Object["v"]
}

// Result is what a restore did with one object.
type Result string

// The results of recreating an object.
const (
	Created Result = "Created"
	Updated Result = "Updated"
	Kept    Result = "Kept"
	Refused Result = "Refused"
)

// Outcome is the result of one object, with why it was refused.
type Outcome struct {
	Kind, Namespace, Name string
	Result                Result
	Message               string
	// notFound says the API server refused the object as NotFound;
	// forbidden, that it may not be made by this account (beyondAccount);
	// noMatch, that no API serves its kind.
	notFound, forbidden, noMatch bool
}

// ApplyOptions say how Apply treats objects.
type ApplyOptions struct {
	// Update replaces an object that exists; without it it is Kept.
	Update bool
	// Hold makes Deployments and StatefulSets start without pods (Hold).
	Hold bool
	// DryRun only asks the API server to accept each object: it
	// validates and admits it, and makes nothing. An object that exists
	// is still validated and admitted before the server says so.
	DryRun bool
}

// Apply creates the objects one by one, in the order given, never
// deleting anything, and returns each one's outcome, and the objects it
// made or replaced held (for Release). A StatefulSet's claims from its
// templates are made just before it. A refusal is reported, not returned:
// the other objects are still made.
func Apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, o ApplyOptions) ([]Outcome, []*unstructured.Unstructured) {
	var outcomes []Outcome
	var held []*unstructured.Unstructured
	// Roles a dry run accepted but did not make: the API server resolves
	// a RoleBinding's Role to check the binding grants nothing its
	// author lacks, and cannot find these.
	dryRoles := map[string]bool{}
	// The kinds of the CustomResourceDefinitions this Apply made or found,
	// and those a dry run accepted without making them.
	crds, dryCRDs := map[schema.GroupKind]bool{}, map[schema.GroupKind]bool{}
	// The definitions the objects carry, for checking custom resources a
	// dry run may not make against their schemas.
	var defs map[schema.GroupKind]*apiextensionsv1.CustomResourceDefinition
	if o.DryRun {
		defs = definitions(objs)
	}
	for _, obj := range objs {
		u := obj.DeepCopy()
		isHeld := o.Hold && Hold(u)
		if groupKind(u) == "apps/StatefulSet" {
			claims, err := ClaimsFromTemplates(u)
			if err != nil {
				outcomes = append(outcomes, Outcome{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), Result: Refused, Message: err.Error()})
				continue
			}
			for _, claim := range claims {
				outcomes = append(outcomes, apply(ctx, c, claim, ApplyOptions{DryRun: o.DryRun}))
			}
		}
		oc := apply(ctx, c, u, o)
		if oc.noMatch {
			oc = unserved(ctx, c, u, o, oc, crds, dryCRDs)
		}
		if gk, ok := definedKind(u); ok && oc.Result != Refused {
			if o.DryRun {
				dryCRDs[gk] = true
			} else {
				crds[gk] = true
			}
		}
		if o.DryRun {
			oc = unmadeRole(u, beyondRights(ctx, c, defs, u, oc), dryRoles)
		}
		outcomes = append(outcomes, oc)
		if isHeld && !o.DryRun && (oc.Result == Created || oc.Result == Updated) {
			held = append(held, u)
		}
	}
	return outcomes, held
}

// crdServedWithin bounds how long Apply waits for a custom resource's
// kind to be served once it made the kind's CustomResourceDefinition.
var crdServedWithin = time.Minute

// definedKind is the kind a CustomResourceDefinition u defines.
func definedKind(u *unstructured.Unstructured) (schema.GroupKind, bool) {
	if groupKind(u) != "apiextensions.k8s.io/CustomResourceDefinition" {
		return schema.GroupKind{}, false
	}
	group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
	return schema.GroupKind{Group: group, Kind: kind}, group != "" && kind != ""
}

// unserved settles an object whose kind no API serves yet. When this
// Apply made its CustomResourceDefinition it is made once the API server
// serves the kind (a definition takes a moment to be established); when a
// dry run accepted the definition without making it, the object is
// accepted unchecked, as the message says; otherwise it is refused,
// naming what is missing.
func unserved(ctx context.Context, c client.Client, u *unstructured.Unstructured, o ApplyOptions, oc Outcome, crds, dryCRDs map[schema.GroupKind]bool) Outcome {
	gk := u.GroupVersionKind().GroupKind()
	switch {
	case crds[gk]:
		_ = wait.PollUntilContextTimeout(ctx, time.Second, crdServedWithin, true, func(ctx context.Context) (bool, error) {
			oc = apply(ctx, c, u, o)
			return !oc.noMatch, nil
		})
		if oc.noMatch {
			oc.Message = fmt.Sprintf("the API server did not serve %s within %s of this restore making its CustomResourceDefinition", gk, crdServedWithin)
		}
		return oc
	case dryCRDs[gk]:
		oc.Result = Created
		oc.Message = fmt.Sprintf("checked without its CustomResourceDefinition for %s, which this dry run accepted but did not make", gk)
		return oc
	}
	oc.Message = fmt.Sprintf("no CustomResourceDefinition serves %s in this cluster: make it first (a dump of the whole cluster holds them)", gk)
	return oc
}

// unmadeRole records a Role a dry run accepted, and accepts a RoleBinding
// the API server refused only because its Role, accepted earlier in the
// same dry run, does not exist: whoever may make that Role holds what it
// grants, so the binding passes once the Role is made. The outcome's
// message says the binding was checked without its Role.
func unmadeRole(u *unstructured.Unstructured, oc Outcome, dryRoles map[string]bool) Outcome {
	switch groupKind(u) {
	case "rbac.authorization.k8s.io/Role":
		if oc.Result == Created {
			dryRoles[u.GetName()] = true
		}
	case "rbac.authorization.k8s.io/RoleBinding":
		kind, _, _ := unstructured.NestedString(u.Object, "roleRef", "kind")
		name, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
		if oc.Result == Refused && oc.notFound && kind == "Role" && dryRoles[name] {
			oc.Result = Created
			oc.Message = fmt.Sprintf("checked without its Role %q, which this dry run accepted but did not make", name)
		}
	}
	return oc
}

// beyondRights checks against the API's schema an object a dry run
// refused only because the restore's account may not make it (a Role
// granting more than the account holds, a RoleBinding to a ClusterRole, a
// cluster-scoped object): the server does not validate what it does not
// authorise. A kind of Kubernetes' own is checked against its Go type; a
// custom resource against its CustomResourceDefinition's schema, the one
// the objects carry or else the cluster's. Well formed, it is accepted with
// a message saying how it was checked and that a restore would be refused
// it too; ill formed, or with no schema to check it against, it stays
// refused, naming why.
func beyondRights(ctx context.Context, c client.Client, defs map[schema.GroupKind]*apiextensionsv1.CustomResourceDefinition, u *unstructured.Unstructured, oc Outcome) Outcome {
	if oc.Result != Refused || !oc.forbidden {
		return oc
	}
	var err error
	how := "the API's schema"
	if typed, nerr := c.Scheme().New(u.GroupVersionKind()); nerr == nil {
		err = runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, typed, true)
	} else {
		how = "its CustomResourceDefinition's schema"
		var crd *apiextensionsv1.CustomResourceDefinition
		if crd, err = definitionOf(ctx, c, defs, u.GroupVersionKind().GroupKind()); err == nil {
			err = validateCustom(crd, u)
		} else {
			oc.Message += "; and it cannot be checked against a schema: " + err.Error()
			return oc
		}
	}
	if err != nil {
		oc.Message += "; and it does not match " + how + ": " + err.Error()
		return oc
	}
	oc.Result = Created
	oc.Message = "checked against " + how + " only: the restore's account may not make it (" + oc.Message + "), so a restore is refused it too unless someone with those rights makes it first"
	return oc
}

// definitions are the CustomResourceDefinitions among objs, by the kind
// each defines.
func definitions(objs []*unstructured.Unstructured) map[schema.GroupKind]*apiextensionsv1.CustomResourceDefinition {
	out := map[schema.GroupKind]*apiextensionsv1.CustomResourceDefinition{}
	for _, u := range objs {
		gk, ok := definedKind(u)
		if !ok {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd) == nil {
			out[gk] = crd
		}
	}
	return out
}

// definitionOf is the CustomResourceDefinition of kind gk: the one defs
// holds, else the cluster's.
func definitionOf(ctx context.Context, c client.Client, defs map[schema.GroupKind]*apiextensionsv1.CustomResourceDefinition, gk schema.GroupKind) (*apiextensionsv1.CustomResourceDefinition, error) {
	if crd, ok := defs[gk]; ok {
		return crd, nil
	}
	list := &apiextensionsv1.CustomResourceDefinitionList{}
	if err := c.List(ctx, list); err != nil {
		return nil, fmt.Errorf("cannot read the CustomResourceDefinition of %s: %w", gk, err)
	}
	for i := range list.Items {
		if d := &list.Items[i]; d.Spec.Group == gk.Group && d.Spec.Names.Kind == gk.Kind {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no CustomResourceDefinition defines %s", gk)
}

// validateCustom checks u against the schema its CustomResourceDefinition
// gives u's version, as the API server validates a custom resource.
func validateCustom(crd *apiextensionsv1.CustomResourceDefinition, u *unstructured.Unstructured) error {
	version := u.GroupVersionKind().Version
	for _, v := range crd.Spec.Versions {
		if v.Name != version {
			continue
		}
		if !v.Served {
			return fmt.Errorf("version %s of %s is not served", version, crd.Name)
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			return fmt.Errorf("version %s of %s has no schema", version, crd.Name)
		}
		internal := &apiextensions.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internal, nil); err != nil {
			return fmt.Errorf("cannot read the schema of %s: %w", crd.Name, err)
		}
		validator, _, err := validation.NewSchemaValidator(internal)
		if err != nil {
			return fmt.Errorf("cannot read the schema of %s: %w", crd.Name, err)
		}
		if errs := validation.ValidateCustomResource(nil, u.UnstructuredContent(), validator); len(errs) > 0 {
			return errs.ToAggregate()
		}
		return nil
	}
	return fmt.Errorf("%s defines no version %s", crd.Name, version)
}

// beyondAccount says whether the API server refused an object for who
// asks, not for what it is: authorization denied the account, or RBAC's
// escalation check found it grants what the account lacks. An admission
// webhook's or a quota's refusal, also Forbidden, is about the object.
func beyondAccount(err error) bool {
	if !kerrors.IsForbidden(err) {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "is attempting to grant RBAC permissions not currently held") || strings.Contains(msg, " cannot create resource ")
}

// apply creates u, or replaces it when it exists and o.Update says so.
func apply(ctx context.Context, c client.Client, u *unstructured.Unstructured, o ApplyOptions) Outcome {
	out := Outcome{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	var dry []client.CreateOption
	var dryUpdate []client.UpdateOption
	if o.DryRun {
		dry, dryUpdate = []client.CreateOption{client.DryRunAll}, []client.UpdateOption{client.DryRunAll}
	}
	err := c.Create(ctx, u.DeepCopy(), dry...)
	switch {
	case err == nil:
		out.Result = Created
		return out
	case meta.IsNoMatchError(err):
		out.Result, out.Message, out.noMatch = Refused, err.Error(), true
		return out
	case !kerrors.IsAlreadyExists(err):
		out.Result, out.Message, out.notFound, out.forbidden = Refused, refusal(err), kerrors.IsNotFound(err), beyondAccount(err)
		return out
	case !o.Update:
		out.Result = Kept
		return out
	}
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(u.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(u), current); err != nil {
		out.Result, out.Message = Refused, refusal(err)
		return out
	}
	next := u.DeepCopy()
	next.SetResourceVersion(current.GetResourceVersion())
	if err := c.Update(ctx, next, dryUpdate...); err != nil {
		out.Result, out.Message = Refused, refusal(err)
		return out
	}
	out.Result = Updated
	return out
}

// refusal says why the API server refused an object, from the status it
// answered with: its reason and message, which name fields, never values
// of a Secret's data.
func refusal(err error) string {
	if s, ok := err.(kerrors.APIStatus); ok {
		st := s.Status()
		return fmt.Sprintf("%s: %s", st.Reason, st.Message)
	}
	return err.Error()
}

// Release gives each held object the replicas its annotation records and
// removes the annotation. An object gone, or no longer annotated (someone
// scaled it meanwhile), is left alone.
func Release(ctx context.Context, c client.Client, held []*unstructured.Unstructured) error {
	for _, h := range held {
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(h.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(h), cur); err != nil {
			if kerrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("cannot get %s %q: %w", h.GetKind(), h.GetName(), err)
		}
		if was, held := cur.GetAnnotations()[corev1alpha1.LabelHeld]; held && groupKind(cur) == "batch/CronJob" {
			patch, err := json.Marshal(map[string]any{
				"metadata": map[string]any{"annotations": map[string]any{corev1alpha1.LabelHeld: nil}},
				"spec":     map[string]any{"suspend": was == "true"},
			})
			if err != nil {
				return fmt.Errorf("cannot encode the release of %s %q: %w", h.GetKind(), h.GetName(), err)
			}
			if err := c.Patch(ctx, cur, client.RawPatch(types.MergePatchType, patch)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("cannot release %s %q: %w", h.GetKind(), h.GetName(), err)
			}
			continue
		}
		if _, held := cur.GetAnnotations()[corev1alpha1.LabelHeld]; held && groupKind(cur) == "apps/DaemonSet" {
			patch := []byte(`{"metadata":{"annotations":{"` + corev1alpha1.LabelHeld + `":null}},"spec":{"template":{"spec":{"nodeSelector":{"` + corev1alpha1.LabelHeld + `":null}}}}}`)
			if err := c.Patch(ctx, cur, client.RawPatch(types.MergePatchType, patch)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("cannot release %s %q: %w", h.GetKind(), h.GetName(), err)
			}
			continue
		}
		want, ok := cur.GetAnnotations()[AnnotationHeldReplicas]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(want, 10, 32)
		if err != nil {
			return fmt.Errorf("cannot read annotation %s of %s %q: %w", AnnotationHeldReplicas, h.GetKind(), h.GetName(), err)
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{AnnotationHeldReplicas: nil}},
			"spec":     map[string]any{"replicas": n},
		})
		if err != nil {
			return fmt.Errorf("cannot encode the release of %s %q: %w", h.GetKind(), h.GetName(), err)
		}
		if err := c.Patch(ctx, cur, client.RawPatch(types.MergePatchType, patch)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot release %s %q: %w", h.GetKind(), h.GetName(), err)
		}
	}
	return nil
}
