// Package keylock lets one worker at a time hold a key, such as a
// BackupConfiguration's namespace and name, while workers holding other
// keys go on side by side.
package keylock

import (
	"sync"
	"time"
)

// Retry is when a worker that found its key held tries again: a
// controller requeues the request after it rather than waiting, so that
// its worker goes on with other keys meanwhile.
const Retry = time.Second

// Set holds the keys taken, each exactly: two keys never share a lock, so
// a key held for minutes (a session's hook attempt) holds back no other.
// A key is forgotten when it is given back, so the set holds no more keys
// than there are workers. The zero Set is ready to use.
type Set struct {
	mu   sync.Mutex
	held map[string]bool
}

// Held is a key taken from a Set, given back by Unlock.
type Held struct {
	set *Set
	key string
}

// TryLock takes key and returns it, to be unlocked when the work is done,
// or returns nil when another worker holds it. A worker never waits for a
// key: the holder may keep it for as long as its work takes, and a worker
// waiting behind it would hold back every other key (try again after
// Retry).
func (s *Set) TryLock(key string) *Held {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[key] {
		return nil
	}
	if s.held == nil {
		s.held = map[string]bool{}
	}
	s.held[key] = true
	return &Held{set: s, key: key}
}

// Unlock gives the key back.
func (h *Held) Unlock() {
	h.set.mu.Lock()
	defer h.set.mu.Unlock()
	delete(h.set.held, h.key)
}
