package stashpkg

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
)

func TestTagged(t *testing.T) {
	cases := map[string]struct {
		reason string
		image  string
		want   string
	}{
		"Untagged":  {reason: "A project image without a tag gets the build's tag.", image: "ghcr.io/stashplane/postgres-verifier", want: "ghcr.io/stashplane/postgres-verifier:v1.2.3"},
		"Tagged":    {reason: "A project image with a tag keeps it.", image: "ghcr.io/stashplane/postgres-verifier:v0.9.0", want: "ghcr.io/stashplane/postgres-verifier:v0.9.0"},
		"Digest":    {reason: "A project image pinned by digest keeps it.", image: "ghcr.io/stashplane/postgres-verifier@sha256:abc", want: "ghcr.io/stashplane/postgres-verifier@sha256:abc"},
		"Elsewhere": {reason: "Another registry's image is not the project's to tag.", image: "busybox", want: "busybox"},
		"Empty":     {reason: "A Function with no image of its own stays without.", image: "", want: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tagged(tc.image, "v1.2.3")); diff != "" {
				t.Errorf("%s\ntagged(%q): -want +got:\n%s", tc.reason, tc.image, diff)
			}
		})
	}
}

func TestAddonsTagImages(t *testing.T) {
	objs, err := Addons()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range objs {
		if f, ok := o.(*addonsv1alpha1.Function); ok && f.Spec.Image != "" {
			got[f.Name] = f.Spec.Image
		}
	}
	want := map[string]string{
		"script-verifier":         "busybox:1.36",
		"postgres-query-verifier": "ghcr.io/stashplane/postgres-verifier:latest",
		"postgres-backup":         "ghcr.io/stashplane/stashplane-postgres:latest",
		"postgres-restore":        "ghcr.io/stashplane/stashplane-postgres:latest",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Addons(): a local build's Functions use these images: -want +got:\n%s", diff)
	}
}
