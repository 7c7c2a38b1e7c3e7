package processnode

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// volumeView reads a projected volume as a container does: through its
// top-level entries.
func volumeView(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			return nil
		}
		if rel[0] == '.' {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // a directory link
		}
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	steps := []struct {
		reason      string
		files       []file
		wantChanged bool
		want        map[string]string
	}{
		{
			reason:      "The first write makes the volume.",
			files:       []file{{path: "a", data: []byte("1")}, {path: "b", data: []byte("2")}},
			wantChanged: true,
			want:        map[string]string{"a": "1", "b": "2"},
		},
		{
			reason: "The same files again change nothing.",
			files:  []file{{path: "b", data: []byte("2")}, {path: "a", data: []byte("1")}},
			want:   map[string]string{"a": "1", "b": "2"},
		},
		{
			reason:      "A changed value, a removed key and a new key show at once.",
			files:       []file{{path: "a", data: []byte("one")}, {path: "c", data: []byte("3")}},
			wantChanged: true,
			want:        map[string]string{"a": "one", "c": "3"},
		},
	}
	for i, s := range steps {
		changed, err := writeFiles(dir, s.files, 0o644)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if changed != s.wantChanged {
			t.Errorf("step %d: %s\nchanged: got %v, want %v", i, s.reason, changed, s.wantChanged)
		}
		if diff := cmp.Diff(s.want, volumeView(t, dir)); diff != "" {
			t.Errorf("step %d: %s\nvolume: -want +got:\n%s", i, s.reason, diff)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var hidden []string
	for _, e := range entries {
		if e.Name()[0] == '.' {
			hidden = append(hidden, e.Name())
		}
	}
	sort.Strings(hidden)
	if len(hidden) != 2 || hidden[0] != dataLink {
		t.Errorf("after updates the volume should hold %s and one data directory, holds %v", dataLink, hidden)
	}
	if _, err := writeFiles(dir, []file{{path: "../escape", data: nil}}, 0o644); err == nil {
		t.Error("a file path leaving the volume was accepted")
	}
}

func TestFieldAndResourceValues(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "db", "a.b/c": "x"}, Annotations: map[string]string{"note": "n"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main",
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("1500m")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
			},
		}}},
	}
	cases := map[string]struct {
		reason string
		get    func() (string, error)
		want   string
	}{
		"Label":           {reason: "One label by key.", get: func() (string, error) { return fieldValue(pod, "metadata.labels['app']") }, want: "db"},
		"LabelWithPrefix": {reason: "A prefixed label key.", get: func() (string, error) { return fieldValue(pod, "metadata.labels['a.b/c']") }, want: "x"},
		"Annotation":      {reason: "One annotation by key.", get: func() (string, error) { return fieldValue(pod, "metadata.annotations['note']") }, want: "n"},
		"MissingLabel":    {reason: "A label the pod lacks is empty.", get: func() (string, error) { return fieldValue(pod, "metadata.labels['none']") }, want: ""},
		"MemoryLimit": {reason: "A memory limit in bytes.", get: func() (string, error) {
			return resourceValue(pod, "main", &corev1.ResourceFieldSelector{Resource: "limits.memory"})
		}, want: "67108864"},
		"MemoryRequestMi": {reason: "A memory request with a divisor.", get: func() (string, error) {
			return resourceValue(pod, "main", &corev1.ResourceFieldSelector{Resource: "requests.memory", Divisor: resource.MustParse("1Mi")})
		}, want: "32"},
		"CPULimitCores": {reason: "A CPU limit rounds up to whole cores.", get: func() (string, error) {
			return resourceValue(pod, "main", &corev1.ResourceFieldSelector{Resource: "limits.cpu"})
		}, want: "2"},
		"CPULimitMilli": {reason: "A CPU limit in millicores.", get: func() (string, error) {
			return resourceValue(pod, "main", &corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")})
		}, want: "1500"},
		"UnsetLimit": {reason: "An unset limit is the node's allocatable.", get: func() (string, error) {
			return resourceValue(pod, "main", &corev1.ResourceFieldSelector{Resource: "limits.ephemeral-storage", Divisor: resource.MustParse("1Gi")})
		}, want: "500"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := tc.get()
			if err != nil {
				t.Fatalf("%s\n%v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
	if _, err := resourceValue(pod, "other", &corev1.ResourceFieldSelector{Resource: "limits.cpu"}); err == nil {
		t.Error("a resourceFieldRef to a container the pod lacks was accepted")
	}
}
