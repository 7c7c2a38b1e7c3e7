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

package render

import (
	"fmt"
	"sort"

	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
)

// Catalog holds Addons and Functions by name, for renderers that work
// without a cluster: the CLI and the composition function.
type Catalog struct {
	addons    map[string]*addonsv1alpha1.Addon
	functions map[string]*addonsv1alpha1.Function
}

// NewCatalog indexes Addons and Functions; later objects replace earlier
// ones of the same kind and name, so user files can override built-ins.
func NewCatalog(objs ...client.Object) (*Catalog, error) {
	c := &Catalog{addons: map[string]*addonsv1alpha1.Addon{}, functions: map[string]*addonsv1alpha1.Function{}}
	for _, o := range objs {
		switch t := o.(type) {
		case *addonsv1alpha1.Addon:
			c.addons[t.GetName()] = t
		case *addonsv1alpha1.Function:
			c.functions[t.GetName()] = t
		default:
			return nil, fmt.Errorf("cannot add %T %q to catalog: only Addons and Functions belong there", o, o.GetName())
		}
	}
	return c, nil
}

// Addon returns the Addon of the given name.
func (c *Catalog) Addon(name string) (*addonsv1alpha1.Addon, error) {
	a, ok := c.addons[name]
	if !ok {
		return nil, fmt.Errorf("cannot find addon %q; known: %v", name, sortedKeys(c.addons))
	}
	return a, nil
}

// Function returns the Function of the given name.
func (c *Catalog) Function(name string) (*addonsv1alpha1.Function, error) {
	f, ok := c.functions[name]
	if !ok {
		return nil, fmt.Errorf("cannot find function %q; known: %v", name, sortedKeys(c.functions))
	}
	return f, nil
}

// AddonNames returns the names of the Addons, sorted.
func (c *Catalog) AddonNames() []string { return sortedKeys(c.addons) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
