package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"gocloud.dev/blob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
)

// What a password Job does (`stashplane password`).
const (
	// PasswordList lists the keys of every restic repository of the
	// Repository and counts the content manifests the Secret's password
	// opens.
	PasswordList = "list"
	// PasswordAdd makes a new password open everything the Secret's
	// opens: a key for it in every restic repository that has none, and
	// every content manifest sealed with the Secret's password sealed
	// again with the new one. Run again, it finishes what a failed run
	// left.
	PasswordAdd = "add"
	// PasswordRemove removes from every restic repository each key other
	// than the one the Secret's password opens.
	PasswordRemove = "remove"
)

// PasswordReportPrefix starts the line of a password Job's log that holds
// its report, as JSON.
const PasswordReportPrefix = "stashplane-password-report: "

// PasswordReport is what a password Job found and did.
type PasswordReport struct {
	Action       string              `json:"action"`
	Repositories []ResticKeysReport  `json:"repositories"`
	Manifests    ManifestSealsReport `json:"manifests"`
	// Error is why the Job failed, when it did; what the report lists
	// before it was done.
	Error string `json:"error,omitempty"`
}

// ResticKeysReport is one restic repository's keys.
type ResticKeysReport struct {
	// Path is the restic repository's prefix in the storage.
	Path string       `json:"path"`
	Keys []restic.Key `json:"keys"`
	// Added is set when this run added the new password's key.
	Added bool `json:"added,omitempty"`
	// Removed are the keys this run removed.
	Removed []string `json:"removed,omitempty"`
}

// ManifestSealsReport counts the Repository's content manifests by the
// password that opens them.
type ManifestSealsReport struct {
	Total int `json:"total"`
	// Current open with the password the Repository's Secret will hold:
	// the new one for an add, else the Secret's.
	Current int `json:"current"`
	// Resealed were sealed again with the new password by this run.
	Resealed int `json:"resealed,omitempty"`
	// Unreadable open with neither password: written before manifests
	// were sealed, sealed with a password no longer known, or damaged.
	Unreadable []string `json:"unreadable,omitempty"`
}

// Password lists, adds or removes the restic keys of every restic
// repository of the Repository and keeps its content manifests sealed
// with the password its Secret holds. newPasswordFile holds the new
// password of an add. The report goes to out, also when the run fails
// half way, so that what was done is known.
func (r *Runner) Password(ctx context.Context, action, newPasswordFile string, out io.Writer) error {
	rep := &PasswordReport{Action: action}
	err := r.password(ctx, rep, newPasswordFile)
	if err != nil {
		rep.Error = err.Error()
	}
	b, jerr := json.Marshal(rep)
	if jerr != nil {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("cannot encode the password report: %w", jerr)}
	}
	fmt.Fprintf(out, "%s%s\n", PasswordReportPrefix, b)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	return nil
}

func (r *Runner) password(ctx context.Context, rep *PasswordReport, newPasswordFile string) error {
	var newPassword string
	switch rep.Action {
	case PasswordList, PasswordRemove:
	case PasswordAdd:
		pw, err := readPassword(newPasswordFile)
		if err != nil {
			return err
		}
		newPassword = pw
	default:
		return fmt.Errorf("cannot run password action %q: it is none of %s, %s, %s", rep.Action, PasswordList, PasswordAdd, PasswordRemove)
	}
	if err := r.Options.Validate(KindPrune); err != nil {
		return err
	}
	t := &target{repo: &storagev1alpha1.Repository{}, storage: &storagev1alpha1.BackupStorage{}}
	if err := r.resolveStorage(ctx, t); err != nil {
		return err
	}
	if err := r.connect(ctx, t); err != nil {
		reason, msg := failure(err, &bridgeErrors{log: r.Log}, t.redact)
		return fmt.Errorf("cannot open the storage: %s: %s", reason, msg)
	}
	defer t.bucket.Close()
	if newPassword != "" {
		t.redact = append(t.redact, newPassword)
	}
	prefixes, err := resticRepositories(ctx, t.bucket, t.repo.Spec.Path)
	if err != nil {
		return err
	}
	for _, p := range prefixes {
		kr := ResticKeysReport{Path: p}
		err := r.passwordOne(ctx, t, rep.Action, newPasswordFile, &kr)
		rep.Repositories = append(rep.Repositories, kr)
		if err != nil {
			return err
		}
	}
	return r.manifestSeals(ctx, t, newPassword, &rep.Manifests)
}

// passwordOne does the action in the restic repository at prefix.
func (r *Runner) passwordOne(ctx context.Context, t *target, action, newPasswordFile string, kr *ResticKeysReport) error {
	t.resticPath = kr.Path
	errs := &bridgeErrors{log: r.Log.WithName("bridge")}
	rc, stop, err := r.resticFor(ctx, t, errs)
	if err != nil {
		reason, msg := failure(err, errs, t.redact)
		return fmt.Errorf("cannot open restic repository %q: %s: %s", kr.Path, reason, msg)
	}
	defer stop(context.WithoutCancel(ctx))
	fail := func(verb string, err error) error {
		reason, msg := failure(err, errs, t.redact)
		return fmt.Errorf("cannot %s of restic repository %q: %s: %s", verb, kr.Path, reason, msg)
	}
	if action == PasswordAdd {
		// A key the new password already opens (an earlier run's) is kept.
		_, err := rc.WithPasswordFile(newPasswordFile).Keys(ctx)
		switch {
		case err == nil:
		case restic.Reason(err) == restic.ReasonWrongPassword:
			if err := rc.AddKey(ctx, newPasswordFile, "stashplane", t.repo.Name); err != nil {
				return fail("add the new password's key", err)
			}
			kr.Added = true
			r.Log.Info("added a key for the new password", "resticRepository", kr.Path)
		default:
			return fail("open with the new password", err)
		}
	}
	// An add's report marks the new password's key current: the one the
	// Secret holds once the change is done.
	lister := rc
	if action == PasswordAdd {
		lister = rc.WithPasswordFile(newPasswordFile)
	}
	keys, err := lister.Keys(ctx)
	if err != nil {
		return fail("list the keys", err)
	}
	if action == PasswordRemove {
		var kept []restic.Key
		for _, k := range keys {
			if k.Current {
				kept = append(kept, k)
				continue
			}
			if err := rc.RemoveKey(ctx, k.ID); err != nil {
				return fail("remove key "+k.ID, err)
			}
			kr.Removed = append(kr.Removed, k.ID)
			r.Log.Info("removed a key the Secret's password is not", "resticRepository", kr.Path, "key", k.ID)
		}
		keys = kept
	}
	kr.Keys = keys
	return nil
}

// manifestSeals counts the Repository's content manifests by the password
// that opens them and, given a new password, seals again with it each one
// the Secret's password opens.
func (r *Runner) manifestSeals(ctx context.Context, t *target, newPassword string, rep *ManifestSealsReport) error {
	root := layout.ManifestsPrefix(t.repo.Spec.Path)
	// One set of keys per password for every manifest: manifests sealed
	// under one salt cost one key derivation, and those sealed again
	// share the first one's salt.
	current := t.manifestKeys()
	var next *manifestKeys
	if newPassword != "" {
		next = newManifestKeys(newPassword)
	}
	it := t.bucket.List(&blob.ListOptions{Prefix: root})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot list the content manifests: %w", err)
		}
		snapshot, file, ok := strings.Cut(strings.TrimPrefix(obj.Key, root), "/")
		component, isManifest := strings.CutSuffix(file, ".json.gz")
		if obj.IsDir || !ok || !isManifest || strings.Contains(component, "/") {
			continue
		}
		rep.Total++
		b, err := t.bucket.ReadAll(ctx, obj.Key)
		if err != nil {
			return fmt.Errorf("cannot read the content manifest %q: %w", obj.Key, err)
		}
		if next != nil {
			if _, err := decodeManifest(bytes.NewReader(b), next, snapshot, component); err == nil {
				rep.Current++
				continue
			}
		}
		m, err := decodeManifest(bytes.NewReader(b), current, snapshot, component)
		switch {
		case err != nil:
			rep.Unreadable = append(rep.Unreadable, snapshot+"/"+component)
			continue
		case newPassword == "":
			rep.Current++
			continue
		}
		sealed, err := m.encode(next)
		if err != nil {
			return err
		}
		if err := t.bucket.WriteAll(ctx, obj.Key, sealed, nil); err != nil {
			return fmt.Errorf("cannot write the content manifest %q: %w", obj.Key, err)
		}
		rep.Current++
		rep.Resealed++
	}
}
