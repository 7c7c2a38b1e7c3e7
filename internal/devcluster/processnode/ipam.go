package processnode

import (
	"fmt"
	"net/netip"
	"sync"
)

// ipPool hands out the loopback addresses that serve as pod IPs.
type ipPool struct {
	mu     sync.Mutex
	prefix netip.Prefix
	next   netip.Addr
	free   []netip.Addr
	used   map[netip.Addr]bool
}

func newIPPool(prefix netip.Prefix) (*ipPool, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() || !prefix.Addr().IsLoopback() {
		return nil, fmt.Errorf("pod IP range %q must be an IPv4 loopback range", prefix)
	}
	prefix = prefix.Masked()
	// The range's first address is its network address; start after it.
	return &ipPool{prefix: prefix, next: prefix.Addr().Next(), used: map[netip.Addr]bool{}}, nil
}

func (p *ipPool) take() (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		a := p.free[n-1]
		p.free = p.free[:n-1]
		p.used[a] = true
		return a, nil
	}
	if !p.prefix.Contains(p.next) {
		return netip.Addr{}, fmt.Errorf("no pod IP left in %s", p.prefix)
	}
	a := p.next
	p.next = a.Next()
	p.used[a] = true
	return a, nil
}

func (p *ipPool) give(a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used[a] {
		delete(p.used, a)
		p.free = append(p.free, a)
	}
}
