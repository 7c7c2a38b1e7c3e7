package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/sessionjob"
	"github.com/stashplane/stashplane/internal/version"
)

// passwordHolder is what a password change's hold says holds the
// Repository (plan.LabelHoldFor).
const passwordHolder = "password"

// holdSettle is how long a new hold stands before the Repository is
// checked again: a session that looked for a prune just before the hold
// was made has started its run by then, and is seen.
var holdSettle = 3 * time.Second

// passwordAgentCommand runs inside the password Job, with the prune Job's
// flags.
func passwordAgentCommand() *cobra.Command {
	var action, newPasswordFile string
	var cmd *cobra.Command
	cmd = agentSubcommand("password-agent", agent.KindPrune, "List, add or remove the restic keys of every restic repository of a Repository (runs inside password Jobs)",
		func(ctx context.Context, r *agent.Runner) error {
			return r.Password(ctx, action, newPasswordFile, cmd.OutOrStdout())
		})
	cmd.Flags().StringVar(&action, "action", agent.PasswordList, "list, add or remove")
	cmd.Flags().StringVar(&newPasswordFile, "new-password-file", "", "add: the file holding the new password")
	cmd.Hidden = true
	return cmd
}

// PasswordResult is what `stashplane password` prints.
type PasswordResult struct {
	Repository string `json:"repository"`
	Namespace  string `json:"namespace"`
	Action     string `json:"action"`
	Job        string `json:"job"`
	Succeeded  bool   `json:"succeeded"`
	// SecretUpdated says an add wrote the new password into the
	// Repository's encryption Secret.
	SecretUpdated bool                  `json:"secretUpdated,omitempty"`
	Message       string                `json:"message,omitempty"`
	Report        *agent.PasswordReport `json:"report,omitempty"`
}

type passwordFlags struct {
	namespace, output, image, passwordFile string
	timeout                                time.Duration
}

func passwordCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "password",
		Short: "List, add or remove the passwords (restic keys) of a Repository, keeping them in step with its encryption Secret",
		Long: "The password commands run a Job in the cluster, under the Repository's configuration's ServiceAccount with the " +
			"storage's credentials (this machine never reads them), in every restic repository of the Repository.\n\n" +
			"  list: each restic repository's keys, the one the Secret's password opens marked, and how many content manifests it opens.\n" +
			"  add: makes a new password the Repository's. While backups, restores, verifications and prunes of the Repository " +
			"wait, every restic repository gets a key for it, every content manifest is sealed again with it, and then the " +
			"encryption Secret is updated. The old password keeps opening the restic repositories until remove. If it fails half " +
			"way, the Repository stays held and the command says so; run it again to finish.\n" +
			"  remove: removes every key other than the one the Secret's password opens.",
	}
	cmd.AddCommand(passwordSubcommand(agent.PasswordList, "List the restic keys of every restic repository of a Repository"),
		passwordSubcommand(agent.PasswordAdd, "Make a new password the Repository's: a key in every restic repository, manifests sealed with it, then the Secret"),
		passwordSubcommand(agent.PasswordRemove, "Remove every restic key other than the one the Repository's Secret holds"))
	return cmd
}

func passwordSubcommand(action, short string) *cobra.Command {
	f := &passwordFlags{}
	cmd := &cobra.Command{
		Use:   action + " REPOSITORY",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			var newPassword string
			if f.passwordFile != "" {
				pw, err := readNewPassword(f.passwordFile, cmd.InOrStdin())
				if err != nil {
					return err
				}
				newPassword = pw
			}
			c, namespace, err := clientIn(f.namespace)
			if err != nil {
				return err
			}
			_, cs, err := clientset()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			p := &passwordRun{c: c, cs: cs, namespace: namespace, name: args[0], image: f.image, progress: cmd.ErrOrStderr()}
			res, err := p.run(ctx, action, newPassword)
			if err != nil {
				return err
			}
			if err := writePassword(cmd.OutOrStdout(), res, f.output); err != nil {
				return err
			}
			if !res.Succeeded {
				return fmt.Errorf("cannot %s the password of repository %q: %s", action, res.Repository, res.Message)
			}
			return nil
		},
	}
	namespaceFlag(cmd, &f.namespace, "repository")
	outputFlag(cmd, &f.output)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 15*time.Minute, "how long to wait for the password Job")
	cmd.Flags().StringVar(&f.image, "image", version.Image(), "the stashplane image the password Job runs")
	if action == agent.PasswordAdd {
		cmd.Flags().StringVar(&f.passwordFile, "password-file", "", "the file holding the new password (- for standard input); "+
			"leave it out to finish a change that stopped half way")
	}
	return cmd
}

// readNewPassword reads a new password from file ("-": in). Like restic,
// only the line end is dropped; a password with leading or trailing
// spaces is refused, as restic and the agent would read it differently.
func readNewPassword(file string, in io.Reader) (string, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(in, 4096))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return "", fmt.Errorf("cannot read the new password: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	switch {
	case pw == "":
		return "", errors.New("cannot use the new password: it is empty")
	case strings.TrimSpace(pw) != pw:
		return "", errors.New("cannot use the new password: it starts or ends with white space")
	case strings.ContainsAny(pw, "\r\n"):
		return "", errors.New("cannot use the new password: it has more than one line")
	}
	return pw, nil
}

// passwordRun is one `stashplane password` command.
type passwordRun struct {
	c         client.Client
	cs        kubernetes.Interface
	namespace string
	name      string
	image     string
	progress  io.Writer

	repo    *storagev1alpha1.Repository
	storage *storagev1alpha1.BackupStorage
}

func (p *passwordRun) run(ctx context.Context, action, newPassword string) (*PasswordResult, error) {
	p.repo = &storagev1alpha1.Repository{}
	if err := p.c.Get(ctx, client.ObjectKey{Namespace: p.namespace, Name: p.name}, p.repo); err != nil {
		return nil, fmt.Errorf("cannot get repository %s/%s: %w", p.namespace, p.name, err)
	}
	p.storage = &storagev1alpha1.BackupStorage{}
	if err := p.c.Get(ctx, p.repo.StorageKey(), p.storage); err != nil {
		return nil, fmt.Errorf("cannot get the backupstorage of repository %q: %w", p.name, err)
	}
	change, err := p.pendingChange(ctx)
	if err != nil {
		return nil, err
	}
	switch action {
	case agent.PasswordList:
		return p.job(ctx, action)
	case agent.PasswordRemove:
		if change != nil {
			return nil, fmt.Errorf("cannot remove passwords of repository %q: a password change is unfinished (secret %q); run stashplane password add %s -n %s to finish it first",
				p.name, change.Name, p.name, p.namespace)
		}
		if err := p.hold(ctx); err != nil {
			return nil, err
		}
		// A remove that stopped half way removed only keys the Secret's
		// password is not: nothing it leaves needs the hold.
		res, err := p.job(ctx, action)
		if rerr := p.release(ctx); err == nil && rerr != nil {
			return nil, rerr
		}
		return res, err
	}
	return p.add(ctx, change, newPassword)
}

// pendingChange is the Secret of a password change that has not finished,
// or nil.
func (p *passwordRun) pendingChange(ctx context.Context) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := p.c.Get(ctx, client.ObjectKey{Namespace: p.namespace, Name: naming.PasswordSecret(p.name)}, s)
	if kerrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot get secret %q: %w", naming.PasswordSecret(p.name), err)
	}
	return s, nil
}

// add makes newPassword the Repository's, or finishes the change the
// change Secret records.
func (p *passwordRun) add(ctx context.Context, change *corev1.Secret, newPassword string) (*PasswordResult, error) {
	enc := &corev1.Secret{}
	encName := p.repo.Spec.EncryptionSecret.Name
	if err := p.c.Get(ctx, client.ObjectKey{Namespace: p.namespace, Name: encName}, enc); err != nil {
		return nil, fmt.Errorf("cannot get the encryption secret %q of repository %q: %w", encName, p.name, err)
	}
	current := strings.TrimRight(string(enc.Data[storagev1alpha1.SecretKeyResticPassword]), "\r\n")
	switch {
	case change != nil && newPassword == "":
		newPassword = string(change.Data[plan.PasswordSecretNew])
		fmt.Fprintf(p.progress, "finishing the unfinished password change of repository %s/%s\n", p.namespace, p.name)
	case change != nil && newPassword != string(change.Data[plan.PasswordSecretNew]):
		return nil, fmt.Errorf("cannot change the password of repository %q: a change to another password is unfinished (secret %q); run stashplane password add %s -n %s without --password-file to finish it",
			p.name, change.Name, p.name, p.namespace)
	case change == nil && newPassword == "":
		return nil, errors.New("cannot change the password: give the new one with --password-file")
	case change == nil && newPassword == current:
		return nil, fmt.Errorf("cannot change the password of repository %q: its encryption secret %q already holds this one", p.name, encName)
	}
	if err := p.hold(ctx); err != nil {
		return nil, err
	}
	if change == nil {
		change = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: naming.PasswordSecret(p.name), Namespace: p.namespace},
			Data:       map[string][]byte{plan.PasswordSecretNew: []byte(newPassword), plan.PasswordSecretPrevious: []byte(current)},
		}
		if err := controllerutil.SetOwnerReference(p.repo, change, p.c.Scheme()); err != nil {
			return nil, fmt.Errorf("cannot own secret %q: %w", change.Name, err)
		}
		if err := p.c.Create(ctx, change); err != nil {
			_ = p.release(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("cannot create secret %q: %w", change.Name, err)
		}
	}
	res, err := p.job(ctx, agent.PasswordAdd)
	if err != nil || !res.Succeeded {
		if res != nil {
			res.Message += fmt.Sprintf("; the change is unfinished: backups, restores, verifications and prunes of the repository wait while job %q holds it, "+
				"and its Secret still holds the old password; run stashplane password add %s -n %s to finish it", naming.PruneJob(p.name), p.name, p.namespace)
		}
		return res, err
	}
	if current != newPassword {
		if enc.Data == nil {
			enc.Data = map[string][]byte{}
		}
		enc.Data[storagev1alpha1.SecretKeyResticPassword] = []byte(newPassword)
		if err := p.c.Update(ctx, enc); err != nil {
			return nil, fmt.Errorf("cannot write the new password into the encryption secret %q (every restic repository opens with it; run the command again to finish): %w", encName, err)
		}
		res.SecretUpdated = true
	}
	if err := p.c.Delete(ctx, change); client.IgnoreNotFound(err) != nil {
		return nil, fmt.Errorf("cannot delete secret %q: %w", change.Name, err)
	}
	return res, p.release(ctx)
}

// hold puts a suspended Job in the Repository's prune Job's place once
// nothing uses the Repository, so that its sessions and prunes wait, and
// checks again once the hold has settled. A hold of an unfinished change
// is kept.
func (p *passwordRun) hold(ctx context.Context) error {
	slot := &batchv1.Job{}
	err := p.c.Get(ctx, client.ObjectKey{Namespace: p.namespace, Name: naming.PruneJob(p.name)}, slot)
	if err == nil && slot.Labels[plan.LabelHoldFor] == passwordHolder {
		return nil
	}
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cannot get job %q: %w", naming.PruneJob(p.name), err)
	}
	busy, err := plan.RepositoryBusy(ctx, p.c, p.repo)
	if err != nil {
		return err
	}
	if busy != "" {
		return fmt.Errorf("cannot change the passwords of repository %q now: %s; run the command again once it ended", p.name, busy)
	}
	job, err := plan.HoldJob(p.repo, p.storage, p.image, passwordHolder)
	if err != nil {
		return err
	}
	if err := removeFinishedJob(ctx, p.c, job); err != nil {
		return err
	}
	if err := controllerutil.SetControllerReference(p.repo, job, p.c.Scheme()); err != nil {
		return fmt.Errorf("cannot own job %q: %w", job.Name, err)
	}
	if err := p.c.Create(ctx, job); err != nil {
		return fmt.Errorf("cannot create job %q to hold repository %q: %w", job.Name, p.name, err)
	}
	fmt.Fprintf(p.progress, "holding repository %s/%s (job %s): its backups, restores, verifications and prunes wait\n", p.namespace, p.name, job.Name)
	select {
	case <-ctx.Done():
	case <-time.After(holdSettle):
	}
	busy, err = plan.RepositoryInUse(ctx, p.c, p.repo)
	if err == nil && busy != "" {
		err = fmt.Errorf("cannot change the passwords of repository %q now: %s; run the command again once it ended", p.name, busy)
	}
	if err != nil {
		_ = p.release(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

// release deletes the hold.
func (p *passwordRun) release(ctx context.Context) error {
	job := &batchv1.Job{}
	err := p.c.Get(ctx, client.ObjectKey{Namespace: p.namespace, Name: naming.PruneJob(p.name)}, job)
	if kerrors.IsNotFound(err) || (err == nil && job.Labels[plan.LabelHoldFor] != passwordHolder) {
		return nil
	}
	if err == nil {
		err = p.c.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
	}
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cannot delete job %q, which holds repository %q: %w", naming.PruneJob(p.name), p.name, err)
	}
	fmt.Fprintf(p.progress, "released repository %s/%s\n", p.namespace, p.name)
	return nil
}

// job runs the password Job of action and reads its report.
func (p *passwordRun) job(ctx context.Context, action string) (*PasswordResult, error) {
	job, err := plan.PasswordJob(p.repo, p.storage, p.image, action)
	if err != nil {
		return nil, err
	}
	if err := removeFinishedJob(ctx, p.c, job); err != nil {
		return nil, err
	}
	fmt.Fprintf(p.progress, "password job %s/%s started; waiting for it\n", job.Namespace, job.Name)
	res := &PasswordResult{Repository: p.name, Namespace: p.namespace, Action: action, Job: job.Name}
	if res.Succeeded, res.Message, err = runRepositoryJob(ctx, p.c, p.repo, job, "password", ""); err != nil {
		return nil, err
	}
	res.Report, err = p.report(ctx, job)
	switch {
	case err != nil && res.Succeeded:
		return nil, err
	case res.Report != nil && res.Report.Error != "":
		res.Message = res.Report.Error + "; " + res.Message
	}
	return res, nil
}

// report reads the report the password Job's agent printed.
func (p *passwordRun) report(ctx context.Context, job *batchv1.Job) (*agent.PasswordReport, error) {
	pod := sessionjob.NewestPod(ctx, p.c, p.c, job)
	if pod == nil {
		return nil, fmt.Errorf("cannot read the report of password job %q: it has no pod", job.Name)
	}
	log, err := sessionjob.PodLogs{CS: p.cs}.Tail(ctx, job.Namespace, pod.Name, "password", 200)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if b, ok := strings.CutPrefix(lines[i], agent.PasswordReportPrefix); ok {
			rep := &agent.PasswordReport{}
			if err := json.Unmarshal([]byte(b), rep); err != nil {
				return nil, fmt.Errorf("cannot read the report of password job %q: %w", job.Name, err)
			}
			return rep, nil
		}
	}
	return nil, fmt.Errorf("cannot read the report of password job %q: its log has none", job.Name)
}

func writePassword(w io.Writer, res *PasswordResult, output string) error {
	if done, err := writeData(w, res, output); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "RESTIC REPOSITORY\tKEY\tCURRENT\tUSER\tHOST\tCREATED\tTHIS RUN")
	if res.Report != nil {
		for _, r := range res.Report.Repositories {
			for _, k := range r.Keys {
				did := ""
				if r.Added && k.Current {
					did = "added"
				}
				fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\t%s\n", r.Path, shortID(k.ID), k.Current, k.UserName, k.HostName, k.Created, did)
			}
			for _, id := range r.Removed {
				fmt.Fprintf(tw, "%s\t%s\t\t\t\t\tremoved\n", r.Path, shortID(id))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write the password table: %w", err)
	}
	if m := res.Report; m != nil {
		fmt.Fprintf(w, "content manifests: %d, %d open with the repository's password", m.Manifests.Total, m.Manifests.Current)
		if m.Manifests.Resealed > 0 {
			fmt.Fprintf(w, " (%d sealed again with it)", m.Manifests.Resealed)
		}
		fmt.Fprintln(w)
		if len(m.Manifests.Unreadable) > 0 {
			fmt.Fprintf(w, "not open with it: %s (verifications of these fail with ManifestInvalid; back them up again)\n", strings.Join(m.Manifests.Unreadable, ", "))
		}
	}
	if res.SecretUpdated {
		fmt.Fprintln(w, "the encryption secret now holds the new password")
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
