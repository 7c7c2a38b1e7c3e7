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

package v1alpha1

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Sizes in status are strings a person reads ("1.5 GiB"). FormatSize
// writes them; ParseSize reads them back, and also accepts plain byte
// counts and Kubernetes quantities ("1536Mi"), so sums over components and
// snapshots can be taken whatever wrote them.

var iecUnits = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}

// FormatSize formats a byte count with binary units.
func FormatSize(bytes int64) string {
	if bytes < 1024 {
		return fmt.Sprintf("%d B", bytes)
	}
	v, i := float64(bytes), 0
	for v >= 1024 && i < len(iecUnits)-1 {
		v, i = v/1024, i+1
	}
	return fmt.Sprintf("%.3g %s", v, iecUnits[i])
}

// ParseSize reads a size written by FormatSize, a byte count or a
// Kubernetes quantity; "" is zero.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	q := strings.ReplaceAll(s, " ", "")
	for _, u := range []struct{ from, to string }{
		{"KiB", "Ki"}, {"MiB", "Mi"}, {"GiB", "Gi"}, {"TiB", "Ti"}, {"PiB", "Pi"},
		{"kB", "k"}, {"KB", "k"}, {"MB", "M"}, {"GB", "G"}, {"TB", "T"}, {"PB", "P"}, {"B", ""},
	} {
		if strings.HasSuffix(q, u.from) {
			q = strings.TrimSuffix(q, u.from) + u.to
			break
		}
	}
	v, err := resource.ParseQuantity(q)
	if err != nil {
		return 0, fmt.Errorf("cannot parse size %q", s)
	}
	return v.Value(), nil
}
