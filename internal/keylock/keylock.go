// Package keylock lets one worker at a time hold a key, such as a
// BackupConfiguration's namespace and name, while workers holding other
// keys go on side by side.
package keylock

import (
	"hash/fnv"
	"sync"
)

// Set is a fixed set of locks; a key is hashed to one of them. Two keys
// that share a lock take turns: with a few workers and this many locks
// that is rare, and the set's size never grows with the keys seen. The
// zero Set is ready to use.
type Set [256]sync.Mutex

// TryLock takes the lock of key and returns it, to be unlocked when the
// work is done, or returns nil when another worker holds it. A worker
// never waits for a lock: the holder may keep it for as long as its work
// takes, and a worker waiting behind it would hold back every other key.
func (s *Set) TryLock(key string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &s[h.Sum32()%uint32(len(s))]
	if !m.TryLock() {
		return nil
	}
	return m
}
