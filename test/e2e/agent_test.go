package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"lukechampine.com/blake3"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/layout"
	stashpkg "github.com/stashplane/stashplane/package"
)

const agentPassword = "e2e agent password 7f3c9a"

// agentEnv is one namespace set up for the agent: a storage, a ready
// repository, its password and a service account bound to agentapi.Rules()
// and a run's agentapi.ReportRulesFor.
type agentEnv struct {
	kube client.Client
	cs   *kubernetes.Clientset
	// storage is the local storage's directory on the host, or "".
	storage string
	// rendered is the storage as the session controllers describe it to
	// the Functions.
	rendered render.Storage
	ns       string
}

// setupLocalAgent sets the agent up on a local storage in a host
// directory.
func setupLocalAgent(t *testing.T) *agentEnv {
	t.Helper()
	dir := t.TempDir()
	e := setupAgent(t, localStorage("local", "default", dir, nil))
	e.storage = dir
	return e
}

// setupAgent sets the agent up on the storage bs (in "default"), creating
// extra objects (such as the storage's Secret) first.
func setupAgent(t *testing.T, bs *storagev1alpha1.BackupStorage, extra ...client.Object) *agentEnv {
	t.Helper()
	kube, cluster := withProviderCluster(t)
	cs, err := kubernetes.NewForConfig(cluster.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := &agentEnv{kube: kube, cs: cs, ns: bs.Namespace}
	e.rendered = render.Storage{Name: bs.Name, Namespace: bs.Namespace, Provider: string(bs.Spec.Storage.Provider)}
	switch st := bs.Spec.Storage; {
	case st.Local != nil:
		e.rendered.Volumes = []corev1.Volume{{Name: "storage-local", VolumeSource: st.Local.VolumeSource}}
		e.rendered.VolumeMounts = []corev1.VolumeMount{{Name: "storage-local", MountPath: st.Local.MountPath, SubPath: st.Local.SubPath}}
	case st.S3 != nil:
		e.rendered.SecretName = st.S3.SecretName
	}
	repo := repository("app", e.ns, "demo/app", storagev1alpha1.DeletionPolicyWipeOut)
	repo.Spec.StorageRef = storagev1alpha1.ObjectReference{Namespace: e.ns, Name: bs.Name}
	for _, o := range append(extra, []client.Object{
		bs,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: e.ns},
			Data:       map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)},
		},
		repo,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "stashplane-agent", Namespace: e.ns}},
		// The Jobs here run without a BackupSession: the account also holds
		// what a run grants its Jobs, for every Snapshot of the namespace.
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "stashplane-agent", Namespace: e.ns}, Rules: append(agentapi.Rules(), agentapi.ReportRulesFor(nil)...)},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "stashplane-agent", Namespace: e.ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "stashplane-agent"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "stashplane-agent", Namespace: e.ns}},
		},
	}...) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitRepoReason(t, kube, e.ns, "app", corev1.ConditionTrue, string(storagev1alpha1.ReasonRepositoryInitializationSucceeded))
	return e
}

// snapshot creates a Snapshot as the BackupSession controller does.
func (e *agentEnv) snapshot(t *testing.T, name, session, ulid string) {
	t.Helper()
	s := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns, Labels: map[string]string{storagev1alpha1.LabelRepository: "app"}},
		Spec: storagev1alpha1.SnapshotSpec{
			SnapshotID: ulid, Type: storagev1alpha1.SnapshotFullBackup, Repository: "app",
			Session: session, BackupSession: name, Version: "v1",
		},
	}
	if err := e.kube.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// job renders a task of the built-in workload-addon exactly as a session
// does, with the data directory as the target's volume at /var/lib/app,
// runs it under the agent's service account and returns its name.
func (e *agentEnv) job(t *testing.T, kind render.TaskKind, task, session, snapshot, component, dataDir string, params map[string]any, change ...func(*render.Context)) string {
	t.Helper()
	objs, err := stashpkg.Addons()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := render.NewCatalog(objs...)
	if err != nil {
		t.Fatal(err)
	}
	addon, err := cat.Addon("workload-addon")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := render.FindTask(addon, kind, task)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := cat.Function(tk.Function)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(params)
	rctx := render.Context{
		Namespace: e.ns,
		Invoker:   render.ObjectRef{APIGroup: "core.stashplane.io", Kind: "BackupConfiguration", Name: "app"},
		Session:   render.ObjectRef{APIGroup: "core.stashplane.io", Kind: "BackupSession", Name: session},
		Target: render.Target{
			APIGroup: "apps", Kind: "Deployment", Name: "app", Namespace: e.ns,
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dataDir, Type: ptr.To(corev1.HostPathDirectory)}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/app"}},
		},
		Repository: render.Repository{Name: "app", Namespace: e.ns, Directory: "demo/app", EncryptionSecret: "restic-password"},
		Storage:    e.rendered,
		Snapshot:   snapshot,
		Component:  component,
		Image:      render.Image("e2e"),
		Runtime:    render.Runtime{Pod: storagev1alpha1.PodRuntimeSettings{ServiceAccountName: "stashplane-agent"}},
	}
	for _, f := range change {
		f(&rctx)
	}
	res, err := render.New(render.Options{}).Render(context.Background(), render.Input{
		Addon: addon, TaskKind: kind, Task: task, Function: fn, Params: p, Context: rctx,
	})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := res.Jobs()
	if err != nil || len(jobs) != 1 {
		t.Fatalf("rendered %d jobs: %v", len(jobs), err)
	}
	j := jobs[0]
	if err := e.kube.Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	return j.Name
}

// wait waits for a Job to end and returns whether it completed and the
// logs of its pod.
func (e *agentEnv) wait(t *testing.T, name string) (bool, string) {
	t.Helper()
	ok, logs, _ := e.waitExit(t, name)
	return ok, logs
}

// waitExit is wait that also returns the exit code of the Job's container.
func (e *agentEnv) waitExit(t *testing.T, name string) (bool, string, int32) {
	t.Helper()
	var cond batchv1.JobConditionType
	poll(t, 2*time.Minute, "job "+name+" did not end", func(ctx context.Context) (bool, error) {
		j := &batchv1.Job{}
		if err := e.kube.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, j); err != nil {
			return false, nil
		}
		cond = jobCondition(j)
		return cond != "", nil
	})
	pods := &corev1.PodList{}
	if err := e.kube.List(context.Background(), pods, client.InNamespace(e.ns), client.MatchingLabels{"job-name": name}); err != nil {
		t.Fatalf("cannot list the pods of job %s: %v", name, err)
	}
	if len(pods.Items) == 0 {
		// A Job past its deadline deletes its pod.
		return cond == batchv1.JobComplete, "(the pod is gone)", -1
	}
	p := pods.Items[0]
	logs := podLogs(t, e.cs, e.ns, p.Name, p.Spec.Containers[0].Name)
	code := int32(-1)
	if cs := p.Status.ContainerStatuses; len(cs) == 1 && cs[0].State.Terminated != nil {
		code = cs[0].State.Terminated.ExitCode
	}
	return cond == batchv1.JobComplete, logs, code
}

func (e *agentEnv) component(t *testing.T, snapshot string) (storagev1alpha1.Component, []byte) {
	t.Helper()
	s, b := e.snapshotStatus(t, snapshot)
	return s.Components[storagev1alpha1.ComponentDump], b
}

func (e *agentEnv) snapshotStatus(t *testing.T, snapshot string) (storagev1alpha1.SnapshotStatus, []byte) {
	t.Helper()
	s := &storagev1alpha1.Snapshot{}
	if err := e.kube.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: snapshot}, s); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s.Status)
	return s.Status, b
}

// generate writes files of random content under dir: n files in nested
// directories, between 1 KiB and 40 KiB each.
func generate(t *testing.T, dir string, n int, seed uint64) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%17), fmt.Sprintf("s%d", i%5), fmt.Sprintf("file-%04d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1024+rnd.IntN(40*1024))
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// hostRestic runs plain restic against a component directory of the
// storage on the host, as a user holding the password would.
func hostRestic(t *testing.T, repo string, args ...string) []byte {
	t.Helper()
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "restic"), append([]string{"-r", repo, "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+agentPassword)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("restic %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

type resticSnapshot struct {
	ID      string   `json:"id"`
	Tags    []string `json:"tags"`
	Paths   []string `json:"paths"`
	Summary struct {
		FilesNew            int   `json:"files_new"`
		FilesChanged        int   `json:"files_changed"`
		DataAdded           int64 `json:"data_added"`
		TotalFilesProcessed int   `json:"total_files_processed"`
	} `json:"summary"`
}

func noPassword(t *testing.T, where string, b []byte) {
	t.Helper()
	if bytes.Contains(b, []byte(agentPassword)) {
		t.Errorf("the repository password appears in %s", where)
	}
}

// The agent backs a workload's data up in a Job rendered from the built-in
// workload-addon: the Snapshot's component is Succeeded with its size and
// restic snapshot; plain restic on the storage lists the snapshot, restores
// identical bytes and checks clean; the content manifest matches the data;
// a second backup is incremental; the agent's restore Job gives the bytes
// back; an empty directory is backed up as empty, a missing path fails the
// component and the Job; the password appears in no status and no log.
func TestAgentBackupRestore(t *testing.T) {
	t.Parallel()
	e := setupLocalAgent(t)
	dump := storagev1alpha1.ComponentDump
	defer dumpOnFailure(t, e.kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, e.kube, &batchv1.JobList{})

	data, empty := t.TempDir(), t.TempDir()
	generate(t, data, 300, 1)
	e.snapshot(t, "app-hourly-1", "hourly", "01KAGENT0000000000000000A1")
	e.snapshot(t, "app-empty-1", "empty", "01KAGENT0000000000000000E1")
	e.snapshot(t, "app-missing-1", "missing", "01KAGENT0000000000000000M1")
	first := e.job(t, render.TaskBackup, "logical-backup", "app-hourly-1", "app-hourly-1", dump, data, map[string]any{"paths": []string{"/var/lib/app"}})
	emptyJob := e.job(t, render.TaskBackup, "logical-backup", "app-empty-1", "app-empty-1", dump, empty, map[string]any{"paths": []string{"/var/lib/app"}})
	// The data volume is at /var/lib/app; /srv/stashplane-absent is where
	// no volume is mounted.
	// Two components of one Snapshot back up at once, as a StatefulSet's
	// pods do: each agent writes only its own component.
	e.snapshot(t, "app-pods-1", "pods", "01KAGENT0000000000000000P1")
	pods := []string{
		e.job(t, render.TaskBackup, "logical-backup", "app-pods-1-0", "app-pods-1", "dump-pod-0", data, map[string]any{"paths": []string{"/var/lib/app"}}),
		e.job(t, render.TaskBackup, "logical-backup", "app-pods-1-1", "app-pods-1", "dump-pod-1", empty, map[string]any{"paths": []string{"/var/lib/app"}}),
	}
	// A Job whose storage volume holds no storage: nothing is written
	// there, and the component says why.
	e.snapshot(t, "app-nostorage-1", "nostorage", "01KAGENT0000000000000000N1")
	elsewhere := t.TempDir()
	noStorage := e.job(t, render.TaskBackup, "logical-backup", "app-nostorage-1", "app-nostorage-1", dump, data, map[string]any{"paths": []string{"/var/lib/app"}},
		func(c *render.Context) {
			c.Storage.Volumes = []corev1.Volume{{Name: "storage-local", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: elsewhere}}}}
		})
	missing := e.job(t, render.TaskBackup, "logical-backup", "app-missing-1", "app-missing-1", dump, empty, map[string]any{"paths": []string{"/srv/stashplane-absent"}})

	ok, logs := e.wait(t, first)
	if !ok {
		t.Fatalf("the backup job failed:\n%s", logs)
	}
	noPassword(t, "the backup job's logs", []byte(logs))
	comp, status := e.component(t, "app-hourly-1")
	t.Logf("snapshot app-hourly-1 status: %s", status)
	noPassword(t, "the snapshot's status", status)
	prefix := layout.ResticPrefix("demo/app", "hourly", storagev1alpha1.ComponentDump)
	if diff := cmp.Diff(storagev1alpha1.Component{
		Path: prefix, Phase: storagev1alpha1.ComponentSucceeded, Driver: storagev1alpha1.DriverRestic, Integrity: ptr.To(true),
	}, storagev1alpha1.Component{Path: comp.Path, Phase: comp.Phase, Driver: comp.Driver, Integrity: comp.Integrity}); diff != "" {
		t.Errorf("component: -want +got:\n%s", diff)
	}
	if len(comp.ResticStats) != 1 || comp.ResticStats[0].Summary == nil || comp.ResticStats[0].Summary.ID == "" || comp.Size == "" || comp.Size == "0 B" || comp.Duration == "" {
		t.Fatalf("component lacks its size, duration or restic summary: %+v", comp)
	}
	sizeGot, err := storagev1alpha1.ParseSize(comp.Size)
	if err != nil {
		t.Fatal(err)
	}
	var sizeWant int64
	want := digest(t, data)
	for rel := range want {
		fi, _ := os.Stat(filepath.Join(data, rel))
		sizeWant += fi.Size()
	}
	if d := sizeGot - sizeWant; d < -sizeWant/100 || d > sizeWant/100 {
		t.Errorf("component size %s (%d bytes), the data holds %d bytes", comp.Size, sizeGot, sizeWant)
	}

	// Plain restic, on the storage's directory on the host.
	repoDir := filepath.Join(e.storage, "backups", prefix)
	var snaps []resticSnapshot
	if err := json.Unmarshal(hostRestic(t, repoDir, "snapshots", "--json"), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].ID != comp.ResticStats[0].Summary.ID || !cmp.Equal(snaps[0].Paths, []string{"/var/lib/app"}) {
		t.Fatalf("restic lists %+v, the component names %s", snaps, comp.ResticStats[0].Summary.ID)
	}
	if !strings.Contains(strings.Join(snaps[0].Tags, ","), "snapshot=app-hourly-1") {
		t.Errorf("restic snapshot tags %v do not name the Snapshot", snaps[0].Tags)
	}
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", snaps[0].ID, "--target", restored)
	if diff := cmp.Diff(want, digest(t, filepath.Join(restored, "var/lib/app"))); diff != "" {
		t.Errorf("restic restore: -backed up +restored:\n%s", diff)
	}
	hostRestic(t, repoDir, "check", "--read-data")

	// The content manifest lists every file with its hash.
	f, err := os.Open(filepath.Join(e.storage, "backups", layout.ManifestKey("demo/app", "app-hourly-1", storagev1alpha1.ComponentDump)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := agent.DecodeManifest(f, agentPassword, "app-hourly-1", storagev1alpha1.ComponentDump)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	fromManifest := map[string]string{}
	for _, mf := range m.Files {
		fromManifest[strings.TrimPrefix(mf.Path, "/var/lib/app/")] = mf.BLAKE3
	}
	wantBLAKE3 := digestWith(t, data, func(b []byte) string { s := blake3.Sum256(b); return hex.EncodeToString(s[:]) })
	if diff := cmp.Diff(wantBLAKE3, fromManifest); diff != "" {
		t.Errorf("manifest: -data +manifest:\n%s", diff)
	}
	if m.ResticSnapshot != snaps[0].ID {
		t.Errorf("manifest names restic snapshot %q, want %q", m.ResticSnapshot, snaps[0].ID)
	}

	// An empty directory is backed up as empty; a path where nothing is
	// mounted fails the component and the Job.
	if ok, logs := e.wait(t, emptyJob); !ok {
		t.Errorf("the backup of an empty directory failed:\n%s", logs)
	}
	if c, _ := e.component(t, "app-empty-1"); c.Phase != storagev1alpha1.ComponentSucceeded || c.Size != "0 B" {
		t.Errorf("empty directory: component %+v, want Succeeded with size 0 B", c)
	}
	ok, logs, code := e.waitExit(t, missing)
	if ok || code != agent.ExitFailed {
		t.Errorf("the backup of a missing path: completed %v, exit code %d, want a failure with exit code %d:\n%s", ok, code, agent.ExitFailed, logs)
	}
	noPassword(t, "the failed job's logs", []byte(logs))
	if c, _ := e.component(t, "app-missing-1"); c.Phase != storagev1alpha1.ComponentFailed || !strings.HasPrefix(c.Error, agent.ReasonSourceNotFound+": ") || len(c.ResticStats) != 0 {
		t.Errorf("missing path: component %+v, want Failed with reason %s and no restic snapshot", c, agent.ReasonSourceNotFound)
	}

	ok, logs, code = e.waitExit(t, noStorage)
	if c, _ := e.component(t, "app-nostorage-1"); ok || code != agent.ExitFailed || c.Phase != storagev1alpha1.ComponentFailed || !strings.HasPrefix(c.Error, agent.ReasonStorageNotMounted+": ") {
		t.Errorf("backup into an unmounted storage: completed %v, exit code %d, component %+v; want Failed with %s:\n%s", ok, code, c, agent.ReasonStorageNotMounted, logs)
	}
	if left := digest(t, elsewhere); len(left) > 0 {
		t.Errorf("a backup into an unmounted storage wrote %v", left)
	}
	for _, j := range pods {
		if ok, logs := e.wait(t, j); !ok {
			t.Errorf("the backup job %s failed:\n%s", j, logs)
		}
	}
	st, _ := e.snapshotStatus(t, "app-pods-1")
	for name, size := range map[string]string{"dump-pod-0": comp.Size, "dump-pod-1": "0 B"} {
		c := st.Components[name]
		if c.Phase != storagev1alpha1.ComponentSucceeded || c.Size != size || c.Path != layout.ResticPrefix("demo/app", "pods", name) {
			t.Errorf("component %s of a two-component snapshot: %+v, want Succeeded, size %s", name, c, size)
		}
	}

	// A second backup after a small change is incremental.
	if err := os.WriteFile(filepath.Join(data, "added.txt"), []byte("a small new file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.snapshot(t, "app-hourly-2", "hourly", "01KAGENT0000000000000000A2")
	second := e.job(t, render.TaskBackup, "logical-backup", "app-hourly-2", "app-hourly-2", dump, data, map[string]any{"paths": []string{"/var/lib/app"}})
	ok, logs = e.wait(t, second)
	if !ok {
		t.Fatalf("the second backup failed:\n%s", logs)
	}
	// It builds on what the first one's check vouched for, and takes the
	// hashes of the 300 unchanged files from the first one's manifest.
	if strings.Contains(logs, "running restic's check") || !strings.Contains(logs, `"files"=300 "snapshot"="app-hourly-1"`) {
		t.Errorf("the second backup ran restic's check, or hashed unchanged files again; want neither:\n%s", logs)
	}
	if c, _ := e.component(t, "app-hourly-2"); c.Phase != storagev1alpha1.ComponentSucceeded {
		t.Fatalf("second backup: component %+v", c)
	}
	snaps = nil
	if err := json.Unmarshal(hostRestic(t, repoDir, "snapshots", "--json"), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("restic lists %d snapshots, want 2", len(snaps))
	}
	if s := snaps[1].Summary; s.FilesNew != 1 || s.FilesChanged != 0 || s.DataAdded > 64<<10 || s.TotalFilesProcessed != 301 {
		t.Errorf("the second backup is not incremental: %+v", s)
	}
	want = digest(t, data)

	// The agent's own restore, in a Job rendered from the restore task.
	into := t.TempDir()
	restore := e.job(t, render.TaskRestore, "logical-backup-restore", "app-restore-1", "app-hourly-2", dump, into, map[string]any{})
	if ok, logs := e.wait(t, restore); !ok {
		t.Fatalf("the restore job failed:\n%s", logs)
	} else if !strings.Contains(logs, "restored files match the content manifest") {
		t.Errorf("the restore did not compare the files with the manifest:\n%s", logs)
	}
	if diff := cmp.Diff(want, digest(t, into)); diff != "" {
		t.Errorf("agent restore: -backed up +restored:\n%s", diff)
	}

	// Include patterns restore only what they match.
	some := t.TempDir()
	restore = e.job(t, render.TaskRestore, "logical-backup-restore", "app-restore-2", "app-hourly-2", dump, some, map[string]any{"include": []string{"*.txt"}})
	if ok, logs := e.wait(t, restore); !ok {
		t.Fatalf("the restore job with include patterns failed:\n%s", logs)
	}
	if diff := cmp.Diff(map[string]string{"added.txt": want["added.txt"]}, digest(t, some)); diff != "" {
		t.Errorf("restore of *.txt: -want +got:\n%s", diff)
	}
}
