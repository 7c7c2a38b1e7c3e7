package restic_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// TestKeys adds a key for a second password, lists the keys from either
// password (each marking its own current), removes the first password's
// key, and finds the first password refused.
func TestKeys(t *testing.T) {
	repo := t.TempDir()
	bin := servers.Binary(t, "restic")
	r, err := restic.New(restic.Options{Binary: bin, Repository: repo, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Init(ctx(t)); err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(t.TempDir(), "second")
	if err := os.WriteFile(second, []byte("the second password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WithPasswordFile(second).Keys(ctx(t)); restic.Reason(err) != restic.ReasonWrongPassword {
		t.Fatalf("Keys with a password no key opens: %v; want %s", err, restic.ReasonWrongPassword)
	}
	if err := r.AddKey(ctx(t), second, "stashplane", "app"); err != nil {
		t.Fatal(err)
	}
	first, err := r.Keys(ctx(t))
	if err != nil || len(first) != 2 {
		t.Fatalf("Keys after AddKey = %+v, %v; want two", first, err)
	}
	byNew, err := r.WithPasswordFile(second).Keys(ctx(t))
	if err != nil || len(byNew) != 2 {
		t.Fatalf("Keys with the second password = %+v, %v; want two", byNew, err)
	}
	var oldID, newID string
	for _, k := range byNew {
		if k.Current {
			newID = k.ID
			if k.UserName != "stashplane" || k.HostName != "app" {
				t.Errorf("the added key records %s@%s, want stashplane@app", k.UserName, k.HostName)
			}
		} else {
			oldID = k.ID
		}
	}
	for _, k := range first {
		if k.Current != (k.ID == oldID) {
			t.Errorf("Keys with the first password marks %s current: %t", k.ID, k.Current)
		}
	}
	if err := r.RemoveKey(ctx(t), newID); err != nil {
		t.Fatalf("RemoveKey of another password's key: %v", err)
	}
	if err := r.RemoveKey(ctx(t), oldID); err == nil {
		t.Errorf("RemoveKey of the key of the password in use succeeded; restic refuses it")
	}
	if _, err := r.WithPasswordFile(second).Keys(ctx(t)); restic.Reason(err) != restic.ReasonWrongPassword {
		t.Errorf("Keys with the removed password: %v; want %s", err, restic.ReasonWrongPassword)
	}
}
