package render_test

import (
	"context"
	"sort"
	"testing"

	"github.com/stashplane/stashplane/functions/render"
	stashpkg "github.com/stashplane/stashplane/package"
)

// FuzzTaskParams renders every task of the built-in addons with parameters
// a user could write. Whatever the parameters, rendering returns an error
// or Jobs that keep Stashplane's rules (checkJob: their namespace, no
// privilege, no host namespaces, no secret inlined): parameters never
// widen what a Job may do.
func FuzzTaskParams(f *testing.F) {
	keys := make([]string, 0, len(conformanceParams))
	for k := range conformanceParams {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		f.Add(uint8(i), []byte(conformanceParams[k]))
	}
	for _, p := range []string{
		`{}`, `null`, `[]`, `{"paths": []}`, `{"paths": ["/"]}`, `{"paths": ["../../etc"]}`,
		`{"paths": [1]}`, `{"timeoutSeconds": -1}`, `{"timeoutSeconds": 1e99}`, `{"backoffLimit": "2"}`,
		`{"exclude": ["*"], "unknown": true}`, `{"host": "db; rm -rf /", "authSecret": "$(id)"}`,
		`{"args": "--file=/etc/shadow"}`, `{"mountPath": "/proc"}`, `{"paths": ["/var/lib/app"], "paths": ["/x"]}`,
	} {
		f.Add(uint8(0), []byte(p))
		f.Add(uint8(3), []byte(p))
	}
	objs, err := stashpkg.Addons()
	if err != nil {
		f.Fatal(err)
	}
	cat, err := render.NewCatalog(objs...)
	if err != nil {
		f.Fatal(err)
	}
	type task struct {
		addon string
		kt    render.KindedTask
	}
	var tasks []task
	for _, name := range cat.AddonNames() {
		a, _ := cat.Addon(name)
		for _, kt := range render.Tasks(a) {
			tasks = append(tasks, task{name, kt})
		}
	}
	r := render.New(render.Options{})
	f.Fuzz(func(t *testing.T, which uint8, params []byte) {
		tk := tasks[int(which)%len(tasks)]
		addon, _ := cat.Addon(tk.addon)
		fn, err := cat.Function(tk.kt.Task.Function)
		if err != nil {
			t.Fatal(err)
		}
		c := taskContext(tk.addon, tk.kt.Kind)
		res, err := r.Render(context.Background(), render.Input{
			Addon: addon, TaskKind: tk.kt.Kind, Task: tk.kt.Task.Name, Function: fn, Params: params, Context: c,
		})
		if err != nil {
			return
		}
		jobs, err := res.Jobs()
		if err != nil {
			t.Fatalf("%s/%s with %q rendered objects that are not Jobs: %v", tk.addon, tk.kt.Task.Name, params, err)
		}
		if fn.Spec.Image != "" {
			c.Image = fn.Spec.Image
		}
		for _, j := range jobs {
			for _, p := range checkJob(j, tk.kt, c) {
				t.Errorf("%s/%s with %q: Job %q: %s", tk.addon, tk.kt.Task.Name, params, j.Name, p)
			}
		}
	})
}
