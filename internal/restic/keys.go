package restic

import (
	"context"
	"encoding/json"
	"fmt"
)

// Key is one of a repository's keys, as `restic key list` shows it: each
// key seals the repository's master key with one password.
type Key struct {
	ID string `json:"id"`
	// Current is the key the password of this run opened.
	Current  bool   `json:"current"`
	UserName string `json:"userName,omitempty"`
	HostName string `json:"hostName,omitempty"`
	Created  string `json:"created,omitempty"`
}

// WithPasswordFile is a driver of the same repository that opens it with
// the password in file.
func (r *Restic) WithPasswordFile(file string) *Restic {
	o := r.opts
	o.Password, o.PasswordFile = "", file
	return &Restic{opts: o, secrets: r.secrets}
}

// Keys lists the repository's keys. A password no key opens fails with
// ReasonWrongPassword.
func (r *Restic) Keys(ctx context.Context) ([]Key, error) {
	var keys []Key
	var decodeErr error
	err := r.run(ctx, "key", []string{"list"}, func(line []byte) {
		if decodeErr == nil && len(line) > 0 && line[0] == '[' {
			decodeErr = json.Unmarshal(line, &keys)
		}
	})
	if err != nil {
		return nil, err
	}
	if decodeErr != nil {
		return nil, fmt.Errorf("cannot read restic's key list: %w", decodeErr)
	}
	return keys, nil
}

// AddKey adds a key for the password in newPasswordFile, recording user
// and host as its maker.
func (r *Restic) AddKey(ctx context.Context, newPasswordFile, user, host string) error {
	return r.run(ctx, "key", []string{"add", "--new-password-file", newPasswordFile, "--user", user, "--host", host}, nil)
}

// RemoveKey removes the key id; restic refuses to remove the key of the
// password it was opened with.
func (r *Restic) RemoveKey(ctx context.Context, id string) error {
	return r.run(ctx, "key", []string{"remove", id}, nil)
}
