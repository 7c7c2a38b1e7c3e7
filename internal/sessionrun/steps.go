package sessionrun

import (
	"context"
	"errors"

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

// RunAll runs every step in order, whether or not one before it stopped
// or failed: the steps of a run that ended (cleanup, retry, history) do not
// hold one another back. The errors are joined; the result asks for the
// soonest requeue any step asked for.
func RunAll[R any](ctx context.Context, run R, steps []Step[R]) (ctrl.Result, error) {
	var out ctrl.Result
	var errs []error
	for _, s := range steps {
		res, _, err := s.Run(ctx, run)
		out = sooner(out, res)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// sooner is a with the soonest requeue of a and b.
func sooner(a, b ctrl.Result) ctrl.Result {
	if w := b.RequeueAfter; w > 0 && (a.RequeueAfter == 0 || w < a.RequeueAfter) {
		a.RequeueAfter = w
	}
	return a
}

// RunSteps runs steps in order until one stops or fails. Its result asks
// for the soonest requeue any step that ran asked for.
func RunSteps[R any](ctx context.Context, run R, steps []Step[R]) (ctrl.Result, error) {
	var out ctrl.Result
	for _, s := range steps {
		res, stop, err := s.Run(ctx, run)
		out = sooner(out, res)
		if err != nil || stop {
			return out, err
		}
	}
	return out, nil
}
