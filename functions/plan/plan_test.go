package plan_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
	stashpkg "github.com/stashplane/stashplane/package"
)

// part is what a test checks of one planned task: the component and where
// its data is.
type part struct {
	Component string
	Volumes   []string
	Mounts    []string
	Node      string
}

func summarize(inputs []render.Input) []part {
	var out []part
	for _, in := range inputs {
		p := part{Component: in.Context.Component, Node: in.Context.Target.NodeName}
		for _, v := range in.Context.Target.Volumes {
			switch {
			case v.PersistentVolumeClaim != nil:
				p.Volumes = append(p.Volumes, v.Name+"=claim:"+v.PersistentVolumeClaim.ClaimName)
			case v.HostPath != nil:
				p.Volumes = append(p.Volumes, v.Name+"=host:"+v.HostPath.Path)
			default:
				p.Volumes = append(p.Volumes, v.Name)
			}
		}
		for _, m := range in.Context.Target.VolumeMounts {
			p.Mounts = append(p.Mounts, m.Name+"@"+m.MountPath)
		}
		out = append(out, p)
	}
	return out
}

func catalog(t *testing.T) *render.Catalog {
	t.Helper()
	objs, err := stashpkg.Addons()
	if err != nil {
		t.Fatal(err)
	}
	c, err := render.NewCatalog(objs...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func unstructuredOf(t *testing.T, o runtime.Object, kind string) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion("apps/v1")
	u.SetKind(kind)
	return u
}

// podSpec is a database pod mounting data, wal and config; volumes are
// added to the ConfigMap volume config.
func podSpec(volumes ...corev1.Volume) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "db", Image: "db", VolumeMounts: []corev1.VolumeMount{
			{Name: "data", MountPath: "/var/lib/db"},
			{Name: "wal", MountPath: "/var/lib/wal"},
			{Name: "config", MountPath: "/etc/db"},
		}}},
		Volumes: append([]corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db-config"}},
		}}}, volumes...),
	}}
}

func statefulSet(t *testing.T, replicas *int32) *unstructured.Unstructured {
	claim := func(name string) corev1.PersistentVolumeClaim {
		return corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	return unstructuredOf(t, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: replicas, Template: podSpec(),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{claim("data"), claim("wal")},
		},
	}, "StatefulSet")
}

func daemonSet(t *testing.T) *unstructured.Unstructured {
	data := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/db"}}}
	return unstructuredOf(t, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"},
		Spec: appsv1.DaemonSetSpec{Template: podSpec(data)}}, "DaemonSet")
}

func deploymentOf(t *testing.T) *unstructured.Unstructured {
	data := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "db-data"}}}
	return unstructuredOf(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"},
		Spec: appsv1.DeploymentSpec{Template: podSpec(data)}}, "Deployment")
}

func backupConfiguration(kind string, task corev1alpha1.TaskReference) *corev1alpha1.BackupConfiguration {
	return &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "db-backup", Namespace: "demo"},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: kind, Name: "db"},
			Backends: []corev1alpha1.BackendReference{{Name: "local", StorageRef: &storagev1alpha1.ObjectReference{Name: "shared"}}},
			Sessions: []corev1alpha1.Session{{
				Name:         "nightly",
				Addon:        &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{task}},
				Repositories: []corev1alpha1.RepositoryInfo{{Name: "db", Backend: "local", EncryptionSecret: storagev1alpha1.ObjectReference{Name: "pw"}}},
			}},
		},
	}
}

var backupTask = corev1alpha1.TaskReference{Name: "logical-backup", Params: &runtime.RawExtension{Raw: []byte(`{"paths": ["/var/lib/db"]}`)}}

func TestBackupComponents(t *testing.T) {
	listed := backupTask
	listed.TargetVolumes = &corev1alpha1.TargetVolumeInfo{
		Volumes: []corev1alpha1.Volume{{Name: "data", VolumeSource: corev1alpha1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db-0"}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/db"}},
	}
	dbMounts := []string{"data@/var/lib/db", "wal@/var/lib/wal"}
	mountsOnly := backupTask
	mountsOnly.TargetVolumes = &corev1alpha1.TargetVolumeInfo{VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/source/data"}}}
	unknownMount := backupTask
	unknownMount.TargetVolumes = &corev1alpha1.TargetVolumeInfo{VolumeMounts: []corev1.VolumeMount{{Name: "source-data", MountPath: "/source/data"}}}
	cases := map[string]struct {
		reason  string
		kind    string
		task    corev1alpha1.TaskReference
		target  *unstructured.Unstructured
		nodes   []string
		pods    map[string]string
		want    []part
		wantErr string
	}{
		"StatefulSetOnPodNodes": {
			reason: "Each pod's component runs on the node of the pod using its claims, so a ReadWriteOnce volume attaches; a pod not running leaves its component unpinned.",
			kind:   "StatefulSet", task: backupTask, target: statefulSet(t, ptr.To[int32](3)),
			pods: map[string]string{"db-0": "node-a", "db-2": "node-b", "other-1": "node-c"},
			want: []part{
				{Component: "dump-pod-0", Volumes: []string{"data=claim:data-db-0", "wal=claim:wal-db-0"}, Mounts: dbMounts, Node: "node-a"},
				{Component: "dump-pod-1", Volumes: []string{"data=claim:data-db-1", "wal=claim:wal-db-1"}, Mounts: dbMounts},
				{Component: "dump-pod-2", Volumes: []string{"data=claim:data-db-2", "wal=claim:wal-db-2"}, Mounts: dbMounts, Node: "node-b"},
			},
		},
		"DeploymentOnPodNode": {
			reason: "A Deployment's claim is mounted on the node of its running pod (the first by name).",
			kind:   "Deployment", task: backupTask, target: deploymentOf(t),
			pods: map[string]string{"db-7c9-x2": "node-b", "db-7c9-a1": "node-a"},
			want: []part{{Component: "dump", Volumes: []string{"data=claim:db-data"}, Mounts: []string{"data@/var/lib/db"}, Node: "node-a"}},
		},
		"DaemonSetKeepsItsNodes": {
			reason: "A DaemonSet's components stay on the nodes they are named after, whatever pod runs where.",
			kind:   "DaemonSet", task: backupTask, target: daemonSet(t), nodes: []string{"node-a"},
			pods: map[string]string{"db-x": "node-z"},
			want: []part{{Component: "dump-node-a", Volumes: []string{"data=host:/srv/db"}, Mounts: []string{"data@/var/lib/db"}, Node: "node-a"}},
		},
		"StatefulSet": {
			reason: "Each pod of a StatefulSet is a component with the claims of its ordinal, its mounts, and no ConfigMap.",
			kind:   "StatefulSet", task: backupTask, target: statefulSet(t, ptr.To[int32](3)),
			want: []part{
				{Component: "dump-pod-0", Volumes: []string{"data=claim:data-db-0", "wal=claim:wal-db-0"}, Mounts: dbMounts},
				{Component: "dump-pod-1", Volumes: []string{"data=claim:data-db-1", "wal=claim:wal-db-1"}, Mounts: dbMounts},
				{Component: "dump-pod-2", Volumes: []string{"data=claim:data-db-2", "wal=claim:wal-db-2"}, Mounts: dbMounts},
			},
		},
		"StatefulSetDefaultReplicas": {
			reason: "A StatefulSet without replicas set has one pod.",
			kind:   "StatefulSet", task: backupTask, target: statefulSet(t, nil),
			want: []part{{Component: "dump-pod-0", Volumes: []string{"data=claim:data-db-0", "wal=claim:wal-db-0"}, Mounts: dbMounts}},
		},
		"StatefulSetScaledDown": {
			reason: "A StatefulSet with no pods has nothing to back up, and says so.",
			kind:   "StatefulSet", task: backupTask, target: statefulSet(t, ptr.To[int32](0)),
			wantErr: `cannot plan components of statefulset "db": it has no replicas`,
		},
		"StatefulSetListedVolumes": {
			reason: "Volumes the task lists itself are one component, whatever the target.",
			kind:   "StatefulSet", task: listed, target: statefulSet(t, ptr.To[int32](3)),
			want: []part{{Component: "dump", Volumes: []string{"data=claim:data-db-0"}, Mounts: []string{"data@/var/lib/db"}}},
		},
		"StatefulSetMountsOnly": {
			reason: "volumeMounts without volumes, as KubeStash's guides write them, mount the claims they name where they say, per pod.",
			kind:   "StatefulSet", task: mountsOnly, target: statefulSet(t, ptr.To[int32](2)),
			want: []part{
				{Component: "dump-pod-0", Volumes: []string{"data=claim:data-db-0", "wal=claim:wal-db-0"}, Mounts: []string{"data@/source/data"}},
				{Component: "dump-pod-1", Volumes: []string{"data=claim:data-db-1", "wal=claim:wal-db-1"}, Mounts: []string{"data@/source/data"}},
			},
		},
		"DeploymentMountsOnly": {
			reason: "A Deployment's volume is mounted where the task's volumeMounts say.",
			kind:   "Deployment", task: mountsOnly, target: deploymentOf(t),
			want: []part{{Component: "dump", Volumes: []string{"data=claim:db-data"}, Mounts: []string{"data@/source/data"}}},
		},
		"MountOfNoVolume": {
			reason: "A volumeMount naming no data volume of the target is refused, not ignored.",
			kind:   "Deployment", task: unknownMount, target: deploymentOf(t),
			wantErr: `targetVolumes.volumeMounts: "source-data" is not a data volume of Deployment "db"; name one of its pod template's volumes or claim templates`,
		},
		"DaemonSet": {
			reason: "Each node a DaemonSet runs on is a component, pinned to the node, with the host paths.",
			kind:   "DaemonSet", task: backupTask, target: daemonSet(t), nodes: []string{"node-a", "node-b"},
			want: []part{
				{Component: "dump-node-a", Volumes: []string{"data=host:/srv/db"}, Mounts: []string{"data@/var/lib/db"}, Node: "node-a"},
				{Component: "dump-node-b", Volumes: []string{"data=host:/srv/db"}, Mounts: []string{"data@/var/lib/db"}, Node: "node-b"},
			},
		},
		"DaemonSetNowhere": {
			reason: "A DaemonSet that runs on no node has nothing to back up, and says so.",
			kind:   "DaemonSet", task: backupTask, target: daemonSet(t),
			wantErr: `cannot plan components of daemonset "db": none of its pods runs on a node`,
		},
		"Deployment": {
			reason: "A Deployment is one component, dump, on any node.",
			kind:   "Deployment", task: backupTask, target: deploymentOf(t),
			want: []part{{Component: "dump", Volumes: []string{"data=claim:db-data"}, Mounts: []string{"data@/var/lib/db"}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := plan.Backup(backupConfiguration(tc.kind, tc.task), "nightly", plan.Inputs{
				Catalog: catalog(t), Target: tc.target, Nodes: tc.nodes, PodNodes: tc.pods, SessionName: "db-backup-nightly-1",
			})
			if diff := cmp.Diff(tc.wantErr, errString(err)); diff != "" {
				t.Fatalf("\n%s\nBackup(...): -want error +got error:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want, summarize(got)); diff != "" {
				t.Errorf("\n%s\nBackup(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// The built-in addon renders one Job per component, each with its own name
// of at most 63 characters, pinned to its node when it has one.
func TestBackupJobsPerComponent(t *testing.T) {
	long := strings.Repeat("n", 70)
	cases := map[string]struct {
		reason string
		kind   string
		target *unstructured.Unstructured
		nodes  []string
		pods   map[string]string
		want   map[string]string
	}{
		"StatefulSet": {
			reason: "Each pod's Job is named after its component, and runs on the node of the pod whose claims it mounts.",
			kind:   "StatefulSet", target: statefulSet(t, ptr.To[int32](2)), pods: map[string]string{"db-1": "node-b"},
			want: map[string]string{
				"db-backup-nightly-1-logical-backup-dump-pod-0": "",
				"db-backup-nightly-1-logical-backup-dump-pod-1": "node-b",
			},
		},
		"DaemonSetLongNode": {
			reason: "A node name too long for a Job name is shortened with a hash, and the Job runs on the node.",
			kind:   "DaemonSet", target: daemonSet(t), nodes: []string{"node-a", long},
			want: map[string]string{
				"db-backup-nightly-1-logical-backup-dump-node-a":              "node-a",
				"db-backup-nightly-1-logical-backup-dump-nnnnnnnnnnnn-<hash>": long,
			},
		},
		"Deployment": {
			reason: "The one component of a Deployment keeps the plain name.",
			kind:   "Deployment", target: deploymentOf(t),
			want: map[string]string{"db-backup-nightly-1-logical-backup": ""},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			inputs, err := plan.Backup(backupConfiguration(tc.kind, backupTask), "nightly", plan.Inputs{
				Catalog: catalog(t), Target: tc.target, Nodes: tc.nodes, PodNodes: tc.pods, SessionName: "db-backup-nightly-1",
			})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, j := range renderedJobs(t, inputs) {
				if len(j.Name) > 63 {
					t.Errorf("\n%s\njob name %q is longer than 63 characters", tc.reason, j.Name)
				}
				got[hashless(j.Name)] = j.Spec.Template.Spec.NodeName
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\njobs and their nodes: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// hashless replaces the hash a shortened name ends with.
func hashless(name string) string {
	if len(name) < 63 {
		return name
	}
	return name[:strings.LastIndex(name, "-")+1] + "<hash>"
}

func restoreSession(kind string, components ...string) *corev1alpha1.RestoreSession {
	return &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "db-restore", Namespace: "demo"},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: kind, Name: "db"},
			DataSource: corev1alpha1.RestoreDataSource{Repository: "db", Snapshot: "db-1", Components: components},
			Addon:      &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup-restore"}}},
		},
	}
}

func snapshotOf(components ...string) *storagev1alpha1.Snapshot {
	s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "demo"}}
	s.Status.Components = map[string]storagev1alpha1.Component{}
	for _, c := range components {
		s.Status.Components[c] = storagev1alpha1.Component{}
	}
	return s
}

func TestRestoreComponents(t *testing.T) {
	dbMounts := []string{"data@/var/lib/db", "wal@/var/lib/wal"}
	mountsOnly := backupTask
	mountsOnly.TargetVolumes = &corev1alpha1.TargetVolumeInfo{VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/source/data"}}}
	unknownMount := backupTask
	unknownMount.TargetVolumes = &corev1alpha1.TargetVolumeInfo{VolumeMounts: []corev1.VolumeMount{{Name: "source-data", MountPath: "/source/data"}}}
	cases := map[string]struct {
		reason  string
		rs      *corev1alpha1.RestoreSession
		snap    *storagev1alpha1.Snapshot
		target  *unstructured.Unstructured
		nodes   []string
		want    []part
		wantErr string
	}{
		"StatefulSet": {
			reason: "Each pod's component goes back into the claims of the same ordinal.",
			rs:     restoreSession("StatefulSet"), snap: snapshotOf("dump-pod-1", "dump-pod-0"), target: statefulSet(t, ptr.To[int32](2)),
			want: []part{
				{Component: "dump-pod-0", Volumes: []string{"data=claim:data-db-0", "wal=claim:wal-db-0"}, Mounts: dbMounts},
				{Component: "dump-pod-1", Volumes: []string{"data=claim:data-db-1", "wal=claim:wal-db-1"}, Mounts: dbMounts},
			},
		},
		"StatefulSetOnePod": {
			reason: "A RestoreSession may restore one pod's component only.",
			rs:     restoreSession("StatefulSet", "dump-pod-1"), snap: snapshotOf("dump-pod-0", "dump-pod-1"), target: statefulSet(t, ptr.To[int32](2)),
			want: []part{{Component: "dump-pod-1", Volumes: []string{"data=claim:data-db-1", "wal=claim:wal-db-1"}, Mounts: dbMounts}},
		},
		"StatefulSetMissingPod": {
			reason: "A pod the target does not have is refused, not written elsewhere.",
			rs:     restoreSession("StatefulSet"), snap: snapshotOf("dump-pod-0", "dump-pod-2"), target: statefulSet(t, ptr.To[int32](2)),
			wantErr: `cannot restore component "dump-pod-2" into StatefulSet "db": it has no part of that name`,
		},
		"DaemonSetNodesFromNames": {
			reason: "Without the node list a DaemonSet's components go back to the nodes they are named after.",
			rs:     restoreSession("DaemonSet"), snap: snapshotOf("dump-node-a"), target: daemonSet(t),
			want: []part{{Component: "dump-node-a", Volumes: []string{"data=host:/srv/db"}, Mounts: []string{"data@/var/lib/db"}, Node: "node-a"}},
		},
		"PodIntoDeployment": {
			reason: "A target that is one component takes any component, such as one pod's data.",
			rs:     restoreSession("Deployment", "dump-pod-1"), snap: snapshotOf("dump-pod-0", "dump-pod-1"), target: deploymentOf(t),
			want: []part{{Component: "dump-pod-1", Volumes: []string{"data=claim:db-data"}, Mounts: []string{"data@/var/lib/db"}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := plan.Restore(tc.rs, plan.Inputs{
				Catalog: catalog(t), Target: tc.target, Nodes: tc.nodes, Snapshot: tc.snap,
				Repository: &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"}},
			})
			if diff := cmp.Diff(tc.wantErr, errString(err)); diff != "" {
				t.Fatalf("\n%s\nRestore(...): -want error +got error:\n%s", tc.reason, diff)
			}
			sorted := summarize(got)
			sort.Slice(sorted, func(i, j int) bool { return sorted[i].Component < sorted[j].Component })
			if diff := cmp.Diff(tc.want, sorted); diff != "" {
				t.Errorf("\n%s\nRestore(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNodeComponent(t *testing.T) {
	cases := map[string]struct {
		reason string
		node   string
		want   string
	}{
		"Short": {reason: "A short node name is kept whole.", node: "worker-1", want: "dump-worker-1"},
		"Long": {reason: "A long node name is cut to a label value, keeping a hash of the whole.", node: strings.Repeat("x", 80),
			want: fmt.Sprintf("dump-%s-", strings.Repeat("x", 49))},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := plan.NodeComponent(tc.node)
			if len(got) > 63 {
				t.Errorf("\n%s\nNodeComponent(%q) = %q, longer than 63", tc.reason, tc.node, got)
			}
			if len(got) > len(tc.want) {
				got = got[:len(tc.want)]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nNodeComponent(%q): -want +got:\n%s", tc.reason, tc.node, diff)
			}
		})
	}
}

// TestDaemonSetNodesThroughSnapshot backs up a DaemonSet on a node whose
// name is too long for its component, records the nodes as the backup
// session does on the Snapshot, and restores: each component goes back to
// its real node, not to one read from the shortened name.
func TestDaemonSetNodesThroughSnapshot(t *testing.T) {
	long := "ip-10-0-0-1.eu-west-1.compute.internal.a-rather-long-node-pool-name"
	cases := map[string]struct {
		reason   string
		nodes    []string
		annotate bool
		want     []string
	}{
		"Recorded": {
			reason: "Nodes recorded on the Snapshot are used, the long one included.",
			nodes:  []string{long, "node-a"}, annotate: true,
			want: []string{long, "node-a"},
		},
		"NotRecorded": {
			reason: "A Snapshot made before nodes were recorded falls back to the names, which hold short node names whole.",
			nodes:  []string{"node-a"},
			want:   []string{"node-a"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			backup, err := plan.Backup(backupConfiguration("DaemonSet", backupTask), "nightly", plan.Inputs{
				Catalog: catalog(t), Target: daemonSet(t), Nodes: tc.nodes, SessionName: "db-backup-nightly-1",
			})
			if err != nil {
				t.Fatal(err)
			}
			var components []string
			for _, in := range backup {
				components = append(components, in.Context.Component)
			}
			snap := snapshotOf(components...)
			if tc.annotate {
				b, err := json.Marshal(plan.ComponentNodes(backup))
				if err != nil {
					t.Fatal(err)
				}
				snap.Annotations = map[string]string{storagev1alpha1.AnnotationComponentNodes: string(b)}
			}
			restored, err := plan.Restore(restoreSession("DaemonSet"), plan.Inputs{
				Catalog: catalog(t), Target: daemonSet(t), Snapshot: snap,
				Repository: &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, in := range restored {
				got = append(got, in.Context.Target.NodeName)
			}
			sort.Strings(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nnodes of the restore's components: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestComponentNodes(t *testing.T) {
	cases := map[string]struct {
		reason string
		kind   string
		target *unstructured.Unstructured
		nodes  []string
		pods   map[string]string
		want   map[string]string
	}{
		"DaemonSet": {
			reason: "Each DaemonSet component is recorded with its node.",
			kind:   "DaemonSet", target: daemonSet(t), nodes: []string{"node-a", "node-b"},
			want: map[string]string{"dump-node-a": "node-a", "dump-node-b": "node-b"},
		},
		"StatefulSet": {
			reason: "A StatefulSet's pod may move: the node its Job ran on is not recorded.",
			kind:   "StatefulSet", target: statefulSet(t, ptr.To[int32](1)), pods: map[string]string{"db-0": "node-a"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			inputs, err := plan.Backup(backupConfiguration(tc.kind, backupTask), "nightly", plan.Inputs{
				Catalog: catalog(t), Target: tc.target, Nodes: tc.nodes, PodNodes: tc.pods, SessionName: "db-backup-nightly-1",
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, plan.ComponentNodes(inputs)); diff != "" {
				t.Errorf("\n%s\nComponentNodes(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
