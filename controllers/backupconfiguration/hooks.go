package backupconfiguration

import (
	"context"
	"fmt"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/hookrun"
)

// checkHooks: every hook of every session names a HookTemplate that exists
// and whose usagePolicy admits the configuration's namespace (else not
// ready), with params its template declares and an executor Stashplane
// carries out (else invalid), so that a backup never starts believing a
// freeze hook will run when it cannot.
func checkHooks(ctx context.Context, in *input) (string, bool, error) {
	e := &hookrun.Executor{Kube: in.kube}
	for _, s := range in.bc.Spec.Sessions {
		if s.Hooks == nil {
			continue
		}
		for _, list := range []struct {
			side  string
			hooks []corev1alpha1.HookInfo
		}{{"preBackup", s.Hooks.PreBackup}, {"postBackup", s.Hooks.PostBackup}} {
			for _, h := range list.hooks {
				msg, invalid, err := e.Check(ctx, in.bc.Namespace, h)
				if err != nil || msg != "" {
					return fmt.Sprintf("session %q, %s: %s", s.Name, list.side, msg), invalid, err
				}
			}
		}
	}
	return "", false, nil
}
