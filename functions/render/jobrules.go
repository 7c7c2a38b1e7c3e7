package render

import (
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stashplane/stashplane/internal/agentapi"
)

// checkJob holds a rendered Job, with the runtime settings applied, to the
// rules every Job Stashplane creates keeps, whatever Function rendered it:
// it runs as the account the run composed or the user named (chosen is
// the account the template itself named, which must be none), in no host
// namespace, with no privileged container, mounts host paths only where
// the storage or the target's own volumes are, and (for the agent's
// tasks) passes no environment that redirects the agent or restic. The
// e2e and fuzz tests render every built-in addon through it; here it
// guards the cluster against a Function a platform team wrote.
func checkJob(job *batchv1.Job, chosen string, c Context) error {
	var problems []string
	s := job.Spec.Template.Spec
	if chosen != "" && chosen != c.Runtime.Pod.ServiceAccountName {
		problems = append(problems, fmt.Sprintf("the template names serviceAccountName %q: a Job runs as the account its run composed, or the one runtimeSettings name", chosen))
	}
	if s.HostNetwork || s.HostPID || s.HostIPC {
		problems = append(problems, "the host's network, PID or IPC namespace is not for a backup Job")
	}
	allowed := map[string]bool{}
	for _, v := range append(slices.Clone(c.Storage.Volumes), c.Target.Volumes...) {
		if v.HostPath != nil {
			allowed[v.HostPath.Path] = true
		}
	}
	for _, v := range s.Volumes {
		if v.HostPath != nil && !allowed[v.HostPath.Path] {
			problems = append(problems, fmt.Sprintf("volume %q mounts host path %q, which is neither the storage's nor the target's", v.Name, v.HostPath.Path))
		}
	}
	containers := append(slices.Clone(s.InitContainers), s.Containers...)
	for _, ctr := range containers {
		if sc := ctr.SecurityContext; sc != nil {
			if sc.Privileged != nil && *sc.Privileged {
				problems = append(problems, fmt.Sprintf("container %q is privileged", ctr.Name))
			}
			if sc.Capabilities != nil {
				for _, cp := range sc.Capabilities.Add {
					if cp == "ALL" || cp == "SYS_ADMIN" {
						problems = append(problems, fmt.Sprintf("container %q adds capability %s", ctr.Name, cp))
					}
				}
			}
		}
		if c.Task.Kind == TaskHook {
			continue
		}
		for _, e := range ctr.Env {
			if why := agentEnvRefused(e); why != "" {
				problems = append(problems, fmt.Sprintf("container %q: %s", ctr.Name, why))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("cannot render Job %q: it breaks the rules of a Stashplane Job: %s", job.Name, strings.Join(problems, "; "))
	}
	return nil
}

// agentEnvRefused says why an environment variable may not reach the
// agent, or "".
func agentEnvRefused(e corev1.EnvVar) string {
	up := strings.ToUpper(e.Name)
	switch {
	case strings.HasPrefix(e.Name, "RESTIC_") && !slices.Contains(agentapi.ResticTuningEnv, e.Name):
		return fmt.Sprintf("%s is not one of the RESTIC_* variables the agent passes on (%s)", e.Name, strings.Join(agentapi.ResticTuningEnv, ", "))
	case slices.Contains(agentapi.RedirectingEnv, up), slices.ContainsFunc(agentapi.RedirectingEnvPrefixes, func(p string) bool { return strings.HasPrefix(up, p) }):
		return fmt.Sprintf("%s would redirect the agent", e.Name)
	}
	return ""
}
