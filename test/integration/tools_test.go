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

package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sharedTools are the modules under hack/tools whose programs hack/tools.sh
// builds with go's default flags, like bin/stashplane, so that they share
// its compiled packages; each with its programs and modules it must share.
var sharedTools = []struct {
	dir       string
	pkgs      []string
	mustShare []string
}{{
	dir: "hack/tools/kube",
	pkgs: []string{
		"go.etcd.io/etcd/server/v3",
		"k8s.io/kubernetes/cmd/kube-apiserver",
		"k8s.io/kubernetes/cmd/kube-controller-manager",
		"k8s.io/kubernetes/cmd/kube-scheduler",
		"k8s.io/kubernetes/cmd/kubectl",
	},
	mustShare: []string{"k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go", "k8s.io/apiserver", "google.golang.org/grpc"},
}, {
	dir:       "hack/tools/restic",
	pkgs:      []string{"github.com/restic/restic/cmd/restic"},
	mustShare: []string{"google.golang.org/grpc", "cloud.google.com/go/storage", "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"},
}}

// moduleVersions lists the module of every package the given packages
// build from, seen from dir, with the version a replace directive selects.
func moduleVersions(dir string, pkgs ...string) (map[string]string, error) {
	args := append([]string{"list", "-deps", "-f", "{{with .Module}}{{.Path}} {{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}{{end}}"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("cannot list the modules of %s: %v: %s", dir, err, stderr.String())
	}
	mods := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		path, version, ok := strings.Cut(s.Text(), " ")
		if !ok || version == "" {
			continue // the main module
		}
		mods[path] = version
	}
	return mods, nil
}

// TestToolModulesAligned holds hack/tools/kube and hack/tools/restic to
// the versions bin/stashplane builds with, for every module they share with
// it. Go's build cache shares a compiled package only between builds of
// the same source with the same dependencies, so one module apart (a patch
// release of client-go, a newer golang.org/x/net) makes a cold `make demo`
// compile those packages twice.
func TestToolModulesAligned(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatalf("cannot find the repository's root: %v", err)
	}
	ours, err := moduleVersions(root, "./cmd/stashplane")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range sharedTools {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			tools, err := moduleVersions(filepath.Join(root, tc.dir), tc.pkgs...)
			if err != nil {
				t.Fatal(err)
			}
			var shared, apart []string
			for path, v := range ours {
				tv, ok := tools[path]
				if !ok {
					continue
				}
				shared = append(shared, path)
				if tv != v {
					apart = append(apart, fmt.Sprintf("%s: %s in go.mod, %s in %s/go.mod", path, v, tv, tc.dir))
				}
			}
			slices.Sort(apart)
			if len(apart) > 0 {
				t.Errorf("%d of %d shared modules differ; give both the newer version (go get MODULE@VERSION in the module behind), or they are compiled a second time:\n%s",
					len(apart), len(shared), strings.Join(apart, "\n"))
			}
			// The heavy modules must be among those shared, or the check
			// above proves nothing.
			for _, m := range tc.mustShare {
				if !slices.Contains(shared, m) {
					t.Errorf("%s is not shared by bin/stashplane and %s", m, tc.dir)
				}
			}
		})
	}
}
