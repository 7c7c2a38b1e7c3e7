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

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
	stashpkg "github.com/stashplane/stashplane/package"
)

type renderFlags struct {
	files     []string
	addons    []string
	noBuiltin bool
	session   string
	image     string
	unix      int64
	// namespace is given to objects in the files that name none.
	namespace string
	// output is "", yaml (a YAML stream with a comment per run) or json
	// (a List of the Jobs).
	output string
}

func renderCommand() *cobra.Command {
	f := &renderFlags{}
	cmd := &cobra.Command{
		Use:   "render -f CONFIG.yaml [-f MORE.yaml...]",
		Short: "Print the Jobs a backup would create, without a cluster",
		Long: `Render prints the Jobs one run of each session of a BackupConfiguration
would create: the Addon's tasks are resolved and their Functions' CUE
templates rendered, exactly as the controllers do, with no cluster.

The files given with -f may hold, besides BackupConfigurations, a
BackupSession (to render that run), the BackupStorages and the target
workload (so that the Jobs mount its volumes), and Addons and Functions,
which replace built-in ones of the same name.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if f.namespace == "" {
				// Offline: the kubeconfig file is read, no cluster reached.
				ns, err := orContextNamespace("")
				if err != nil {
					ns = "default"
				}
				f.namespace = ns
			}
			return runRender(cmd.OutOrStdout(), f)
		},
	}
	cmd.Flags().StringArrayVarP(&f.files, "filename", "f", nil, "YAML files with the configuration and related objects")
	cmd.Flags().StringArrayVar(&f.addons, "addons", nil, "YAML files with Addons and Functions, added to (and overriding) the built-in ones")
	cmd.Flags().BoolVar(&f.noBuiltin, "no-builtin", false, "do not load the built-in addons")
	cmd.Flags().StringVar(&f.session, "session", "", "render only this session of the configuration")
	cmd.Flags().StringVar(&f.image, "image", render.Image("dev"), "the stashplane image the Jobs run")
	cmd.Flags().Int64Var(&f.unix, "time", 0, "Unix time of the run, which names the BackupSession (default: now)")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", "namespace of the objects in the files that name none (default: the kubeconfig context's namespace)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: yaml or json (default: YAML with a comment per run)")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// objects the render command was given, by kind.
type renderInputs struct {
	configs  []*corev1alpha1.BackupConfiguration
	sessions []*corev1alpha1.BackupSession
	storages map[string]*storagev1alpha1.BackupStorage
	addons   []client.Object
	others   []*unstructured.Unstructured
	// namespace is given to objects that name none.
	namespace string
}

func runRender(w io.Writer, f *renderFlags) error {
	namespace := f.namespace
	if namespace == "" {
		namespace = "default"
	}
	in := &renderInputs{storages: map[string]*storagev1alpha1.BackupStorage{}, namespace: namespace}
	if !f.noBuiltin {
		objs, err := stashpkg.Addons()
		if err != nil {
			return err
		}
		in.addons = objs
	}
	for _, p := range append(append([]string{}, f.files...), f.addons...) {
		if err := in.read(p); err != nil {
			return err
		}
	}
	cat, err := render.NewCatalog(in.addons...)
	if err != nil {
		return err
	}
	unix := f.unix
	if unix == 0 {
		unix = time.Now().Unix()
	}
	type run struct{ config, session, name string }
	var runs []run
	for _, s := range in.sessions {
		runs = append(runs, run{config: s.Spec.Invoker.Name, session: s.Spec.Session, name: s.Name})
	}
	if len(runs) == 0 {
		for _, bc := range in.configs {
			for _, s := range bc.Spec.Sessions {
				if f.session == "" || f.session == s.Name {
					runs = append(runs, run{config: bc.Name, session: s.Name, name: naming.SessionName(bc.Name, s.Name, unix)})
				}
			}
		}
	}
	if len(runs) == 0 {
		return errors.New("cannot render: no BackupConfiguration session or BackupSession found in the files")
	}
	r := render.New(render.Options{})
	var out bytes.Buffer
	var jobs []any
	for _, rn := range runs {
		bc := in.config(rn.config)
		if bc == nil {
			return fmt.Errorf("cannot render backupsession %q: its backupconfiguration %q is not in the files", rn.name, rn.config)
		}
		steps, err := plan.Backup(bc, rn.session, plan.Inputs{
			Catalog: cat, Storages: in.storages, Target: in.target(bc), Image: f.image, SessionName: rn.name,
		})
		if err != nil {
			return err
		}
		for _, st := range steps {
			res, err := r.Render(context.Background(), st)
			if err != nil {
				return fmt.Errorf("cannot render task %q of addon %q for repository %q: %w", st.Task, st.Addon.Name, st.Context.Repository.Name, err)
			}
			for _, o := range res.Objects {
				jobs = append(jobs, o.Object)
			}
			y, err := res.YAML()
			if err != nil {
				return err
			}
			fmt.Fprintf(&out, "---\n# %s/%s session %s: addon %s, task %s, repository %s\n", bc.Namespace, bc.Name, rn.name, st.Addon.Name, st.Task, st.Context.Repository.Name)
			out.Write(y)
		}
	}
	if f.output != "" {
		_, err = writeData(w, map[string]any{"apiVersion": "v1", "kind": "List", "items": jobs}, f.output)
		return err
	}
	_, err = w.Write(out.Bytes())
	return err
}

// read adds the objects of one YAML file.
func (in *renderInputs) read(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %q: %w", path, err)
	}
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read %q: %w", path, err)
		}
		u := &unstructured.Unstructured{}
		if err := k8syaml.Unmarshal(doc, &u.Object); err != nil {
			return fmt.Errorf("cannot parse %q: %w", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := in.add(u, doc); err != nil {
			return fmt.Errorf("cannot use %s %q from %q: %w", u.GetKind(), u.GetName(), path, err)
		}
	}
}

func (in *renderInputs) add(u *unstructured.Unstructured, doc []byte) error {
	switch u.GroupVersionKind().GroupKind().String() {
	case "BackupConfiguration.core.stashplane.io":
		bc := &corev1alpha1.BackupConfiguration{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, bc); err != nil {
			return err
		}
		if bc.Namespace == "" {
			bc.Namespace = in.namespace
		}
		in.configs = append(in.configs, bc)
	case "BackupSession.core.stashplane.io":
		s := &corev1alpha1.BackupSession{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, s); err != nil {
			return err
		}
		if s.Namespace == "" {
			s.Namespace = in.namespace
		}
		in.sessions = append(in.sessions, s)
	case "BackupStorage.storage.stashplane.io":
		bs := &storagev1alpha1.BackupStorage{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, bs); err != nil {
			return err
		}
		ns := bs.Namespace
		if ns == "" {
			ns = in.namespace
		}
		in.storages[ns+"/"+bs.Name] = bs
	case "Addon.addons.stashplane.io", "Function.addons.stashplane.io":
		objs, err := stashpkg.DecodeAddons(doc)
		if err != nil {
			return err
		}
		in.addons = append(in.addons, objs...)
	default:
		in.others = append(in.others, u)
	}
	return nil
}

func (in *renderInputs) config(name string) *corev1alpha1.BackupConfiguration {
	for _, bc := range in.configs {
		if bc.Name == name {
			return bc
		}
	}
	return nil
}

// target returns the configuration's target workload, if it was given.
func (in *renderInputs) target(bc *corev1alpha1.BackupConfiguration) *unstructured.Unstructured {
	if bc.Spec.Target == nil {
		return nil
	}
	for _, u := range in.others {
		if u.GetKind() == bc.Spec.Target.Kind && u.GetName() == bc.Spec.Target.Name {
			return u
		}
	}
	return nil
}
