package render

import (
	"crypto/sha256"
	"encoding/json"
	"sync"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
)

// maxChecked bounds how many passed parameter checks a Renderer remembers;
// past it, it starts again from none.
const maxChecked = 4096

// checked remembers the parameter checks that passed. A check is a pure
// function of the task's declaration, the Function's template, the given
// parameters and whether they had to be concrete, so a check of the same
// inputs passes again: a thousand configurations using one Addon with the
// same parameters compile its template once, not once each on every
// validation. Failures are not remembered; they are cheap to find again
// and a timeout is not a verdict.
type checked struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]struct{}
}

// checkKey is the identity of a check's inputs, or false when they cannot
// be encoded (then nothing is remembered).
func checkKey(task *addonsv1alpha1.Task, fn *addonsv1alpha1.Function, given map[string]any, concrete bool) ([sha256.Size]byte, bool) {
	b, err := json.Marshal(struct {
		Task     *addonsv1alpha1.Task `json:"task"`
		Function string               `json:"function"`
		Template string               `json:"template"`
		Given    map[string]any       `json:"given"`
		Concrete bool                 `json:"concrete"`
	}{task, fn.GetName(), fn.Spec.Template, given, concrete})
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256(b), true
}

// A nil checked remembers nothing.
func (c *checked) passed(k [sha256.Size]byte) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[k]
	return ok
}

func (c *checked) pass(k [sha256.Size]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxChecked {
		c.m = map[[sha256.Size]byte]struct{}{}
	}
	c.m[k] = struct{}{}
}
