package keylock

import (
	"fmt"
	"sync"
	"testing"
)

// A key is taken by one worker at a time and given back on unlock; every
// other key is free meanwhile (no two share a lock), and no worker waits
// for a key that is taken.
func TestTryLock(t *testing.T) {
	s := &Set{}
	a := s.TryLock("app/nightly-backup")
	if a == nil {
		t.Fatal("a free key was not taken")
	}
	if s.TryLock("app/nightly-backup") != nil {
		t.Error("a key was taken twice")
	}
	for i := range 1000 {
		k := fmt.Sprintf("app/other-%d", i)
		h := s.TryLock(k)
		if h == nil {
			t.Fatalf("key %q was not free while another was held", k)
		}
		h.Unlock()
	}
	a.Unlock()
	if b := s.TryLock("app/nightly-backup"); b == nil {
		t.Error("the key was not free again after unlock")
	}
	if n := len(s.held); n != 1 {
		t.Errorf("the set holds %d keys, want the one still taken", n)
	}
}

// Of many workers trying one key at once, exactly one takes it.
func TestTryLockOneWinner(t *testing.T) {
	s := &Set{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.TryLock("app/nightly-backup") != nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d workers took the key, want 1", won)
	}
}
