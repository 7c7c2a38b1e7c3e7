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
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"
)

// The Crossplane packages, by repository below the registry.
const (
	ProviderPackage      = "provider-stashplane"
	FunctionPackage      = "function-stashplane"
	ConfigurationPackage = "configuration-stashplane"
)

// Version is the version a build of commit is stamped with: tag when the
// commit is tagged (v1.2.3), else a pseudo-version made of the commit's
// time and hash, v0.0.0-YYYYMMDDhhmmss-abcdefabcdef, which sorts by time
// as a semantic version's pre-release. A tree with changes not committed
// gets ".dirty" added: its images are not the commit's.
func Version(tag, commit string, commitTime time.Time, dirty bool) (string, error) {
	v := tag
	if v == "" {
		if len(commit) < 12 {
			return "", fmt.Errorf("cannot make a version: commit %q is shorter than 12 characters", commit)
		}
		v = "v0.0.0-" + commitTime.UTC().Format("20060102150405") + "-" + commit[:12]
	}
	if !semver.MatchString(v) {
		return "", fmt.Errorf("cannot use version %q: it is not a semantic version with a leading v", v)
	}
	if dirty {
		if strings.Contains(v, "-") {
			v += ".dirty"
		} else {
			v += "-dirty"
		}
	}
	return v, nil
}

var semver = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$`)

// DependencyName is the name Crossplane gives the package it installs as a
// dependency from ref: the repository path (registry and tag dropped) made
// a DNS label, so ghcr.io/stashplane/function-stashplane is installed as
// the Function stashplane-function-stashplane. A Composition's functionRef
// must use that name.
func DependencyName(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("cannot parse package reference %q: %w", ref, err)
	}
	return dnsLabel(r.Context().RepositoryStr()), nil
}

// dnsLabel keeps lower-case letters and digits, turns the separators
// '.', '/', ':' and '-' into '-' except at either end, stops after 63
// characters and trims dashes off both ends.
func dnsLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && i < 63; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
		case strings.IndexByte("./:-", c) >= 0 && i != 0 && i != 62 && i != len(s)-1:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// Dependency is one entry of a Configuration's spec.dependsOn.
type Dependency struct {
	Kind    string // Provider or Function
	Package string
	Version string
}

// Dependencies reads the dependsOn of a Configuration's crossplane.yaml.
func Dependencies(meta []byte) ([]Dependency, error) {
	var m struct {
		Kind string `json:"kind"`
		Spec struct {
			DependsOn []struct {
				Provider *string `json:"provider"`
				Function *string `json:"function"`
				Version  string  `json:"version"`
			} `json:"dependsOn"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("cannot parse package metadata: %w", err)
	}
	if m.Kind != "Configuration" {
		return nil, fmt.Errorf("cannot read dependencies: package metadata is a %q, not a Configuration", m.Kind)
	}
	out := make([]Dependency, 0, len(m.Spec.DependsOn))
	for i, d := range m.Spec.DependsOn {
		switch {
		case d.Provider != nil:
			out = append(out, Dependency{Kind: "Provider", Package: *d.Provider, Version: d.Version})
		case d.Function != nil:
			out = append(out, Dependency{Kind: "Function", Package: *d.Function, Version: d.Version})
		default:
			return nil, fmt.Errorf("cannot read dependencies: spec.dependsOn[%d] names neither a provider nor a function", i)
		}
	}
	return out, nil
}

// StampConfiguration returns a Configuration's crossplane.yaml with every
// dependency on a package under registry (a prefix ending in '/') pinned
// to version, so that the Configuration of one build installs the Provider
// and Function of the same build. Other dependencies are left alone.
func StampConfiguration(meta []byte, registry, version string) ([]byte, error) {
	if _, err := Dependencies(meta); err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("cannot parse package metadata: %w", err)
	}
	spec, _ := m["spec"].(map[string]any)
	deps, _ := spec["dependsOn"].([]any)
	for _, d := range deps {
		dm, ok := d.(map[string]any)
		if !ok {
			continue
		}
		for _, k := range []string{"provider", "function"} {
			if p, ok := dm[k].(string); ok && strings.HasPrefix(p, registry) {
				dm["version"] = version
			}
		}
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cannot write package metadata: %w", err)
	}
	return out, nil
}

// Rebase moves ref from below the registry prefix from to below to (a
// registry host with an optional path, with or without a trailing '/').
func Rebase(ref, from, to string) (string, error) {
	rest, ok := strings.CutPrefix(ref, from)
	if !ok {
		return "", fmt.Errorf("cannot move image %q: it is not below %q", ref, from)
	}
	to = strings.TrimSuffix(to, "/")
	if to == "" {
		return "", fmt.Errorf("cannot move image %q: no registry given", ref)
	}
	return to + "/" + rest, nil
}
