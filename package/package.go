// Package stashpkg holds Stashplane's provider package: the CRDs generated
// from apis/ (and, later, the built-in addons), embedded so that the
// stashplane binary installs exactly the schema it was built with.
package stashpkg

import (
	"embed"
	"fmt"
	"io/fs"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

//go:embed crds/*.yaml
var crdFiles embed.FS

// CRDs returns the CustomResourceDefinitions of every Stashplane kind.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	paths, err := fs.Glob(crdFiles, "crds/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("cannot list CRDs: %w", err)
	}
	out := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(paths))
	for _, p := range paths {
		b, err := crdFiles.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("cannot read CRD %q: %w", p, err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, crd); err != nil {
			return nil, fmt.Errorf("cannot parse CRD %q: %w", p, err)
		}
		out = append(out, crd)
	}
	return out, nil
}
