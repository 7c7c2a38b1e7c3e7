// Package stashpkg holds Stashplane's provider package: the CRDs generated
// from apis/ and the built-in addons, embedded so that the
// stashplane binary installs exactly the schema it was built with.
package stashpkg

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	"github.com/stashplane/stashplane/internal/version"
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

//go:embed addons/*.yaml
var addonFiles embed.FS

// Addons returns the built-in Addons and the Functions they name, as typed
// objects, in file order. The provider installs them at start-up so that a
// cluster always has the catalog its binary was built with. A Function's
// image of the project's registry that the file leaves untagged gets this
// build's tag, as the stashplane image does.
func Addons() ([]client.Object, error) {
	paths, err := fs.Glob(addonFiles, "addons/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("cannot list addons: %w", err)
	}
	var out []client.Object
	for _, p := range paths {
		b, err := addonFiles.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("cannot read addon file %q: %w", p, err)
		}
		objs, err := DecodeAddons(b)
		if err != nil {
			return nil, fmt.Errorf("cannot decode addon file %q: %w", p, err)
		}
		for _, o := range objs {
			if f, ok := o.(*addonsv1alpha1.Function); ok {
				f.Spec.Image = tagged(f.Spec.Image, version.Tag())
			}
		}
		out = append(out, objs...)
	}
	return out, nil
}

// tagged is image with tag when image is one of the project's and names
// neither a tag nor a digest; any other image is left as it is.
func tagged(image, tag string) string {
	name, ok := strings.CutPrefix(image, version.Registry)
	if !ok || name == "" || strings.ContainsAny(name, ":@") {
		return image
	}
	return image + ":" + tag
}

// DecodeAddons decodes a YAML stream of Addons and Functions strictly: an
// unknown field or any other kind is an error.
func DecodeAddons(b []byte) ([]client.Object, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []client.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read YAML document: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		tm := &metav1.TypeMeta{}
		if err := yaml.Unmarshal(doc, tm); err != nil {
			return nil, fmt.Errorf("cannot read kind: %w", err)
		}
		var obj client.Object
		switch tm.GroupVersionKind() {
		case addonsv1alpha1.AddonGroupVersionKind:
			obj = &addonsv1alpha1.Addon{}
		case addonsv1alpha1.FunctionGroupVersionKind:
			obj = &addonsv1alpha1.Function{}
		default:
			// Only documents that are blank apart from comments lack a kind.
			if tm.Kind == "" && tm.APIVersion == "" {
				continue
			}
			return nil, fmt.Errorf("cannot decode %s %q: only addons.stashplane.io/v1alpha1 Addon and Function are allowed", tm.Kind, tm.APIVersion)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("cannot decode %s: %w", tm.Kind, err)
		}
		out = append(out, obj)
	}
}
