package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/sessionjob"
)

// debugLogLines is how many of each container's last log lines debug
// prints.
const debugLogLines = 10

// DebugLink is one object of the chain from a configuration to the pods
// of a session's Jobs.
type DebugLink struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Phase string `json:"phase,omitempty"`
	// Of names the link this one belongs to, as Kind/name.
	Of string `json:"of,omitempty"`
	// Details are its conditions, components, container states, in the
	// order they were read.
	Details []string `json:"details,omitempty"`
	// Log holds the last lines each container of a pod printed.
	Log []string `json:"log,omitempty"`
}

// DebugReport is what `stashplane debug` prints.
type DebugReport struct {
	// Kind is the session's kind; empty for a BackupSession.
	Kind      string      `json:"kind,omitempty"`
	Namespace string      `json:"namespace"`
	Session   string      `json:"session"`
	Chain     []DebugLink `json:"chain"`
}

// logTail reads the last lines of a container's log.
type logTail func(ctx context.Context, namespace, pod, container string, lines int64) (string, error)

func debugCommand() *cobra.Command {
	var namespace, output string
	cmd := &cobra.Command{
		Use:   "debug [KIND/]SESSION",
		Short: "Explain a session: a backup, restore or verification, down to its Jobs' pods and their last log lines",
		Long: "Debug follows the chain a session runs through and prints each link's phase and conditions, so the link " +
			"that failed and its reason are in one place. It only reads.\n\n" +
			"  backupsession/NAME (or NAME): the BackupConfiguration, the BackupSession, its Snapshots and their components, its Jobs and pods.\n" +
			"  restoresession/NAME: the RestoreSession and its components, the Repository and Snapshot it restores, its Jobs and pods.\n" +
			"  backupverificationsession/NAME: the BackupVerifier, the session and its verdict, the RestoreSession it made (as above) and the verifier's Job.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			kind, name, err := debugTarget(args[0])
			if err != nil {
				return err
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			_, cs, err := clientset()
			if err != nil {
				return err
			}
			logs := sessionjob.PodLogs{CS: cs}.Tail
			var r *DebugReport
			switch kind {
			case "RestoreSession":
				r, err = debugRestore(cmd.Context(), c, logs, namespace, name)
			case "BackupVerificationSession":
				r, err = debugVerification(cmd.Context(), c, logs, namespace, name)
			default:
				r, err = debugSession(cmd.Context(), c, logs, namespace, name)
			}
			if err != nil {
				return err
			}
			return writeDebug(cmd.OutOrStdout(), r, output)
		},
	}
	namespaceFlag(cmd, &namespace, "session")
	outputFlag(cmd, &output)
	return cmd
}

// debugKinds are the session kinds debug explains, by the names kubectl
// would accept for them.
var debugKinds = map[string]string{
	"backupsession": "BackupSession", "backupsessions": "BackupSession",
	"restoresession": "RestoreSession", "restoresessions": "RestoreSession",
	"backupverificationsession": "BackupVerificationSession", "backupverificationsessions": "BackupVerificationSession",
}

// debugTarget splits debug's argument, KIND/NAME or NAME (a BackupSession),
// as kubectl reads TYPE/NAME.
func debugTarget(arg string) (kind, name string, err error) {
	k, n, found := strings.Cut(arg, "/")
	if !found {
		return "BackupSession", arg, nil
	}
	kind, ok := debugKinds[strings.ToLower(strings.SplitN(k, ".", 2)[0])]
	if !ok || n == "" {
		return "", "", fmt.Errorf("cannot debug %q: give NAME (a BackupSession), backupsession/NAME, restoresession/NAME or backupverificationsession/NAME", arg)
	}
	return kind, n, nil
}

// debugSession reads the chain of the BackupSession name. Only a missing
// session is an error: a link that cannot be read is reported in the
// chain, since what is missing may be the explanation.
func debugSession(ctx context.Context, c client.Client, logs logTail, namespace, name string) (*DebugReport, error) {
	bs := &corev1alpha1.BackupSession{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, bs); err != nil {
		return nil, fmt.Errorf("cannot get backupsession %s/%s: %w", namespace, name, err)
	}
	r := &DebugReport{Namespace: namespace, Session: name}
	sessionRef := "BackupSession/" + name

	bc := &corev1alpha1.BackupConfiguration{}
	cfgLink := DebugLink{Kind: "BackupConfiguration", Name: bs.Spec.Invoker.Name}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: bs.Spec.Invoker.Name}, bc); err != nil {
		cfgLink.Details = []string{fmt.Sprintf("cannot get it: %v", err)}
	} else {
		cfgLink.Phase = string(bc.Status.Phase)
		if bc.Spec.Paused {
			cfgLink.Details = append(cfgLink.Details, "paused (spec.paused): every session is Skipped")
		}
		cfgLink.Details = append(cfgLink.Details, conditions(bc.Status.Conditions)...)
	}
	r.Chain = append(r.Chain, cfgLink)

	sLink := DebugLink{Kind: "BackupSession", Name: name, Phase: string(bs.Status.Phase), Of: "BackupConfiguration/" + bs.Spec.Invoker.Name,
		Details: conditions(bs.Status.Conditions)}
	for _, h := range append(append([]corev1alpha1.HookExecutionStatus{}, bs.Status.Hooks.PreHooks...), bs.Status.Hooks.PostHooks...) {
		sLink.Details = append(sLink.Details, hookDetail(h))
	}
	r.Chain = append(r.Chain, sLink)

	for _, s := range bs.Status.Snapshots {
		snap := &storagev1alpha1.Snapshot{}
		link := DebugLink{Kind: "Snapshot", Name: s.Name, Of: sessionRef}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: s.Name}, snap); err != nil {
			link.Details = []string{fmt.Sprintf("cannot get it: %v", err)}
			r.Chain = append(r.Chain, link)
			continue
		}
		link.Phase = string(snap.Status.Phase)
		link.Details = conditions(snap.Status.Conditions)
		link.Details = append(link.Details, componentDetails(snap.Status.Components, func(c storagev1alpha1.Component) (string, string) { return string(c.Phase), c.Error })...)
		if n := len(snap.Status.Components); n < int(snap.Status.TotalComponents) {
			link.Details = append(link.Details, fmt.Sprintf("%d of %d components reported", n, snap.Status.TotalComponents))
		}
		r.Chain = append(r.Chain, link)
	}

	r.Chain = append(r.Chain, jobChain(ctx, c, logs, namespace, client.MatchingLabels{corev1alpha1.LabelBackupSession: name}, sessionRef)...)
	return r, nil
}

// jobChain links the Jobs of namespace that carry labels, and each Job's
// pods with their last log lines, to the link of.
func jobChain(ctx context.Context, c client.Client, logs logTail, namespace string, labels client.MatchingLabels, of string) []DebugLink {
	jobs := &batchv1.JobList{}
	if err := c.List(ctx, jobs, client.InNamespace(namespace), labels); err != nil {
		return []DebugLink{{Kind: "Job", Of: of, Details: []string{fmt.Sprintf("cannot list them: %v", err)}}}
	}
	sort.Slice(jobs.Items, func(i, j int) bool { return jobs.Items[i].Name < jobs.Items[j].Name })
	var out []DebugLink
	for _, j := range jobs.Items {
		out = append(out, jobLink(&j, of))
		out = append(out, podChain(ctx, c, logs, namespace, j.Name)...)
	}
	return out
}

// podChain links the pods of the Job name, with their last log lines.
func podChain(ctx context.Context, c client.Client, logs logTail, namespace, job string) []DebugLink {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels{batchv1.JobNameLabel: job}); err != nil {
		return []DebugLink{{Kind: "Pod", Of: "Job/" + job, Details: []string{fmt.Sprintf("cannot list them: %v", err)}}}
	}
	sort.Slice(pods.Items, func(a, b int) bool { return pods.Items[a].Name < pods.Items[b].Name })
	var out []DebugLink
	for _, p := range pods.Items {
		out = append(out, podLink(ctx, logs, &p, "Job/"+job))
	}
	return out
}

// debugRestore reads the chain of the RestoreSession name: the session
// with its components and hooks, the Repository and Snapshot it restores
// from, its Jobs and their pods. Only a missing session is an error.
func debugRestore(ctx context.Context, c client.Client, logs logTail, namespace, name string) (*DebugReport, error) {
	rs := &corev1alpha1.RestoreSession{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, rs); err != nil {
		return nil, fmt.Errorf("cannot get restoresession %s/%s: %w", namespace, name, err)
	}
	r := &DebugReport{Namespace: namespace, Session: name, Kind: "RestoreSession"}
	r.Chain = restoreChain(ctx, c, logs, rs, "")
	return r, nil
}

// restoreChain links a RestoreSession (to of, when it is part of a
// verification), its source and its Jobs.
func restoreChain(ctx context.Context, c client.Client, logs logTail, rs *corev1alpha1.RestoreSession, of string) []DebugLink {
	ref := "RestoreSession/" + rs.Name
	link := DebugLink{Kind: "RestoreSession", Name: rs.Name, Phase: string(rs.Status.Phase), Of: of, Details: conditions(rs.Status.Conditions)}
	link.Details = append(link.Details, componentDetails(rs.Status.Components, func(c corev1alpha1.ComponentRestoreStatus) (string, string) { return string(c.Phase), c.Error })...)
	for _, h := range append(append([]corev1alpha1.HookExecutionStatus{}, rs.Status.Hooks.PreHooks...), rs.Status.Hooks.PostHooks...) {
		link.Details = append(link.Details, hookDetail(h))
	}
	out := []DebugLink{link}

	from := rs.Spec.DataSource.Namespace
	if from == "" {
		from = rs.Namespace
	}
	repo := &storagev1alpha1.Repository{}
	rlink := DebugLink{Kind: "Repository", Name: rs.Spec.DataSource.Repository, Of: ref}
	if from != rs.Namespace {
		rlink.Details = append(rlink.Details, "in namespace "+from)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: from, Name: rs.Spec.DataSource.Repository}, repo); err != nil {
		rlink.Details = append(rlink.Details, fmt.Sprintf("cannot get it: %v", err))
	} else {
		rlink.Phase = string(repo.Status.Phase)
		rlink.Details = append(rlink.Details, conditions(repo.Status.Conditions)...)
	}
	out = append(out, rlink)
	if s := rs.Spec.DataSource.Snapshot; s != "" {
		slink := DebugLink{Kind: "Snapshot", Name: s, Of: ref}
		snap := &storagev1alpha1.Snapshot{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: from, Name: s}, snap); err != nil {
			slink.Details = []string{fmt.Sprintf("cannot get it: %v", err)}
		} else {
			slink.Phase = string(snap.Status.Phase)
			if v := snap.Status.VerificationStatus; v != "" {
				slink.Details = append(slink.Details, "verification: "+string(v))
			}
		}
		out = append(out, slink)
	}
	return append(out, jobChain(ctx, c, logs, rs.Namespace, client.MatchingLabels{corev1alpha1.LabelRestoreSession: rs.Name}, ref)...)
}

// debugVerification reads the chain of the BackupVerificationSession name:
// its BackupVerifier, the session with its verdict, the RestoreSession it
// made (with that chain) and its verifier Job. Only a missing session is
// an error.
func debugVerification(ctx context.Context, c client.Client, logs logTail, namespace, name string) (*DebugReport, error) {
	s := &corev1alpha1.BackupVerificationSession{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		return nil, fmt.Errorf("cannot get backupverificationsession %s/%s: %w", namespace, name, err)
	}
	r := &DebugReport{Namespace: namespace, Session: name, Kind: "BackupVerificationSession"}
	ref := "BackupVerificationSession/" + name
	vlink := DebugLink{Kind: "BackupVerifier", Name: s.Spec.Invoker.Name}
	v := &corev1alpha1.BackupVerifier{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: s.Spec.Invoker.Name}, v); err != nil {
		vlink.Details = []string{fmt.Sprintf("cannot get it: %v", err)}
	} else {
		vlink.Details = []string{"type " + orNone(string(v.Spec.Type))}
		if v.Spec.Function != "" {
			vlink.Details = append(vlink.Details, "function "+v.Spec.Function)
		}
	}
	r.Chain = append(r.Chain, vlink)
	slink := DebugLink{Kind: "BackupVerificationSession", Name: name, Phase: string(s.Status.Phase), Of: "BackupVerifier/" + s.Spec.Invoker.Name,
		Details: append([]string{"snapshot " + s.Spec.Snapshot}, conditions(s.Status.Conditions)...)}
	if s.Status.VerifierResult != "" {
		slink.Details = append(slink.Details, "verifier: "+s.Status.VerifierResult)
	}
	for _, d := range s.Status.Differences {
		slink.Details = append(slink.Details, fmt.Sprintf("difference: %s %s", d.Path, d.Kind))
	}
	r.Chain = append(r.Chain, slink)
	if name := s.Status.RestoreSession; name != "" {
		ns := s.Status.RestoreSessionNamespace
		if ns == "" {
			ns = namespace
		}
		rs := &corev1alpha1.RestoreSession{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rs); err != nil {
			r.Chain = append(r.Chain, DebugLink{Kind: "RestoreSession", Name: name, Of: ref, Details: []string{fmt.Sprintf("cannot get it: %v", err)}})
		} else {
			r.Chain = append(r.Chain, restoreChain(ctx, c, logs, rs, ref)...)
		}
	}
	if j := s.Status.VerifierJob; j != "" {
		job := &batchv1.Job{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: j}, job); err != nil {
			r.Chain = append(r.Chain, DebugLink{Kind: "Job", Name: j, Of: ref, Details: []string{fmt.Sprintf("cannot get it: %v", err)}})
		} else {
			r.Chain = append(r.Chain, jobLink(job, ref))
			r.Chain = append(r.Chain, podChain(ctx, c, logs, namespace, j)...)
		}
	}
	return r, nil
}

// componentDetails are a status's components, by name, as
// "component NAME: Phase: error".
func componentDetails[C any](components map[string]C, of func(C) (phase, err string)) []string {
	var out []string
	for _, n := range slices.Sorted(maps.Keys(components)) {
		phase, err := of(components[n])
		d := fmt.Sprintf("component %s: %s", n, orNone(phase))
		if err != "" {
			d += ": " + err
		}
		out = append(out, d)
	}
	return out
}

// conditions are a status's conditions as "Type=Status Reason: message".
func conditions(cs []xpv2.Condition) []string {
	var out []string
	for _, c := range cs {
		d := fmt.Sprintf("%s=%s %s", c.Type, c.Status, c.Reason)
		if c.Message != "" {
			d += ": " + c.Message
		}
		out = append(out, d)
	}
	return out
}

func hookDetail(h corev1alpha1.HookExecutionStatus) string {
	d := fmt.Sprintf("hook %s: %s", h.Name, orNone(string(h.Phase)))
	if h.Reason != "" {
		d += " " + h.Reason
	}
	if h.Output != "" {
		d += ": " + h.Output
	}
	return d
}

func jobLink(j *batchv1.Job, of string) DebugLink {
	link := DebugLink{Kind: "Job", Name: j.Name, Of: of, Phase: "Running"}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			link.Phase = "Complete"
		case batchv1.JobFailed:
			link.Phase = "Failed"
		}
		d := fmt.Sprintf("%s %s", c.Type, c.Reason)
		if c.Message != "" {
			d += ": " + c.Message
		}
		link.Details = append(link.Details, d)
	}
	if comp := j.Labels[corev1alpha1.LabelComponent]; comp != "" {
		link.Details = append([]string{"repository " + j.Labels[storagev1alpha1.LabelRepository] + ", component " + comp}, link.Details...)
	}
	return link
}

func podLink(ctx context.Context, logs logTail, p *corev1.Pod, of string) DebugLink {
	link := DebugLink{Kind: "Pod", Name: p.Name, Of: of, Phase: string(p.Status.Phase)}
	if p.Status.Reason != "" || p.Status.Message != "" {
		link.Details = append(link.Details, strings.TrimSpace(p.Status.Reason+" "+p.Status.Message))
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			link.Details = append(link.Details, fmt.Sprintf("not scheduled: %s %s", c.Reason, c.Message))
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		link.Details = append(link.Details, "container "+cs.Name+": "+containerState(cs.State))
	}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		out, err := logs(ctx, p.Namespace, p.Name, c.Name, debugLogLines)
		if err != nil {
			link.Log = append(link.Log, fmt.Sprintf("[%s] cannot read its log: %v", c.Name, err))
			continue
		}
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			if l != "" {
				link.Log = append(link.Log, "["+c.Name+"] "+l)
			}
		}
	}
	return link
}

func containerState(s corev1.ContainerState) string {
	switch {
	case s.Terminated != nil:
		t := s.Terminated
		d := fmt.Sprintf("terminated, exit code %d", t.ExitCode)
		if t.Reason != "" {
			d += " (" + t.Reason + ")"
		}
		if t.Message != "" {
			d += ": " + strings.TrimSpace(t.Message)
		}
		return d
	case s.Waiting != nil:
		return strings.TrimSpace("waiting: " + s.Waiting.Reason + " " + s.Waiting.Message)
	case s.Running != nil:
		return "running"
	}
	return "not started"
}

func writeDebug(w io.Writer, r *DebugReport, output string) error {
	if done, err := writeData(w, r, output); done {
		return err
	}
	var b strings.Builder
	// A link is indented one step below the link it belongs to.
	depth := map[string]int{}
	for _, l := range r.Chain {
		d := 0
		if p, ok := depth[l.Of]; ok {
			d = p + 1
		}
		depth[l.Kind+"/"+l.Name] = d
		indent := strings.Repeat("  ", d)
		fmt.Fprintf(&b, "%s%s %s: %s\n", indent, l.Kind, orNone(l.Name), orNone(l.Phase))
		for _, d := range l.Details {
			fmt.Fprintf(&b, "%s  %s\n", indent, d)
		}
		if len(l.Log) > 0 {
			fmt.Fprintf(&b, "%s  last log lines:\n", indent)
			for _, line := range l.Log {
				fmt.Fprintf(&b, "%s    %s\n", indent, line)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
