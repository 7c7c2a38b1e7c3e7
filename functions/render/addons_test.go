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

package render_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stashplane/stashplane/functions/render"
	stashpkg "github.com/stashplane/stashplane/package"
)

// secretMarker stands for a secret value in a Job that breaks the rules.
const secretMarker = "s3cr3t-value-never-rendered"

// conformanceParams are the parameter values each built-in task is
// rendered with, keyed by addon/task.
var conformanceParams = map[string]string{
	"workload-addon/logical-backup":         `{"paths": ["/var/lib/app", "/etc/app"], "exclude": ["*.tmp"]}`,
	"workload-addon/logical-backup-restore": `{"paths": ["/var/lib/app"]}`,
	"workload-addon/manifest-backup":        `{}`,
	"workload-addon/manifest-restore":       `{"overwriteResources": true}`,
	"pvc-addon/logical-backup":              `{"exclude": ["lost+found"]}`,
	"kubedump-addon/manifest-backup":        `{"includeResources": "configmaps, deployments,secrets", "excludeResources": ["secrets"], "labelSelector": "app=shop"}`,
	"kubedump-addon/manifest-restore":       `{}`,
	"pvc-addon/logical-backup-restore":      `{}`,
	"pvc-addon/manifest-restore":            `{"dryRun": true}`,
	"postgres-addon/logical-backup":         `{"host": "shop-db", "authSecret": "shop-db-auth", "backupCmd": "pg_dump", "args": "--lock-wait-timeout=5000 shop", "waitTimeout": 300}`,
	"postgres-addon/logical-backup-restore": `{"host": "shop-db-clone", "authSecret": "shop-db-auth", "waitTimeout": 60}`,
}

// builtinCatalog is the catalog of the built-in addons and Functions.
func builtinCatalog(t *testing.T) *render.Catalog {
	t.Helper()
	objs, err := stashpkg.Addons()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := render.NewCatalog(objs...)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// taskContext is the example context a task of a built-in addon renders
// with.
func taskContext(addon string, kind render.TaskKind) render.Context {
	c := exampleContext()
	switch addon {
	case "pvc-addon":
		c.Target = render.Target{Kind: "PersistentVolumeClaim", Name: "app-data", Namespace: "demo"}
	case "postgres-addon":
		// The database is reached over the network: its Deployment's
		// volumes are not the addon's to mount.
		c.Target = render.Target{APIGroup: "apps", Kind: "Deployment", Name: "shop-db", Namespace: "demo"}
	}
	if kind == render.TaskRestore {
		// Restores run for a RestoreSession, which the agent reports to.
		c.Invoker = render.ObjectRef{APIGroup: "core.stashplane.io", Kind: "RestoreSession", Name: "app-restore"}
		c.Session = c.Invoker
	}
	return c
}

// TestBuiltinAddons is the addon conformance suite: every task of every
// built-in addon must validate, render against the example context, match
// its golden file, and produce Jobs that follow Stashplane's rules.
func TestBuiltinAddons(t *testing.T) {
	cat := builtinCatalog(t)
	if diff := cmp.Diff([]string{"kubedump-addon", "postgres-addon", "pvc-addon", "workload-addon"}, cat.AddonNames()); diff != "" {
		t.Fatalf("built-in addons: -want +got:\n%s", diff)
	}
	r := render.New(render.Options{})
	rendered := 0
	for _, name := range cat.AddonNames() {
		addon, _ := cat.Addon(name)
		for _, kt := range render.Tasks(addon) {
			key := name + "/" + kt.Task.Name
			t.Run(key, func(t *testing.T) {
				fn, err := cat.Function(kt.Task.Function)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.CheckFunction(context.Background(), fn); err != nil {
					t.Fatalf("CheckFunction(%q): %v", fn.Name, err)
				}
				if err := r.CheckTaskDefaults(context.Background(), &kt.Task, fn); err != nil {
					t.Fatalf("CheckTaskDefaults(%q): %v", key, err)
				}
				params, ok := conformanceParams[key]
				if !ok {
					t.Fatalf("no conformance parameters for %q: add them to conformanceParams", key)
				}
				c := taskContext(addon.Name, kt.Kind)
				res, err := r.Render(context.Background(), render.Input{
					Addon: addon, TaskKind: kt.Kind, Task: kt.Task.Name, Function: fn,
					Params: []byte(params), Context: c,
				})
				if err != nil {
					t.Fatalf("Render(%q): %v", key, err)
				}
				out, err := res.YAML()
				if err != nil {
					t.Fatal(err)
				}
				golden(t, "addons/"+name+"-"+kt.Task.Name, out)
				for _, kind := range []string{"kind: Secret", "stringData:"} {
					if bytes.Contains(out, []byte(kind)) {
						t.Errorf("rendered output contains %q: templates never make Secrets", kind)
					}
				}
				jobs, err := res.Jobs()
				if err != nil {
					t.Fatal(err)
				}
				if len(jobs) == 0 {
					t.Fatalf("Render(%q) rendered no Job", key)
				}
				if fn.Spec.Image != "" {
					c.Image = fn.Spec.Image
				}
				for _, j := range jobs {
					for _, p := range checkJob(j, kt, c) {
						t.Errorf("Job %q: %s", j.Name, p)
					}
				}
				rendered++
			})
		}
	}
	if rendered < len(conformanceParams) {
		t.Errorf("rendered %d built-in tasks, want at least %d", rendered, len(conformanceParams))
	}
}

// checkJob returns the ways a rendered Job breaks Stashplane's rules.
func checkJob(j *batchv1.Job, kt render.KindedTask, c render.Context) []string {
	kind := kt.Kind
	if kt.Task.Component != "" {
		// A task of a component of its own (the objects) mounts none of
		// the target's volumes, nor a claim that is the target.
		c.Target.Volumes, c.Target.VolumeMounts, c.Target.Kind = nil, nil, "Deployment"
	}
	var problems []string
	s := j.Spec.Template.Spec
	if j.Namespace != c.Namespace {
		problems = append(problems, fmt.Sprintf("namespace %q, want %q", j.Namespace, c.Namespace))
	}
	if s.RestartPolicy != corev1.RestartPolicyNever && s.RestartPolicy != corev1.RestartPolicyOnFailure {
		problems = append(problems, fmt.Sprintf("restartPolicy %q is not allowed in a Job", s.RestartPolicy))
	}
	if j.Labels[render.LabelAddon] != c.Task.Addon && j.Labels[render.LabelAddon] == "" {
		problems = append(problems, "no addon label")
	}
	// Runtime settings reach the pod and every container.
	for k, v := range c.Runtime.Pod.NodeSelector {
		if s.NodeSelector[k] != v {
			problems = append(problems, fmt.Sprintf("nodeSelector %s=%q not applied", k, v))
		}
	}
	if s.ServiceAccountName != c.Runtime.Pod.ServiceAccountName {
		problems = append(problems, fmt.Sprintf("serviceAccountName %q, want %q", s.ServiceAccountName, c.Runtime.Pod.ServiceAccountName))
	}
	for k, v := range c.Runtime.PodLabels {
		if j.Spec.Template.Labels[k] != v {
			problems = append(problems, fmt.Sprintf("pod label %s=%q not applied", k, v))
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range s.Volumes {
		volumes[v.Name] = v
	}
	for _, ctr := range s.Containers {
		if ctr.Image != c.Image {
			problems = append(problems, fmt.Sprintf("container %q image %q, want %q", ctr.Name, ctr.Image, c.Image))
		}
		if len(ctr.Args) == 0 || ctr.Args[0] != map[render.TaskKind]string{render.TaskBackup: "backup", render.TaskRestore: "restore", render.TaskVerification: "verify"}[kind] {
			problems = append(problems, fmt.Sprintf("container %q args %q do not start with the %s subcommand", ctr.Name, ctr.Args, kind))
		}
		for k, q := range c.Runtime.Container.Resources.Limits {
			if got := ctr.Resources.Limits[k]; got.Cmp(q) != 0 {
				problems = append(problems, fmt.Sprintf("container %q limit %s=%s, want %s", ctr.Name, k, got.String(), q.String()))
			}
		}
		for _, a := range ctr.Args {
			if strings.Contains(strings.ToLower(a), "password=") || strings.Contains(strings.ToLower(a), "secret=") {
				problems = append(problems, fmt.Sprintf("container %q passes a credential in argument %q", ctr.Name, a))
			}
		}
		for _, e := range ctr.Env {
			if e.Value != "" && (strings.Contains(e.Name, "KEY") || strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "SECRET")) {
				problems = append(problems, fmt.Sprintf("container %q sets %s to a literal value", ctr.Name, e.Name))
			}
		}
		mounts := map[string]corev1.VolumeMount{}
		for _, m := range ctr.VolumeMounts {
			mounts[m.Name] = m
			v, ok := volumes[m.Name]
			if !ok {
				problems = append(problems, fmt.Sprintf("mount %q has no volume", m.Name))
				continue
			}
			if v.Secret != nil && !m.ReadOnly {
				problems = append(problems, fmt.Sprintf("secret volume %q is mounted writable", m.Name))
			}
		}
		if c.Storage.SecretName != "" && !mountsSecret(s.Volumes, mounts, c.Storage.SecretName) {
			problems = append(problems, fmt.Sprintf("container %q does not mount the storage Secret %q", ctr.Name, c.Storage.SecretName))
		}
		// The target's volumes are mounted at the target's paths:
		// read-only to back up or verify, writable to restore.
		for _, tm := range c.Target.VolumeMounts {
			m, ok := mounts[tm.Name]
			if !ok {
				problems = append(problems, fmt.Sprintf("target volume %q is not mounted", tm.Name))
				continue
			}
			if m.MountPath != tm.MountPath {
				problems = append(problems, fmt.Sprintf("target volume %q mounted at %q, want %q", tm.Name, m.MountPath, tm.MountPath))
			}
			if kind != render.TaskRestore && !m.ReadOnly {
				problems = append(problems, fmt.Sprintf("target volume %q is mounted writable by a %s task", tm.Name, kind))
			}
		}
		if c.Target.Kind == "PersistentVolumeClaim" && !mountsClaim(s.Volumes, mounts, c.Target.Name, kind != render.TaskRestore) {
			problems = append(problems, fmt.Sprintf("claim %q is not mounted as a %s task needs it", c.Target.Name, kind))
		}
	}
	return problems
}

func mountsSecret(vs []corev1.Volume, mounts map[string]corev1.VolumeMount, secret string) bool {
	for _, v := range vs {
		if v.Secret != nil && v.Secret.SecretName == secret {
			if _, ok := mounts[v.Name]; ok {
				return true
			}
		}
	}
	return false
}

func mountsClaim(vs []corev1.Volume, mounts map[string]corev1.VolumeMount, claim string, readOnly bool) bool {
	for _, v := range vs {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			if m, ok := mounts[v.Name]; ok && m.ReadOnly == readOnly {
				return true
			}
		}
	}
	return false
}

// TestCheckJobCatchesViolations proves the conformance checks are not
// vacuous: a Job that breaks each rule is reported.
func TestCheckJobCatchesViolations(t *testing.T) {
	c := exampleContext()
	bad := &batchv1.Job{}
	bad.Namespace = "elsewhere"
	bad.Spec.Template.Spec = corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyAlways,
		Containers: []corev1.Container{{
			Name: "backup", Image: "busybox", Args: []string{"backup", "--password=hunter2"},
			Env:          []corev1.EnvVar{{Name: "AWS_SECRET_ACCESS_KEY", Value: secretMarker}},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/app"}},
		}},
		Volumes: []corev1.Volume{{Name: "data"}},
	}
	got := checkJob(bad, render.KindedTask{Kind: render.TaskBackup}, c)
	want := []string{
		"namespace \"elsewhere\"",
		"restartPolicy",
		"nodeSelector",
		"serviceAccountName",
		"pod label",
		"image \"busybox\"",
		"limit memory",
		"credential in argument",
		"literal value",
		"does not mount the storage Secret",
		"\"config\" is not mounted",
		"\"data\" is mounted writable",
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.Contains(g, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("checkJob did not report %q; reported:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

// TestBuiltinAddonsTakeKubeStashParams shows the built-in tasks taking
// their list parameters as KubeStash's examples write them, one
// comma-separated string, and rendering exactly the Jobs the lists give.
func TestBuiltinAddonsTakeKubeStashParams(t *testing.T) {
	cat := builtinCatalog(t)
	cases := map[string]struct {
		reason       string
		addon, task  string
		kind         render.TaskKind
		asString     string
		asList       string
		wantRejected bool
	}{
		"WorkloadBackup": {
			reason: "paths and exclude as comma-separated strings, spaces around items dropped.",
			addon:  "workload-addon", task: "logical-backup", kind: render.TaskBackup,
			asString: `{"paths": "/source/data, /etc/app", "exclude": "/source/data/lost+found,*.tmp"}`,
			asList:   `{"paths": ["/source/data", "/etc/app"], "exclude": ["/source/data/lost+found", "*.tmp"]}`,
		},
		"WorkloadRestore": {
			reason: "A restore's paths and include as strings.",
			addon:  "workload-addon", task: "logical-backup-restore", kind: render.TaskRestore,
			asString: `{"paths": "/source/data", "include": "*.db"}`,
			asList:   `{"paths": ["/source/data"], "include": ["*.db"]}`,
		},
		"PVCBackup": {
			reason: "The pvc addon's exclude as a string.",
			addon:  "pvc-addon", task: "logical-backup", kind: render.TaskBackup,
			asString: `{"exclude": "lost+found"}`,
			asList:   `{"exclude": ["lost+found"]}`,
		},
		"EmptyPaths": {
			reason: "A backup's paths may not be an empty string, as they may not be an empty list.",
			addon:  "workload-addon", task: "logical-backup", kind: render.TaskBackup,
			asString: `{"paths": " , "}`, wantRejected: true,
		},
		"NotAPath": {
			reason: "A string that does not start with an absolute path is refused.",
			addon:  "workload-addon", task: "logical-backup", kind: render.TaskBackup,
			asString: `{"paths": "not-a-list"}`, wantRejected: true,
		},
	}
	r := render.New(render.Options{})
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			addon, _ := cat.Addon(tc.addon)
			var fnName string
			for _, kt := range render.Tasks(addon) {
				if kt.Kind == tc.kind && kt.Task.Name == tc.task {
					fnName = kt.Task.Function
				}
			}
			fn, err := cat.Function(fnName)
			if err != nil {
				t.Fatal(err)
			}
			c := exampleContext()
			if tc.addon == "pvc-addon" {
				c.Target = render.Target{Kind: "PersistentVolumeClaim", Name: "app-data", Namespace: "demo"}
			}
			rendered := func(params string) ([]byte, error) {
				res, err := r.Render(context.Background(), render.Input{Addon: addon, TaskKind: tc.kind, Task: tc.task, Function: fn, Params: []byte(params), Context: c})
				if err != nil {
					return nil, err
				}
				return res.YAML()
			}
			fromString, err := rendered(tc.asString)
			if tc.wantRejected {
				if err == nil {
					t.Errorf("%s\nRender(%s): want an error, got none", tc.reason, tc.asString)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nRender(%s): %v", tc.reason, tc.asString, err)
			}
			fromList, err := rendered(tc.asList)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(fromList), string(fromString)); diff != "" {
				t.Errorf("%s\nJobs from strings differ from Jobs from lists: -list +string:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestPostgresAddonRefusals: a postgres-addon task that cannot be carried
// out as written fails to render with a message naming the parameter,
// before any Job exists.
func TestPostgresAddonRefusals(t *testing.T) {
	cat := builtinCatalog(t)
	addon, _ := cat.Addon("postgres-addon")
	r := render.New(render.Options{})
	claim := render.Target{Kind: "PersistentVolumeClaim", Name: "scratch", Namespace: "demo"}
	deployment := render.Target{APIGroup: "apps", Kind: "Deployment", Name: "shop-db", Namespace: "demo"}
	cases := map[string]struct {
		reason    string
		kind      render.TaskKind
		task      string
		params    string
		target    render.Target
		component string
		want      string
	}{
		"DumpWithoutDatabase": {
			reason: "pg_dump dumps named databases: without one it is refused.",
			kind:   render.TaskBackup, task: "logical-backup", target: deployment,
			params: `{"host": "shop-db", "authSecret": "auth", "backupCmd": "pg_dump"}`,
			want:   "backupCmd pg_dump needs databases",
		},
		"DumpAllWithDatabases": {
			reason: "pg_dumpall dumps every database: naming some is refused, not ignored.",
			kind:   render.TaskBackup, task: "logical-backup", target: deployment,
			params: `{"host": "shop-db", "authSecret": "auth", "databases": "shop"}`,
			want:   "backupCmd pg_dumpall dumps every database",
		},
		"NoAuthSecret": {
			reason: "The backup needs the auth Secret.",
			kind:   render.TaskBackup, task: "logical-backup", target: deployment,
			params: `{"host": "shop-db"}`,
			want:   "authSecret",
		},
		"SeveralComponents": {
			reason: "A target of several components would be dumped once per component: refused past the first.",
			kind:   render.TaskBackup, task: "logical-backup", target: deployment, component: "dump-pod-1",
			params: `{"host": "shop-db", "authSecret": "auth"}`,
			want:   "component dump-pod-1 is refused",
		},
		"FirstPod": {
			reason: "A StatefulSet of one replica is the one component dump-pod-0.",
			kind:   render.TaskBackup, task: "logical-backup", target: deployment, component: "dump-pod-0",
			params: `{"host": "shop-db", "authSecret": "auth"}`,
		},
		"RestoreWithoutHost": {
			reason: "A restore into a workload loads into its server, which needs host and authSecret.",
			kind:   render.TaskRestore, task: "logical-backup-restore", target: deployment,
			params: `{}`,
			want:   "give the task's host and authSecret",
		},
		"RestoreIntoClaim": {
			reason: "A restore into a claim writes the dump as a file and needs no server.",
			kind:   render.TaskRestore, task: "logical-backup-restore", target: claim,
			params: `{}`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			task, err := render.FindTask(addon, tc.kind, tc.task)
			if err != nil {
				t.Fatal(err)
			}
			fn, err := cat.Function(task.Function)
			if err != nil {
				t.Fatal(err)
			}
			c := exampleContext()
			c.Target = tc.target
			if tc.component != "" {
				c.Component = tc.component
			}
			_, err = r.Render(context.Background(), render.Input{Addon: addon, TaskKind: tc.kind, Task: tc.task, Function: fn, Params: []byte(tc.params), Context: c})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if (tc.want == "") != (err == nil) || !strings.Contains(got, tc.want) {
				t.Errorf("%s\nRender(%s): got error %q, want one containing %q", tc.reason, tc.params, got, tc.want)
			}
		})
	}
}

// TestPostgresAddonValidateParams: a configuration's parameters are
// checked without a run (ValidateParams), as the BackupConfiguration's
// validation does: good ones pass, bad ones name the parameter.
func TestPostgresAddonValidateParams(t *testing.T) {
	cat := builtinCatalog(t)
	addon, _ := cat.Addon("postgres-addon")
	fn, err := cat.Function("postgres-backup")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		params string
		want   string
	}{
		"DumpAll":      {params: `{"host": "app-db", "authSecret": "app-db-auth"}`},
		"DumpOne":      {params: `{"host": "app-db", "authSecret": "app-db-auth", "backupCmd": "pg_dump", "args": "demo"}`},
		"NoDatabase":   {params: `{"host": "app-db", "authSecret": "app-db-auth", "backupCmd": "pg_dump"}`, want: "backupCmd pg_dump needs databases"},
		"NoHost":       {params: `{"authSecret": "app-db-auth"}`, want: "host"},
		"HostWithPath": {params: `{"host": "app-db/x", "authSecret": "app-db-auth"}`, want: "host"},
		"WaitTimeout":  {params: `{"host": "app-db", "authSecret": "app-db-auth", "waitTimeout": 300}`},
		"NegativeWait": {params: `{"host": "app-db", "authSecret": "app-db-auth", "waitTimeout": -1}`, want: "waitTimeout"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := render.New(render.Options{}).ValidateParams(context.Background(), addon, render.TaskBackup, "logical-backup", fn, []byte(tc.params))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if (tc.want == "") != (err == nil) || !strings.Contains(got, tc.want) {
				t.Errorf("ValidateParams(%s): got %q, want an error containing %q", tc.params, got, tc.want)
			}
		})
	}
}
