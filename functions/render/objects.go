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
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Labels the renderer puts on every object it renders.
const (
	LabelAddon = "stashplane.io/addon"
	LabelTask  = "stashplane.io/task"
)

// The kinds a template may render. Secrets are not among them: a template
// never sees a secret value and cannot make one.
var (
	gvkJob       = batchv1.SchemeGroupVersion.WithKind("Job")
	allowedKinds = map[schema.GroupVersionKind]bool{
		gvkJob: true,
		corev1.SchemeGroupVersion.WithKind("ConfigMap"):             true,
		corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"): true,
	}
)

// finish decodes the rendered objects, checks them, applies the runtime
// settings and labels, and sorts them.
func (r *Renderer) finish(raw []byte, c Context) (*Result, error) {
	const op = "cannot accept rendered objects"
	if len(raw) > r.o.MaxOutputBytes {
		return nil, newError(op, ErrTooLarge, "output is %d bytes, more than the %d allowed", len(raw), r.o.MaxOutputBytes)
	}
	var items []map[string]any
	if err := kjson.Unmarshal(raw, &items); err != nil {
		return nil, newError(op, nil, "%s must be a list of objects: %v", PathObjects, err)
	}
	if len(items) > r.o.MaxObjects {
		return nil, newError(op, ErrTooLarge, "%d objects rendered, more than the %d allowed", len(items), r.o.MaxObjects)
	}
	out := &Result{}
	seen := map[string]bool{}
	for i, item := range items {
		u := &unstructured.Unstructured{Object: item}
		path := fmt.Sprintf("%s.%d", PathObjects, i)
		if err := checkObject(u, c.Namespace); err != nil {
			return nil, &Error{Op: op, Issues: []Issue{{Path: path, Reason: err.Error()}}}
		}
		key := u.GetKind() + "/" + u.GetName()
		if seen[key] {
			return nil, &Error{Op: op, Issues: []Issue{{Path: path, Reason: fmt.Sprintf("%s %q is rendered twice", u.GetKind(), u.GetName())}}}
		}
		seen[key] = true
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelAddon] = c.Task.Addon
		labels[LabelTask] = c.Task.Name
		u.SetLabels(labels)
		if u.GroupVersionKind() == gvkJob {
			if err := finishJob(u, c); err != nil {
				return nil, &Error{Op: op, Issues: []Issue{{Path: path, Reason: err.Error()}}}
			}
		}
		out.Objects = append(out.Objects, u)
	}
	sort.SliceStable(out.Objects, func(i, j int) bool {
		a, b := out.Objects[i], out.Objects[j]
		if a.GetAPIVersion() != b.GetAPIVersion() {
			return a.GetAPIVersion() < b.GetAPIVersion()
		}
		if a.GetKind() != b.GetKind() {
			return a.GetKind() < b.GetKind()
		}
		return a.GetName() < b.GetName()
	})
	return out, nil
}

// checkObject checks the identity of one rendered object and puts it in
// the context's namespace.
func checkObject(u *unstructured.Unstructured, namespace string) error {
	gvk := u.GroupVersionKind()
	if !allowedKinds[gvk] {
		return fmt.Errorf("kind %q of %q may not be rendered; allowed: batch/v1 Job, v1 ConfigMap, v1 PersistentVolumeClaim", gvk.Kind, gvk.GroupVersion().String())
	}
	name := u.GetName()
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("metadata.name %q is not valid: %s", name, msgs[0])
	}
	if gvk == gvkJob && len(name) > validation.DNS1123LabelMaxLength {
		return fmt.Errorf("metadata.name %q of a Job must be at most %d characters", name, validation.DNS1123LabelMaxLength)
	}
	switch ns := u.GetNamespace(); ns {
	case "":
		u.SetNamespace(namespace)
	case namespace:
	default:
		return fmt.Errorf("metadata.namespace %q is not the namespace %q the task runs in", ns, namespace)
	}
	return nil
}

// finishJob decodes a Job strictly, so that a misspelt field is an error,
// applies the runtime settings to its pod, and encodes it again.
func finishJob(u *unstructured.Unstructured, c Context) error {
	rt := c.Runtime
	job := &batchv1.Job{}
	b, err := json.Marshal(u.Object)
	if err != nil {
		return fmt.Errorf("cannot encode Job: %v", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(job); err != nil {
		return fmt.Errorf("not a valid Job: %v", err)
	}
	if len(job.Spec.Template.Spec.Containers) == 0 {
		return fmt.Errorf("Job %q has no containers", job.Name)
	}
	chosen := job.Spec.Template.Spec.ServiceAccountName
	applyRuntime(&job.Spec.Template, rt)
	applyJob(&job.Spec, rt.Job)
	if err := checkJob(job, chosen, c); err != nil {
		return err
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(job)
	if err != nil {
		return fmt.Errorf("cannot encode Job %q: %v", job.Name, err)
	}
	// Drop the empty status and creationTimestamp that typed encoding adds.
	delete(obj, "status")
	unstructured.RemoveNestedField(obj, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(obj, "spec", "template", "metadata", "creationTimestamp")
	u.Object = obj
	return nil
}

// applyRuntime applies a step's runtime settings to a pod template. Values
// the user set win over the template's.
func applyRuntime(t *corev1.PodTemplateSpec, rt Runtime) {
	p := rt.Pod
	t.Labels = mergeMap(t.Labels, mergeMap(mergeMap(nil, p.PodLabels), rt.PodLabels))
	t.Annotations = mergeMap(t.Annotations, mergeMap(mergeMap(nil, p.PodAnnotations), rt.PodAnnotations))
	s := &t.Spec
	s.NodeSelector = mergeMap(s.NodeSelector, p.NodeSelector)
	if p.ServiceAccountName != "" {
		s.ServiceAccountName = p.ServiceAccountName
	}
	if p.PriorityClassName != "" {
		s.PriorityClassName = p.PriorityClassName
	}
	if p.SecurityContext != nil {
		s.SecurityContext = p.SecurityContext.DeepCopy()
	}
	s.Tolerations = append(s.Tolerations, p.Tolerations...)
	s.ImagePullSecrets = append(s.ImagePullSecrets, p.ImagePullSecrets...)
	for i := range s.InitContainers {
		applyContainer(&s.InitContainers[i], rt)
	}
	for i := range s.Containers {
		applyContainer(&s.Containers[i], rt)
	}
}

// applyJob applies the Job-level settings the user gave.
func applyJob(s *batchv1.JobSpec, j JobSettings) {
	if j.BackoffLimit != nil {
		s.BackoffLimit = ptr.To(*j.BackoffLimit)
	}
	if j.ActiveDeadlineSeconds != nil {
		s.ActiveDeadlineSeconds = ptr.To(*j.ActiveDeadlineSeconds)
	}
	if j.TTLSecondsAfterFinished != nil {
		s.TTLSecondsAfterFinished = ptr.To(*j.TTLSecondsAfterFinished)
	}
}

func applyContainer(c *corev1.Container, rt Runtime) {
	cs := rt.Container
	for k, q := range cs.Resources.Requests {
		if c.Resources.Requests == nil {
			c.Resources.Requests = corev1.ResourceList{}
		}
		c.Resources.Requests[k] = q
	}
	for k, q := range cs.Resources.Limits {
		if c.Resources.Limits == nil {
			c.Resources.Limits = corev1.ResourceList{}
		}
		c.Resources.Limits[k] = q
	}
	for _, e := range cs.Env {
		replaced := false
		for i := range c.Env {
			if c.Env[i].Name == e.Name {
				c.Env[i] = e
				replaced = true
			}
		}
		if !replaced {
			c.Env = append(c.Env, e)
		}
	}
	if cs.SecurityContext != nil {
		c.SecurityContext = cs.SecurityContext.DeepCopy()
	}
}

func mergeMap(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	if base == nil {
		base = map[string]string{}
	}
	for k, v := range over {
		base[k] = v
	}
	return base
}

// YAML returns the objects as a YAML stream, keys sorted, so that the same
// input gives the same bytes.
func (r *Result) YAML() ([]byte, error) {
	var b bytes.Buffer
	for i, o := range r.Objects {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("cannot encode %s %q: %w", o.GetKind(), o.GetName(), err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// Jobs returns the rendered Jobs as typed objects.
func (r *Result) Jobs() ([]*batchv1.Job, error) {
	var out []*batchv1.Job
	for _, o := range r.Objects {
		if o.GroupVersionKind() != gvkJob {
			continue
		}
		j := &batchv1.Job{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, j); err != nil {
			return nil, fmt.Errorf("cannot decode Job %q: %w", o.GetName(), err)
		}
		out = append(out, j)
	}
	return out, nil
}

// normalize replaces nil lists and maps of a context with empty ones, so
// that the template sees [] and {} rather than null.
func normalize(c Context) Context {
	if c.Variables == nil {
		c.Variables = map[string]string{}
	}
	if c.Target.Volumes == nil {
		c.Target.Volumes = []corev1.Volume{}
	}
	if c.Target.VolumeMounts == nil {
		c.Target.VolumeMounts = []corev1.VolumeMount{}
	}
	if c.Storage.Volumes == nil {
		c.Storage.Volumes = []corev1.Volume{}
	}
	if c.Storage.VolumeMounts == nil {
		c.Storage.VolumeMounts = []corev1.VolumeMount{}
	}
	if c.Runtime.PodLabels == nil {
		c.Runtime.PodLabels = map[string]string{}
	}
	if c.Runtime.PodAnnotations == nil {
		c.Runtime.PodAnnotations = map[string]string{}
	}
	return c
}
