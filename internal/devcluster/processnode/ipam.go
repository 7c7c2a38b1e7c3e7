package processnode

import (
	"fmt"
	"net/netip"
	"sync"
)

// ipPool hands out pod IPs: loopback addresses when pods share the host's
// network, addresses of the pod subnet when they have their own.
type ipPool struct {
	mu     sync.Mutex
	prefix netip.Prefix
	next   netip.Addr
	free   []netip.Addr
	used   map[netip.Addr]bool
}

func newIPPool(prefix netip.Prefix) (*ipPool, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() || !prefix.Addr().IsLoopback() && !benchmarkRange.Overlaps(prefix) {
		return nil, fmt.Errorf("pod IP range %q must be an IPv4 loopback range or in %s", prefix, benchmarkRange)
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
	for p.used[p.next] {
		p.next = p.next.Next()
	}
	if !p.prefix.Contains(p.next) || !p.next.IsLoopback() && isBroadcast(p.prefix, p.next) {
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

// reserve keeps an address (the bridge's) from ever being handed out.
func (p *ipPool) reserve(a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used[a] = true
}

// benchmarkRange holds the subnets of isolated pod networks: reserved for
// benchmarking, it is neither private nor public.
var benchmarkRange = netip.MustParsePrefix("198.18.0.0/15")

// isBroadcast says whether a is the last address of the range.
func isBroadcast(prefix netip.Prefix, a netip.Addr) bool {
	b := a.As4()
	for i := prefix.Bits(); i < 32; i++ {
		if b[i/8]&(0x80>>(i%8)) == 0 {
			return false
		}
	}
	return true
}
