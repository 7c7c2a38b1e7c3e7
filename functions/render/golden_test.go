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
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with the current output")

// golden compares got with the golden file testdata/<name>.golden, or
// rewrites the file when -update is given.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("output differs from %s (run with -update if intended): -want +got:\n%s", path, diff)
	}
}

// exampleContext is the context the tests render with: a Deployment with
// two volumes, one mounted read-write, backed up to an s3 storage whose
// Secret is only named.
func exampleContext() render.Context {
	return render.Context{
		Namespace: "demo",
		Invoker:   render.ObjectRef{APIGroup: "core.stashplane.io", Kind: "BackupConfiguration", Name: "app-backup"},
		Session:   render.ObjectRef{APIGroup: "core.stashplane.io", Kind: "BackupSession", Name: "app-backup-hourly-1767225600"},
		Target: render.Target{
			APIGroup: "apps", Kind: "Deployment", Name: "app", Namespace: "demo",
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "app-data"}}},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "data", MountPath: "/var/lib/app"},
				{Name: "config", MountPath: "/etc/app", ReadOnly: true},
			},
		},
		Repository: render.Repository{Name: "app-repo", Namespace: "demo", Directory: "demo/app", EncryptionSecret: "app-encryption"},
		Storage:    render.Storage{Name: "s3-storage", Namespace: "stashplane", Provider: "s3", SecretName: "s3-credentials"},
		Snapshot:   "app-repo-app-backup-hourly-1767225600",
		Component:  "dump",
		Image:      render.Image("v0.1.0"),
		Variables:  map[string]string{"interimDataDir": "/tmp/stashplane"},
		Runtime: render.Runtime{
			Pod: storagev1alpha1.PodRuntimeSettings{
				NodeSelector:       map[string]string{"kubernetes.io/os": "linux"},
				ServiceAccountName: "stashplane-backup",
			},
			PodLabels: map[string]string{"team": "payments"},
			Container: storagev1alpha1.ContainerRuntimeSettings{
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				},
			},
		},
	}
}
