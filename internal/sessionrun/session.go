// Package sessionrun holds the rules the session controllers (BackupSession,
// RestoreSession, BackupVerificationSession) share, so that each kind runs
// them the same way: how a condition is recorded (the time of an injected
// clock and the generation observed, always), how long a run may take to
// start its Jobs, when a failed run is retried, and which finished runs the
// history keeps. The Jobs a session composes are made by
// internal/sessionjob.
package sessionrun

import (
	"context"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Object is what carries conditions: a session, or a Snapshot a session
// writes to.
type Object interface {
	GetGeneration() int64
	SetConditions(c ...xpv2.Condition)
}

// SetCondition records a condition of type t on o: True when ok, else
// False, with reason and msg, at the clock's time (the real clock's when
// clk is nil) and with the generation of o it was decided on. A condition
// that did not change keeps its transition time.
func SetCondition(clk clock.PassiveClock, o Object, t xpv2.ConditionType, ok bool, reason xpv2.ConditionReason, msg string) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	c := xpv2.Condition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: msg,
		LastTransitionTime: metav1.NewTime(clk.Now()), ObservedGeneration: o.GetGeneration()}
	if !ok {
		c.Status = corev1.ConditionFalse
	}
	o.SetConditions(c)
}

// StartTimeout bounds how long a run whose session sets no timeout of its
// own may keep failing to create its Jobs: it then fails, so that it no
// longer holds back the runs after it.
const StartTimeout = 30 * time.Minute

// Deadline is when a run created at created must have ended: created plus
// timeout, or plus StartTimeout when timeout is nil and the run has not
// made its Jobs. A nil result means no deadline.
func Deadline(created time.Time, timeout *metav1.Duration, started bool) *time.Time {
	var d time.Time
	switch {
	case timeout != nil:
		d = created.Add(timeout.Duration)
	case !started:
		d = created.Add(StartTimeout)
	default:
		return nil
	}
	return &d
}

// Get reads the object key names into obj from the cache and, when the
// cache holds no such object, from the API server (api): an object made a
// moment before the session that names it may not have reached the cache
// yet, and a session must not end on "does not exist" for that.
func Get(ctx context.Context, cache, api client.Reader, key client.ObjectKey, obj client.Object) error {
	err := cache.Get(ctx, key, obj)
	if !kerrors.IsNotFound(err) || api == nil {
		return err
	}
	return api.Get(ctx, key, obj)
}
