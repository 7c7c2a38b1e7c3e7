package backupsession

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/oklog/ulid/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/sessionjob"
	"github.com/stashplane/stashplane/internal/sessionrun"
	"github.com/stashplane/stashplane/internal/trigger"
)

// completedGrace is how long a session waits, after its Jobs completed, for
// their components to be reported before it calls the backup incomplete.
const completedGrace = time.Minute

func session(bc *corev1alpha1.BackupConfiguration, name string) *corev1alpha1.Session {
	for i := range bc.Spec.Sessions {
		if bc.Spec.Sessions[i].Name == name {
			return &bc.Spec.Sessions[i]
		}
	}
	return nil
}

// componentCounts counts the components the planned Jobs write, by
// repository.
func componentCounts(inputs []render.Input) map[string]int {
	seen := map[string]map[string]bool{}
	for _, in := range inputs {
		repo := in.Context.Repository.Name
		if seen[repo] == nil {
			seen[repo] = map[string]bool{}
		}
		seen[repo][in.Context.Component] = true
	}
	out := map[string]int{}
	for repo, cs := range seen {
		out[repo] = len(cs)
	}
	return out
}

// ensureSnapshots makes one Snapshot per repository of the session, owned by
// its Repository so that it outlives the session, with the Repository's
// deletionPolicy, listing the pods of the runs it replaced whose restic
// locks its agents may remove (AnnotationReplacedPods), expecting as many
// components as the plan writes to the repository, and recording the node
// of each component that lives on one (storagev1alpha1.AnnotationComponentNodes).
//
// A run whose Jobs were made (started) makes no new Snapshot: a repository
// unpaused since it started waits for the next run, since its Jobs are
// made once. The API server, not the cache, says such a Snapshot is
// missing. A pause keeps a repository from getting a new Snapshot, and
// takes no Snapshot the run made already from it (its Jobs write into the
// repository, or are about to, and report into that Snapshot): the pause
// holds from the next run on.
func (r *reconciler) ensureSnapshots(ctx context.Context, bs *corev1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration, started bool, counts map[string]int, nodes map[string]string, replaced map[string][]string) ([]*storagev1alpha1.Snapshot, error) {
	s := session(bc, bs.Spec.Session)
	if s == nil {
		return nil, fmt.Errorf("backupconfiguration %q has no session %q", bc.Name, bs.Spec.Session)
	}
	var out []*storagev1alpha1.Snapshot
	for _, ri := range s.Repositories {
		name := naming.SnapshotName(ri.Name, bs.Name)
		snap := &storagev1alpha1.Snapshot{}
		err := r.kube.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: name}, snap)
		if err == nil {
			if err := r.expectComponents(ctx, snap, counts[ri.Name]); err != nil {
				return nil, err
			}
			out = append(out, snap)
			continue
		}
		if !kerrors.IsNotFound(err) {
			return nil, fmt.Errorf("cannot get snapshot %q: %w", name, err)
		}
		// A started run makes no new Snapshot, nor does a paused
		// repository get one; a Snapshot this run made before either
		// (the cache may not hold it yet) stays the run's, so that every
		// Snapshot of the run gets its Jobs and none waits for a report
		// that never comes.
		if started || r.paused(ctx, bs.Namespace, ri.Name) {
			switch err := r.api.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: name}, snap); {
			case err == nil:
				out = append(out, snap)
				continue
			case kerrors.IsNotFound(err):
				continue
			default:
				return nil, fmt.Errorf("cannot get snapshot %q: %w", name, err)
			}
		}
		repo := &storagev1alpha1.Repository{}
		if err := r.kube.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: ri.Name}, repo); err != nil {
			return nil, fmt.Errorf("cannot get repository %q: %w", ri.Name, err)
		}
		kind := storagev1alpha1.SnapshotFullBackup
		if ptr.Deref(repo.Status.SnapshotCount, 0) > 0 {
			kind = storagev1alpha1.SnapshotIncrementalBackup
		}
		snap = &storagev1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bs.Namespace,
				Labels: map[string]string{storagev1alpha1.LabelRepository: ri.Name, corev1alpha1.LabelInvokerName: bc.Name, corev1alpha1.LabelSession: bs.Spec.Session}},
			Spec: storagev1alpha1.SnapshotSpec{
				SnapshotID: ulid.Make().String(), Type: kind, Repository: ri.Name,
				Session: bs.Spec.Session, BackupSession: bs.Name, Version: "v1",
				AppRef: repo.Spec.AppRef, DeletionPolicy: storagev1alpha1.SnapshotDeletionPolicy(repo),
			},
		}
		if len(nodes) > 0 {
			b, err := json.Marshal(nodes)
			if err != nil {
				return nil, fmt.Errorf("cannot encode the nodes of snapshot %q: %w", name, err)
			}
			snap.Annotations = map[string]string{storagev1alpha1.AnnotationComponentNodes: string(b)}
		}
		setPods(snap, storagev1alpha1.AnnotationReplacedPods, replaced[ri.Name])
		if err := controllerutil.SetControllerReference(repo, snap, r.kube.Scheme()); err != nil {
			return nil, fmt.Errorf("cannot own snapshot %q: %w", name, err)
		}
		if err := r.kube.Create(ctx, snap); err != nil && !kerrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("cannot create snapshot %q: %w", name, err)
		}
		if err := r.expectComponents(ctx, snap, counts[ri.Name]); err != nil {
			return nil, err
		}
		out = append(out, snap)
	}
	return out, nil
}

// expectComponents records on a new Snapshot how many components it will
// hold, before any Job runs, so that it succeeds only once all of them did.
func (r *reconciler) expectComponents(ctx context.Context, snap *storagev1alpha1.Snapshot, n int) error {
	if n == 0 || snap.Status.TotalComponents != 0 || len(snap.Status.Components) > 0 {
		return nil
	}
	orig := snap.DeepCopy()
	snap.Status.TotalComponents = int32(n)
	if err := r.kube.Status().Patch(ctx, snap, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("cannot record the components of snapshot %q: %w", snap.Name, err)
	}
	return nil
}

// plan works out the session's tasks: one per repository, task and
// component of the target.
func (r *reconciler) plan(ctx context.Context, bs *corev1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration) ([]render.Input, error) {
	in, err := r.planInputs(ctx, bs, bc)
	if err != nil {
		return nil, err
	}
	return plan.Backup(bc, bs.Spec.Session, in)
}

// ensureJobs renders the session's planned tasks for the repositories the
// run has a Snapshot in (snaps; ensureSnapshots decided the pauses) and
// creates the Jobs, owned by the session. The Jobs of a storage in another
// namespace mount the configuration's copy of its credential Secret, or its
// grant to a brokered storage, which the configuration's scheduler keeps
// (backupconfiguration/access.go).
func (r *reconciler) ensureJobs(ctx context.Context, bs *corev1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration, inputs []render.Input, snaps []*storagev1alpha1.Snapshot) error {
	inRun := map[string]bool{}
	for _, s := range snaps {
		inRun[s.Spec.Repository] = true
	}
	for _, input := range inputs {
		if !inRun[input.Context.Repository.Name] {
			continue
		}
		st := input.Context.Storage
		input.Context.Storage = st.From(bs.Namespace, naming.ConfigurationStorageSecret(bc.Name, st.Namespace, st.Name))
		res, err := r.renderer.Render(ctx, input)
		if err != nil {
			return fmt.Errorf("cannot render task %q: %w", input.Task, err)
		}
		jobs, err := res.Jobs()
		if err != nil {
			return err
		}
		labels := map[string]string{
			corev1alpha1.LabelBackupSession: bs.Name,
			corev1alpha1.LabelComponent:     input.Context.Component,
			storagev1alpha1.LabelRepository: input.Context.Repository.Name,
		}
		for _, j := range jobs {
			if j.Spec.Template.Spec.ServiceAccountName == "" {
				j.Spec.Template.Spec.ServiceAccountName = naming.ConfigurationServiceAccount(bc.Name)
			}
			if err := sessionjob.Ensure(ctx, r.kube, r.api, bs, j, labels); err != nil {
				return err
			}
		}
	}
	return nil
}

// paused says whether a repository takes no new backups for now.
func (r *reconciler) paused(ctx context.Context, ns, name string) bool {
	repo := &storagev1alpha1.Repository{}
	return r.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, repo) == nil && repo.Spec.Paused
}

// planInputs gathers what the plan reads: the addon catalog, the storages
// and the target workload.
func (r *reconciler) planInputs(ctx context.Context, bs *corev1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration) (plan.Inputs, error) {
	catalog, err := render.LoadCatalog(ctx, r.kube)
	if err != nil {
		return plan.Inputs{}, err
	}
	storages := map[string]*storagev1alpha1.BackupStorage{}
	for _, b := range bc.Spec.Backends {
		ns := b.Storage().Namespace
		if ns == "" {
			ns = bc.Namespace
		}
		st := &storagev1alpha1.BackupStorage{}
		if err := r.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: b.Storage().Name}, st); err != nil {
			return plan.Inputs{}, fmt.Errorf("cannot get backupstorage %s/%s: %w", ns, b.Storage().Name, err)
		}
		storages[ns+"/"+st.Name] = st
	}
	in := plan.Inputs{Catalog: catalog, Storages: storages, Image: r.image, SessionName: bs.Name}
	if t := bc.Spec.Target; t != nil {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: t.APIGroup, Version: "v1", Kind: t.Kind})
		ns := t.Namespace
		if ns == "" {
			ns = bc.Namespace
		}
		if err := r.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.Name}, u); err != nil {
			return plan.Inputs{}, fmt.Errorf("cannot get target %s %s/%s: %w", t.Kind, ns, t.Name, err)
		}
		in.Target = u
		switch t.Kind {
		case "DaemonSet":
			pods, err := plan.PodNodes(ctx, r.api, u)
			if err != nil {
				return plan.Inputs{}, err
			}
			in.Nodes = plan.Nodes(pods)
		case "StatefulSet", "Deployment":
			if in.PodNodes, err = plan.PodNodes(ctx, r.api, u); err != nil {
				return plan.Inputs{}, err
			}
		}
	}
	return in, nil
}

// watchExecution records the Snapshots' phases and makes sure none waits
// for a Job that failed, vanished, completed without reporting, or ran past
// the session's deadline.
func (r *reconciler) watchExecution(ctx context.Context, bs *corev1alpha1.BackupSession, snaps []*storagev1alpha1.Snapshot) (ctrl.Result, error) {
	now := r.clock.Now()
	if bs.Spec.BackupTimeout != nil && bs.Status.BackupDeadline == nil {
		bs.Status.BackupDeadline = ptr.To(metav1.NewTime(bs.CreationTimestamp.Add(bs.Spec.BackupTimeout.Duration)))
	}
	// A run that has Jobs has at least one: none in the cache is asked of
	// the API server before the run is told its Jobs are gone.
	jobs, err := sessionjob.List(ctx, r.kube, r.api, bs.Namespace, map[string]string{corev1alpha1.LabelBackupSession: bs.Name},
		func(jobs []batchv1.Job) bool { return len(jobs) > 0 })
	if err != nil {
		return ctrl.Result{}, err
	}
	problem := executionProblem(jobs, reportedIn(snaps), now)
	if problem == "" {
		problem = r.unstartable(ctx, jobs, now)
	}
	if d := bs.Status.BackupDeadline; problem == "" && d != nil && now.After(d.Time) {
		problem = fmt.Sprintf("the backup did not finish within its timeout of %s", bs.Spec.BackupTimeout.Duration)
	}
	if err := r.recordSnapshots(ctx, bs, snaps, problem); err != nil {
		return ctrl.Result{}, err
	}
	if problem != "" {
		// Only Jobs that still run are stopped. One that ended keeps its
		// pods, so the next run's agent sees that a pod killed mid-backup
		// has finished and removes the restic lock it left behind.
		for i := range jobs {
			if sessionjob.Ended(&jobs[i]) {
				continue
			}
			_ = r.kube.Delete(ctx, &jobs[i], client.PropagationPolicy(metav1.DeletePropagationBackground))
		}
	}
	return ctrl.Result{RequeueAfter: 15 * time.Second}, nil
}

// unstartable names the first Job still running whose pod cannot start
// (a Secret its environment names is missing, its image cannot be pulled):
// a kubelet would keep it Pending and the Job would never fail.
func (r *reconciler) unstartable(ctx context.Context, jobs []batchv1.Job, now time.Time) string {
	for i := range jobs {
		j := &jobs[i]
		if sessionjob.Ended(j) {
			continue
		}
		if why := sessionjob.Unstartable(sessionjob.NewestPod(ctx, r.kube, r.api, j), now, sessionjob.UnstartableGrace); why != "" {
			return fmt.Sprintf("backup job %q: %s", j.Name, why)
		}
	}
	return ""
}

// recordSnapshots records the Snapshots' phases in the session's status,
// first marking those not done incomplete when problem says the backup
// will not finish.
func (r *reconciler) recordSnapshots(ctx context.Context, bs *corev1alpha1.BackupSession, snaps []*storagev1alpha1.Snapshot, problem string) error {
	return r.recordSnapshotsFor(ctx, bs, snaps, storagev1alpha1.ReasonBackupExecutorFailed, problem)
}

// recordSnapshotsFor is recordSnapshots with the reason the Snapshots not
// done are marked incomplete for.
func (r *reconciler) recordSnapshotsFor(ctx context.Context, bs *corev1alpha1.BackupSession, snaps []*storagev1alpha1.Snapshot, reason xpv2.ConditionReason, problem string) error {
	bs.Status.Snapshots = nil
	for _, s := range snaps {
		if problem != "" && !snapshotDone(s) {
			if err := r.markIncomplete(ctx, s, reason, problem); err != nil {
				return err
			}
		}
		bs.Status.Snapshots = append(bs.Status.Snapshots, corev1alpha1.SnapshotStatus{
			Name: s.Name, Phase: s.Status.Phase, AppRef: s.Spec.AppRef, Repository: s.Spec.Repository,
		})
	}
	bs.Status.TotalSnapshots = ptr.To(int32(len(snaps)))
	return nil
}

// cannotStart handles a run whose Jobs cannot be planned or created: it
// says so in BackupExecutorEnsured and is retried. Once its Snapshots exist
// the run holds back the runs after it, so past the session's deadline
// (sessionrun.Deadline: its backupTimeout, else sessionrun.StartTimeout
// for a run that never made its Jobs) it fails instead, its Snapshots
// marked incomplete, and the next run proceeds.
func (r *reconciler) cannotStart(ctx context.Context, bs *corev1alpha1.BackupSession, started bool, err error) (ctrl.Result, error) {
	sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeBackupExecutorEnsured, false, corev1alpha1.ReasonBackupExecutorNotEnsured, err.Error())
	d := sessionrun.Deadline(bs.CreationTimestamp.Time, bs.Spec.BackupTimeout, started)
	if bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured).Status != corev1.ConditionTrue || d == nil || !r.clock.Now().After(*d) {
		return ctrl.Result{}, err
	}
	snaps, lerr := r.sessionSnapshots(ctx, bs)
	if lerr != nil {
		return ctrl.Result{}, lerr
	}
	r.log.Info("failing a backup whose jobs could not be created in time", "backupsession", client.ObjectKeyFromObject(bs), "error", err.Error())
	return ctrl.Result{}, r.recordSnapshots(ctx, bs, snaps, fmt.Sprintf("the backup jobs could not be created before the session's deadline: %v", err))
}

// sessionSnapshots are the Snapshots the session made, found by the
// cache's index rather than by copying every Snapshot of the namespace.
func (r *reconciler) sessionSnapshots(ctx context.Context, bs *corev1alpha1.BackupSession) ([]*storagev1alpha1.Snapshot, error) {
	list := &storagev1alpha1.SnapshotList{}
	if err := r.kube.List(ctx, list, client.InNamespace(bs.Namespace), client.MatchingFields{storagev1alpha1.SnapshotBackupSessionField: bs.Name}); err != nil {
		return nil, fmt.Errorf("cannot list snapshots: %w", err)
	}
	var snaps []*storagev1alpha1.Snapshot
	for i := range list.Items {
		if list.Items[i].Spec.BackupSession == bs.Name {
			snaps = append(snaps, &list.Items[i])
		}
	}
	return snaps, nil
}

func snapshotDone(s *storagev1alpha1.Snapshot) bool {
	return s.Status.Phase == storagev1alpha1.SnapshotSucceeded || s.Status.Phase == storagev1alpha1.SnapshotFailed
}

// reportedIn says whether a repository's Snapshot among snaps holds the
// final report of a component.
func reportedIn(snaps []*storagev1alpha1.Snapshot) func(repo, component string) bool {
	return func(repo, component string) bool {
		for _, s := range snaps {
			c, ok := s.Status.Components[component]
			if ok && s.Spec.Repository == repo && (c.Phase == storagev1alpha1.ComponentSucceeded || c.Phase == storagev1alpha1.ComponentFailed) {
				return true
			}
		}
		return false
	}
}

// executionProblem says what went wrong with a session's Jobs, or "". A
// Job that completed is a problem only when its component was not reported
// in time: its siblings may still be running.
func executionProblem(jobs []batchv1.Job, reported func(repo, component string) bool, now time.Time) string {
	if len(jobs) == 0 {
		return "the backup job is gone"
	}
	for _, j := range jobs {
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobFailed:
				return fmt.Sprintf("backup job %q failed: %s", j.Name, c.Message)
			case batchv1.JobComplete:
				if now.Sub(c.LastTransitionTime.Time) > completedGrace && !reported(j.Labels[storagev1alpha1.LabelRepository], j.Labels[corev1alpha1.LabelComponent]) {
					return fmt.Sprintf("backup job %q completed without reporting its component", j.Name)
				}
			}
		}
	}
	return ""
}

// markIncomplete records on a Snapshot that its backup will not finish; the
// Snapshot's controller then calls it Failed.
func (r *reconciler) markIncomplete(ctx context.Context, s *storagev1alpha1.Snapshot, reason xpv2.ConditionReason, msg string) error {
	sessionrun.SetCondition(r.clock, s, storagev1alpha1.TypeBackupIncomplete, true, reason, msg)
	s.Status.Phase = storagev1alpha1.SnapshotFailed
	if err := r.kube.Status().Update(ctx, s); err != nil {
		return fmt.Errorf("cannot mark snapshot %q incomplete: %w", s.Name, err)
	}
	return nil
}

// afterwards runs the steps of a session that has an outcome (RunAll: a
// failed retry does not hold back the history).
func (r *reconciler) afterwards(ctx context.Context, bs *corev1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration) (ctrl.Result, error) {
	return sessionrun.RunAll(ctx, &run{bs: bs, bc: bc}, r.finishedSteps())
}

// retry makes the session that retries a failed one, the configured delay
// after the failed run ended (internal/sessionrun holds the rule).
func (r *reconciler) retry(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	bs := rn.bs
	s := session(rn.bc, bs.Spec.Session)
	if !owesRetry(bs) || s == nil {
		return ctrl.Result{}, false, nil
	}
	var delay time.Duration
	if s.RetryConfig != nil {
		delay = s.RetryConfig.Delay.Duration
	}
	if bs.Status.NextRetry == nil {
		bs.Status.NextRetry = ptr.To(metav1.NewTime(sessionrun.RetryAt(bs.CreationTimestamp.Time, bs.Status.Duration, delay, r.clock.Now())))
	}
	if wait := bs.Status.NextRetry.Sub(r.clock.Now()); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, false, nil
	}
	retry, err := trigger.Session(rn.bc, bs.Spec.Session, r.clock.Now())
	if err != nil {
		return ctrl.Result{}, false, err
	}
	retry.Spec.RetryLeft = bs.Spec.RetryLeft - 1
	if err := r.kube.Create(ctx, retry); err != nil && !kerrors.IsAlreadyExists(err) {
		return ctrl.Result{}, false, fmt.Errorf("cannot create retry of backupsession %q: %w", bs.Name, err)
	}
	bs.Status.Retried = ptr.To(true)
	return ctrl.Result{}, false, nil
}

// history trims the invoker's finished sessions.
func (r *reconciler) history(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	return ctrl.Result{}, false, r.cleanHistory(ctx, rn.bs, session(rn.bc, rn.bs.Spec.Session))
}

// owesRetry says whether a failed session is still to be retried; a run
// a newer one replaced is not.
func owesRetry(bs *corev1alpha1.BackupSession) bool {
	return phase(bs) == corev1alpha1.BackupSessionFailed && bs.Spec.RetryLeft > 0 && !ptr.Deref(bs.Status.Retried, false) &&
		bs.GetCondition(corev1alpha1.TypeBackupReplaced).Status != corev1.ConditionTrue
}

// cleanHistory keeps the newest sessionHistoryLimit finished sessions of the
// same session and deletes the older ones; their Snapshots stay. Sessions
// that gave a result and Skipped ones are counted apart; bs itself and a
// failed session still owed a retry are never deleted.
func (r *reconciler) cleanHistory(ctx context.Context, bs *corev1alpha1.BackupSession, s *corev1alpha1.Session) error {
	var limit int32 = 1
	if s != nil {
		limit = s.SessionHistoryLimit
	}
	list := &corev1alpha1.BackupSessionList{}
	if err := r.kube.List(ctx, list, client.InNamespace(bs.Namespace)); err != nil {
		return fmt.Errorf("cannot list backupsessions: %w", err)
	}
	for _, o := range beyondHistory(bs, list.Items, int(limit)) {
		if err := r.kube.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeSessionHistoryCleaned, false, corev1alpha1.ReasonSessionHistoryCleanupFailed, err.Error())
			return fmt.Errorf("cannot delete old backupsession %q: %w", o.Name, err)
		}
	}
	sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeSessionHistoryCleaned, true, corev1alpha1.ReasonSessionHistoryCleaned, "")
	return nil
}

// beyondHistory are the finished sessions of bs's configuration and session
// that cleanHistory deletes.
func beyondHistory(bs *corev1alpha1.BackupSession, all []corev1alpha1.BackupSession, limit int) []*corev1alpha1.BackupSession {
	byName := map[string]*corev1alpha1.BackupSession{}
	var runs []sessionrun.Run
	for i := range all {
		o := &all[i]
		if o.Spec.Invoker.Name != bs.Spec.Invoker.Name || o.Spec.Session != bs.Spec.Session || !done(o.Status.Phase) || o.DeletionTimestamp != nil {
			continue
		}
		byName[o.Name] = o
		runs = append(runs, sessionrun.Run{Name: o.Name, Created: o.CreationTimestamp.Time,
			Skipped: o.Status.Phase == corev1alpha1.BackupSessionSkipped, Keep: o.Name == bs.Name || owesRetry(o)})
	}
	var out []*corev1alpha1.BackupSession
	for _, name := range sessionrun.BeyondHistory(runs, limit) {
		out = append(out, byName[name])
	}
	return out
}
