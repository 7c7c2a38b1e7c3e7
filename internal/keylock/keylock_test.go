package keylock

import (
	"fmt"
	"testing"
)

// A key's lock is taken by one worker at a time and given back on unlock;
// another key's is free meanwhile, and no worker waits for a lock that is
// taken.
func TestTryLock(t *testing.T) {
	s := &Set{}
	a := s.TryLock("app/nightly-backup")
	if a == nil {
		t.Fatal("a free lock was not taken")
	}
	if s.TryLock("app/nightly-backup") != nil {
		t.Error("the lock of a key was taken twice")
	}
	other := "app/other"
	for i := 0; s.TryLock(other) == nil; i++ {
		// A key that shares the first one's lock is a hash collision;
		// look for one that does not.
		if i > len(s) {
			t.Fatal("no key with a lock of its own was found")
		}
		other = fmt.Sprintf("app/other-%d", i)
	}
	a.Unlock()
	if b := s.TryLock("app/nightly-backup"); b == nil {
		t.Error("the lock was not free again after unlock")
	}
}
