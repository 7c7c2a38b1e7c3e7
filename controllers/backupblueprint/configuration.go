package backupblueprint

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// workload is a Deployment, StatefulSet, DaemonSet or PersistentVolumeClaim
// a blueprint may protect.
type workload struct {
	Kind     string
	Group    string
	Version  string
	Meta     metav1.ObjectMeta
	selected bool
	// partOf names what a claim belongs to (claimOwner), which a
	// namespace's blueprint leaves it to.
	partOf string
}

// object is the workload as an object of its kind, with its metadata, for
// events about it.
func (w workload) object() client.Object {
	switch w.Kind {
	case "Deployment":
		return &appsv1.Deployment{ObjectMeta: w.Meta}
	case "StatefulSet":
		return &appsv1.StatefulSet{ObjectMeta: w.Meta}
	case "DaemonSet":
		return &appsv1.DaemonSet{ObjectMeta: w.Meta}
	}
	return &corev1.PersistentVolumeClaim{ObjectMeta: w.Meta}
}

// String names the workload for messages.
func (w workload) String() string {
	return fmt.Sprintf("%s %s/%s", w.Kind, w.Meta.Namespace, w.Meta.Name)
}

// ConfigurationName is the name of the BackupConfiguration a blueprint
// makes for a workload of the given kind and name, in its namespace.
func ConfigurationName(kind, name string) string {
	return naming.Bound(strings.ToLower(kind)+"-"+name, "", 63)
}

// reference is a ${name} in a blueprint's strings. Names are those an
// annotation key may end with.
var reference = regexp.MustCompile(`\$\{([A-Za-z0-9_.-]+)\}`)

// runtimePrefix begins the variables Stashplane sets when a hook runs
// (docs/hooks.md): a blueprint leaves them for the hook.
const runtimePrefix = "STASHPLANE_"

// variables are the values a blueprint's ${name} references take for w:
// the workload's own, then those its annotations give, which cannot
// replace them.
func variables(w workload) map[string]string {
	vars := map[string]string{}
	for k, v := range w.Meta.Annotations {
		if name, ok := strings.CutPrefix(k, corev1alpha1.AnnotationVariablePrefix); ok && name != "" {
			vars[name] = v
		}
	}
	vars[corev1alpha1.VarTargetName] = w.Meta.Name
	vars[corev1alpha1.VarTargetKind] = w.Kind
	vars[corev1alpha1.VarTargetNamespace] = w.Meta.Namespace
	vars[corev1alpha1.VarNamespace] = w.Meta.Namespace
	return vars
}

// configuration is the BackupConfiguration blueprint bp makes for w, or an
// error that says why it cannot: a reference no variable fills. With a
// verifier template, its repositories that name no verifier name the one
// made beside it.
func configuration(bp *corev1alpha1.BackupBlueprint, w workload) (*corev1alpha1.BackupConfiguration, error) {
	var t corev1alpha1.BackupConfigurationTemplate
	if err := filled(bp, w, "template", bp.Spec.BackupConfigurationTemplate, &t); err != nil {
		return nil, err
	}
	bc := &corev1alpha1.BackupConfiguration{
		ObjectMeta: madeMeta(bp, w),
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   &storagev1alpha1.TypedObjectReference{APIGroup: w.Group, Kind: w.Kind, Name: w.Meta.Name},
			Backends: t.Backends,
			Sessions: t.Sessions,
		},
	}
	if bp.Spec.VerifierTemplate != nil {
		for i := range bc.Spec.Sessions {
			for j := range bc.Spec.Sessions[i].Repositories {
				if r := &bc.Spec.Sessions[i].Repositories[j]; r.BackupVerifier == nil {
					r.BackupVerifier = &storagev1alpha1.ObjectReference{Name: bc.Name}
				}
			}
		}
	}
	return bc, nil
}

// verifier is the BackupVerifier blueprint bp makes for w from its
// verifier template, named, labelled and owned as w's configuration; nil
// without a template.
func verifier(bp *corev1alpha1.BackupBlueprint, w workload) (*corev1alpha1.BackupVerifier, error) {
	if bp.Spec.VerifierTemplate == nil {
		return nil, nil
	}
	v := &corev1alpha1.BackupVerifier{ObjectMeta: madeMeta(bp, w)}
	if err := filled(bp, w, "verifier template", bp.Spec.VerifierTemplate, &v.Spec); err != nil {
		return nil, err
	}
	return v, nil
}

// madeMeta names, labels and owns what bp makes for w.
func madeMeta(bp *corev1alpha1.BackupBlueprint, w workload) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace: w.Meta.Namespace,
		Name:      ConfigurationName(w.Kind, w.Meta.Name),
		Labels:    map[string]string{corev1alpha1.LabelBlueprintName: bp.Name, corev1alpha1.LabelBlueprintNamespace: bp.Namespace},
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: strings.TrimPrefix(w.Group+"/"+w.Version, "/"), Kind: w.Kind, Name: w.Meta.Name, UID: w.Meta.UID,
			BlockOwnerDeletion: ptr.To(false),
		}},
	}
}

// filled decodes into out the template in with w's variables written into
// every string, or says which references none fills.
func filled(bp *corev1alpha1.BackupBlueprint, w workload, what string, in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("cannot encode the %s of backupblueprint %q: %w", what, bp.Name, err)
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return fmt.Errorf("cannot decode the %s of backupblueprint %q: %w", what, bp.Name, err)
	}
	missing := map[string]bool{}
	tree = fill(tree, variables(w), missing)
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("backupblueprint %s/%s uses variables %s that %s does not give: annotate it with %s<name>",
			bp.Namespace, bp.Name, strings.Join(names, ", "), w, corev1alpha1.AnnotationVariablePrefix)
	}
	raw, err = json.Marshal(tree)
	if err != nil {
		return fmt.Errorf("cannot encode the filled %s of backupblueprint %q: %w", what, bp.Name, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("the %s of backupblueprint %q, filled for %s, does not decode: %w", what, bp.Name, w, err)
	}
	return nil
}

// fill writes vars into every string of a decoded JSON tree, noting in
// missing the references none fills.
func fill(v any, vars map[string]string, missing map[string]bool) any {
	switch x := v.(type) {
	case string:
		return reference.ReplaceAllStringFunc(x, func(m string) string {
			name := m[2 : len(m)-1]
			if val, ok := vars[name]; ok {
				return val
			}
			if !strings.HasPrefix(name, runtimePrefix) {
				missing[name] = true
			}
			return m
		})
	case []any:
		for i := range x {
			x[i] = fill(x[i], vars, missing)
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = fill(x[k], vars, missing)
		}
		return x
	default:
		return v
	}
}
