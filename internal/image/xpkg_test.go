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

package image

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVersion(t *testing.T) {
	when := time.Date(2026, 12, 2, 14, 55, 25, 0, time.FixedZone("x", 3600))
	commit := "e03f722abcdef0123456789"
	cases := map[string]struct {
		tag     string
		commit  string
		dirty   bool
		want    string
		wantErr string
	}{
		"Tagged":       {tag: "v1.2.3", commit: commit, want: "v1.2.3"},
		"Pseudo":       {commit: commit, want: "v0.0.0-20261202135525-e03f722abcde"},
		"PseudoDirty":  {commit: commit, dirty: true, want: "v0.0.0-20261202135525-e03f722abcde.dirty"},
		"TaggedDirty":  {tag: "v1.2.3", commit: commit, dirty: true, want: "v1.2.3-dirty"},
		"NotSemver":    {tag: "release-7", commit: commit, wantErr: `not a semantic version`},
		"ShortCommit":  {commit: "abc", wantErr: "shorter than 12"},
		"TaggedPreRel": {tag: "v1.0.0-rc.1", commit: commit, want: "v1.0.0-rc.1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Version(tc.tag, tc.commit, when, tc.dirty)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Version: error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Version = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDependencyName(t *testing.T) {
	cases := map[string]struct {
		ref  string
		want string
	}{
		"Function":      {ref: "ghcr.io/stashplane/function-stashplane", want: "stashplane-function-stashplane"},
		"Tagged":        {ref: "ghcr.io/stashplane/provider-stashplane:v0.1.0", want: "stashplane-provider-stashplane"},
		"PrivateDotted": {ref: "registry.example.com:5000/platform/x.y/function-stashplane@sha256:" + strings.Repeat("a", 64), want: "platform-x-y-function-stashplane"},
		"DockerHub":     {ref: "crossplane/function-patch", want: "crossplane-function-patch"},
		"Long":          {ref: "ghcr.io/" + strings.Repeat("abcdefghij/", 8) + "fn", want: "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := DependencyName(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("DependencyName(%q) = %q, want %q", tc.ref, got, tc.want)
			}
		})
	}
}

const configuration = `apiVersion: meta.pkg.crossplane.io/v1
kind: Configuration
metadata:
  name: configuration-stashplane
spec:
  crossplane:
    version: ">=v2.0.0"
  dependsOn:
  - provider: ghcr.io/stashplane/provider-stashplane
    version: ">=v0.0.0-0"
  - function: ghcr.io/stashplane/function-stashplane
    version: ">=v0.0.0-0"
  - function: xpkg.crossplane.io/crossplane-contrib/function-auto-ready
    version: ">=v0.2.0"
`

func TestStampConfiguration(t *testing.T) {
	out, err := StampConfiguration([]byte(configuration), "ghcr.io/stashplane/", "v0.0.0-20261202135525-e03f722abcde")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Dependencies(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Dependency{
		{Kind: "Provider", Package: "ghcr.io/stashplane/provider-stashplane", Version: "v0.0.0-20261202135525-e03f722abcde"},
		{Kind: "Function", Package: "ghcr.io/stashplane/function-stashplane", Version: "v0.0.0-20261202135525-e03f722abcde"},
		{Kind: "Function", Package: "xpkg.crossplane.io/crossplane-contrib/function-auto-ready", Version: ">=v0.2.0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stamped dependencies: -want +got:\n%s", diff)
	}
	if !strings.Contains(string(out), "name: configuration-stashplane") {
		t.Errorf("stamping lost the rest of the metadata:\n%s", out)
	}
	if _, err := StampConfiguration([]byte("kind: Provider\n"), "ghcr.io/stashplane/", "v1.0.0"); err == nil {
		t.Errorf("StampConfiguration of a Provider: no error")
	}
}

func TestRebase(t *testing.T) {
	cases := map[string]struct {
		ref, to, want, wantErr string
	}{
		"Host":          {ref: "ghcr.io/stashplane/stashplane:v1", to: "registry.example.com", want: "registry.example.com/stashplane:v1"},
		"HostPathSlash": {ref: "ghcr.io/stashplane/stashplane:v1", to: "127.0.0.1:5000/platform/", want: "127.0.0.1:5000/platform/stashplane:v1"},
		"NotOurs":       {ref: "docker.io/library/busybox:1", to: "r.example.com", wantErr: "not below"},
		"NoRegistry":    {ref: "ghcr.io/stashplane/stashplane:v1", to: "/", wantErr: "no registry"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Rebase(tc.ref, "ghcr.io/stashplane/", tc.to)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Rebase: error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Rebase = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParsePins(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	cases := map[string]struct {
		in      string
		want    []Pin
		wantErr string
	}{
		"Pins": {
			in:   "# comment\n\nlibc6=2.36-9+deb12u14 amd64 " + sum + "\nlibcap2=1:2.66-4 amd64 " + sum + "\n",
			want: []Pin{{Package: "libc6", Version: "2.36-9+deb12u14", Arch: "amd64", SHA256: sum}, {Package: "libcap2", Version: "1:2.66-4", Arch: "amd64", SHA256: sum}},
		},
		"NoDigest":   {in: "libc6=2.36 amd64\n", wantErr: "line 1"},
		"NoVersion":  {in: "libc6 amd64 " + sum + "\n", wantErr: "not NAME=VERSION"},
		"ShortDigit": {in: "libc6=1 amd64 abc\n", wantErr: "not a SHA-256"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePins(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePins: error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParsePins: -want +got:\n%s", diff)
			}
			if f := got[1].File(); f != "libcap2_1%3a2.66-4_amd64.deb" {
				t.Errorf("File() = %q, want apt-get download's name", f)
			}
		})
	}
}
