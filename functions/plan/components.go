package plan

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// Component name prefixes of the targets that hold their data in more than
// one place.
const (
	// podComponentPrefix starts the component of one pod of a StatefulSet:
	// dump-pod-<ordinal>.
	podComponentPrefix = storagev1alpha1.ComponentDump + "-pod-"
	// nodeComponentPrefix starts the component of one node of a
	// DaemonSet: dump-<node>.
	nodeComponentPrefix = storagev1alpha1.ComponentDump + "-"
)

// maxComponent bounds a component's name: it is a label value of the Jobs.
const maxComponent = naming.MaxLabelValue

// component is the part of a target one Job backs up or restores, with the
// volumes that hold it.
type component struct {
	name   string
	target render.Target
}

// components splits a target into the parts whose data sits in different
// places: one per pod of a StatefulSet, each with its ordinal's claims; one
// per node a DaemonSet runs on, pinned to the node; else the whole target
// as the one component "dump". Volumes the task names itself are one
// component. A component that mounts claims runs on the node of the pod
// using them (podNodes, by pod name), so that a ReadWriteOnce volume can
// attach; with no such pod running it may run anywhere.
func components(t render.Target, workload *unstructured.Unstructured, listed bool, nodes []string, podNodes map[string]string) ([]component, error) {
	if listed || !isTarget(t, workload) {
		return []component{{name: storagev1alpha1.ComponentDump, target: withClaimsNode(t, workload, podNodes)}}, nil
	}
	switch t.Kind {
	case "StatefulSet":
		return podComponents(t, workload, podNodes)
	case "DaemonSet":
		if len(nodes) == 0 {
			return nil, fmt.Errorf("cannot plan components of daemonset %q: none of its pods runs on a node", t.Name)
		}
		out := make([]component, 0, len(nodes))
		for _, n := range nodes {
			c := component{name: NodeComponent(n), target: t}
			c.target.NodeName = n
			out = append(out, c)
		}
		return out, nil
	}
	return []component{{name: storagev1alpha1.ComponentDump, target: withClaimsNode(t, workload, podNodes)}}, nil
}

// withClaimsNode pins a target that mounts claims of its workload to the
// node of one of the workload's running pods (the first by name), which
// has them attached; a target pinned already, one without claims, and one
// whose workload runs no pod are left as they are.
func withClaimsNode(t render.Target, workload *unstructured.Unstructured, podNodes map[string]string) render.Target {
	if t.NodeName != "" || !isTarget(t, workload) || !mountsClaim(t.Volumes) || len(podNodes) == 0 {
		return t
	}
	pods := make([]string, 0, len(podNodes))
	for p := range podNodes {
		pods = append(pods, p)
	}
	sort.Strings(pods)
	t.NodeName = podNodes[pods[0]]
	return t
}

// mountsClaim says whether any of the volumes is a PersistentVolumeClaim.
func mountsClaim(vols []corev1.Volume) bool {
	for _, v := range vols {
		if v.PersistentVolumeClaim != nil {
			return true
		}
	}
	return false
}

// podComponents gives each pod of a StatefulSet its component, with the
// claims its volumeClaimTemplates made for the pod's ordinal besides the
// pod template's volumes, on the node the pod runs on (podNodes) if it
// runs.
func podComponents(t render.Target, sts *unstructured.Unstructured, podNodes map[string]string) ([]component, error) {
	replicas, found, err := unstructured.NestedInt64(sts.Object, "spec", "replicas")
	if err != nil {
		return nil, fmt.Errorf("cannot read replicas of statefulset %q: %w", t.Name, err)
	}
	if !found {
		replicas = 1
	}
	// A StatefulSet recreated from resource manifests is held without pods
	// until its data is back: its claims are those of the replicas it
	// will have.
	if held, ok := sts.GetAnnotations()[corev1alpha1.AnnotationHeldReplicas]; ok {
		if n, err := strconv.ParseInt(held, 10, 32); err == nil && n > 0 {
			replicas = n
		}
	}
	start, _, err := unstructured.NestedInt64(sts.Object, "spec", "ordinals", "start")
	if err != nil {
		return nil, fmt.Errorf("cannot read ordinals of statefulset %q: %w", t.Name, err)
	}
	if replicas < 1 {
		return nil, fmt.Errorf("cannot plan components of statefulset %q: it has no replicas", t.Name)
	}
	out := make([]component, 0, replicas)
	for i := start; i < start+replicas; i++ {
		c := component{name: podComponentPrefix + strconv.FormatInt(i, 10), target: t}
		c.target.Volumes = append([]corev1.Volume(nil), t.Volumes...)
		for _, name := range claimTemplates(sts) {
			c.target.Volumes = append(c.target.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: fmt.Sprintf("%s-%s-%d", name, t.Name, i)},
			}})
		}
		if mountsClaim(c.target.Volumes) {
			c.target.NodeName = podNodes[fmt.Sprintf("%s-%d", t.Name, i)]
		}
		out = append(out, c)
	}
	return out, nil
}

// claimTemplates names a StatefulSet's volumeClaimTemplates, which are the
// pod's volumes of the same names.
func claimTemplates(workload *unstructured.Unstructured) []string {
	if workload == nil || !strings.EqualFold(workload.GetKind(), "StatefulSet") {
		return nil
	}
	tmpls, _, _ := unstructured.NestedSlice(workload.Object, "spec", "volumeClaimTemplates")
	var out []string
	for _, v := range tmpls {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if name, _, _ := unstructured.NestedString(m, "metadata", "name"); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// NodeComponent is the component of a DaemonSet's data on one node: dump-
// and the node's name, shortened with a hash when it would not fit a label
// value.
func NodeComponent(node string) string {
	return naming.Bound(nodeComponentPrefix+node, "", maxComponent)
}

// isTarget says whether workload is the object t refers to.
func isTarget(t render.Target, workload *unstructured.Unstructured) bool {
	return workload != nil && workload.GetName() == t.Name && strings.EqualFold(workload.GetKind(), t.Kind)
}

// pick finds the named component among those of a target, for a restore
// that writes a component back where it came from; a target that is one
// component takes any.
func pick(all []component, t render.Target, name string) (render.Target, error) {
	for _, c := range all {
		if c.name == name {
			return c.target, nil
		}
	}
	if len(all) == 1 && all[0].name == storagev1alpha1.ComponentDump {
		return all[0].target, nil
	}
	return t, fmt.Errorf("cannot restore component %q into %s %q: it has no part of that name", name, t.Kind, t.Name)
}
