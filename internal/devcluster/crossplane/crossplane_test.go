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

package crossplane

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestManifestPinned fails when the Crossplane pin or the chart's values
// move without core.yaml being rendered again (`make crossplane-manifest`).
func TestManifestPinned(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	gomod, err := os.ReadFile(filepath.Join(root, "hack", "tools", "crossplane", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^require github.com/crossplane/crossplane/v2 (\S+)$`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("hack/tools/crossplane/go.mod pins no github.com/crossplane/crossplane/v2")
	}
	values, err := os.ReadFile(filepath.Join(root, "hack", "crossplane-chart", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(m[1]), got); diff != "" {
		t.Errorf("core.yaml renders another Crossplane than the pin (-pin +core.yaml): %s; run `make crossplane-manifest`", diff)
	}
	if want := fmt.Sprintf("(sha256 %x)", sha256.Sum256(values)); !strings.Contains(Header(), want) {
		t.Errorf("core.yaml was rendered with other values than hack/crossplane-chart/values.yaml %s: run `make crossplane-manifest`\n%s", want, Header())
	}
}

// TestCoreObjects reads the rendering as the installer applies it: core
// and its RBAC manager run the pinned image, core on the host's network
// with the cluster's DNS, no webhooks.
func TestCoreObjects(t *testing.T) {
	objs, err := CoreObjects()
	if err != nil {
		t.Fatal(err)
	}
	v, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	type dep struct {
		Images           []string
		HostNetwork      bool
		DNSPolicy        string
		WebhooksDisabled bool
	}
	got := map[string]dep{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		var d dep
		spec := o.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		d.HostNetwork, _ = spec["hostNetwork"].(bool)
		d.DNSPolicy, _ = spec["dnsPolicy"].(string)
		for _, key := range []string{"initContainers", "containers"} {
			cs, _ := spec[key].([]any)
			for _, c := range cs {
				c := c.(map[string]any)
				d.Images = append(d.Images, c["image"].(string))
				env, _ := c["env"].([]any)
				for _, e := range env {
					e := e.(map[string]any)
					if e["name"] == "ENABLE_WEBHOOKS" && e["value"] == "false" {
						d.WebhooksDisabled = true
					}
				}
			}
		}
		got[o.GetNamespace()+"/"+o.GetName()] = d
	}
	img := CoreRepository + ":" + v
	want := map[string]dep{
		Namespace + "/crossplane":              {Images: []string{img, img}, HostNetwork: true, DNSPolicy: "ClusterFirstWithHostNet", WebhooksDisabled: true},
		Namespace + "/crossplane-rbac-manager": {Images: []string{img, img}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("core.yaml's Deployments (-want +got):\n%s", diff)
	}
}
