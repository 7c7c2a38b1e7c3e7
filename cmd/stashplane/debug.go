package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

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
	Namespace string      `json:"namespace"`
	Session   string      `json:"session"`
	Chain     []DebugLink `json:"chain"`
}

// logTail reads the last lines of a container's log.
type logTail func(ctx context.Context, namespace, pod, container string, lines int64) (string, error)

func debugCommand() *cobra.Command {
	var namespace, output string
	cmd := &cobra.Command{
		Use:   "debug SESSION",
		Short: "Explain a BackupSession: its configuration, the session, its Snapshots, Jobs, pods and their last log lines",
		Long: "Debug follows the chain a backup runs through — the BackupConfiguration, the BackupSession, its Snapshots " +
			"and their components, the session's Jobs, their pods' containers and the last lines each printed — and prints " +
			"each link's phase and conditions, so the link that failed and its reason are in one place. It only reads.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			cfg, err := config.GetConfig()
			if err != nil {
				return fmt.Errorf("cannot load cluster configuration: %w", err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("cannot make client: %w", err)
			}
			r, err := debugSession(cmd.Context(), c, sessionjob.PodLogs{CS: cs}.Tail, namespace, args[0])
			if err != nil {
				return err
			}
			return writeDebug(cmd.OutOrStdout(), r, output)
		},
	}
	namespaceFlag(cmd, &namespace, "BackupSession")
	outputFlag(cmd, &output)
	return cmd
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
		names := make([]string, 0, len(snap.Status.Components))
		for n := range snap.Status.Components {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			comp := snap.Status.Components[n]
			d := fmt.Sprintf("component %s: %s", n, orNone(string(comp.Phase)))
			if comp.Error != "" {
				d += ": " + comp.Error
			}
			link.Details = append(link.Details, d)
		}
		if len(names) < int(snap.Status.TotalComponents) {
			link.Details = append(link.Details, fmt.Sprintf("%d of %d components reported", len(names), snap.Status.TotalComponents))
		}
		r.Chain = append(r.Chain, link)
	}

	jobs := &batchv1.JobList{}
	if err := c.List(ctx, jobs, client.InNamespace(namespace), client.MatchingLabels{corev1alpha1.LabelBackupSession: name}); err != nil {
		r.Chain = append(r.Chain, DebugLink{Kind: "Job", Of: sessionRef, Details: []string{fmt.Sprintf("cannot list them: %v", err)}})
		return r, nil
	}
	sort.Slice(jobs.Items, func(i, j int) bool { return jobs.Items[i].Name < jobs.Items[j].Name })
	for _, j := range jobs.Items {
		r.Chain = append(r.Chain, jobLink(&j, sessionRef))
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels{batchv1.JobNameLabel: j.Name}); err != nil {
			r.Chain = append(r.Chain, DebugLink{Kind: "Pod", Of: "Job/" + j.Name, Details: []string{fmt.Sprintf("cannot list them: %v", err)}})
			continue
		}
		sort.Slice(pods.Items, func(a, b int) bool { return pods.Items[a].Name < pods.Items[b].Name })
		for _, p := range pods.Items {
			r.Chain = append(r.Chain, podLink(ctx, logs, &p, "Job/"+j.Name))
		}
	}
	return r, nil
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
	for _, l := range r.Chain {
		indent := ""
		switch l.Kind {
		case "BackupSession":
			indent = "  "
		case "Snapshot", "Job":
			indent = "    "
		case "Pod":
			indent = "      "
		}
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
