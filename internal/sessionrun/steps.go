package sessionrun

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
)

// A Step is one stage of a session's run. Each kind lists its steps in
// the order they run: the checks that may skip or refuse the run, the Jobs,
// the outcome, and what follows it (retry and history). Hooks and retention
// are further steps in that list, not branches inside one.
type Step[R any] struct {
	// Name says what the step does, for logs and tests.
	Name string
	// Run moves the run on. It returns stop when the steps after it must
	// wait for another reconcile (or the run ended), with the result that
	// says when; an error stops the steps as well.
	Run func(ctx context.Context, run R) (res ctrl.Result, stop bool, err error)
}

// RunSteps runs steps in order until one stops or fails. Its result asks
// for the soonest requeue any step that ran asked for.
func RunSteps[R any](ctx context.Context, run R, steps []Step[R]) (ctrl.Result, error) {
	var out ctrl.Result
	for _, s := range steps {
		res, stop, err := s.Run(ctx, run)
		if w := res.RequeueAfter; w > 0 && (out.RequeueAfter == 0 || w < out.RequeueAfter) {
			out.RequeueAfter = w
		}
		if err != nil || stop {
			return out, err
		}
	}
	return out, nil
}
