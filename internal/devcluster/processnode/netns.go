package processnode

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The host side of an isolated pod network is a bridge holding the pod
// subnet's first address, one veth per pod whose other end is eth0 in the
// pod's network namespace, and a local route that makes the host accept
// every address of the service range. Every link, route and namespace file
// is named after the cluster's network number N, so that a cluster claiming
// N again removes whatever a killed process left behind.

// netnsDir is where persistent network namespaces are bind-mounted, as `ip
// netns` does; `ip netns list` shows the pods' namespaces.
const netnsDir = "/run/netns"

// netnsPrefix starts the name of every namespace file a process node makes.
const netnsPrefix = "spdev"

// hostNet names and makes the host side of one cluster's pod network.
type hostNet struct {
	// id is the cluster's network number N.
	id int
	// pods is the pod subnet; gateway, its first address, is the bridge's.
	pods    netip.Prefix
	gateway netip.Addr
	// services is the ClusterIP range, routed to the host from the pods.
	services netip.Prefix
}

func newHostNet(id int, pods, services netip.Prefix) (*hostNet, error) {
	if !pods.Addr().Is4() || pods.Bits() < 24 || pods.Bits() > 30 {
		return nil, fmt.Errorf("pod subnet %q must be an IPv4 range of /24 to /30", pods)
	}
	if !services.Addr().Is4() {
		return nil, fmt.Errorf("service range %q must be an IPv4 range", services)
	}
	pods = pods.Masked()
	return &hostNet{id: id, pods: pods, gateway: pods.Addr().Next(), services: services.Masked()}, nil
}

func (h *hostNet) bridgeName() string { return fmt.Sprintf("spbr%d", h.id) }

// vethPrefix starts the names of the host ends of this cluster's veths;
// the dash keeps spv1- from matching spv12-.
func (h *hostNet) vethPrefix() string { return fmt.Sprintf("spv%d-", h.id) }

func (h *hostNet) netnsPrefix() string { return fmt.Sprintf("%s%d-", netnsPrefix, h.id) }

// podSuffix tells a pod's links and namespace apart within the cluster: the
// last byte of its IP (the subnet is at most a /24).
func podSuffix(ip netip.Addr) string { return fmt.Sprint(ip.As4()[3]) }

func (h *hostNet) vethName(ip netip.Addr) string  { return h.vethPrefix() + podSuffix(ip) }
func (h *hostNet) netnsName(ip netip.Addr) string { return h.netnsPrefix() + podSuffix(ip) }

// NetnsPath is the file that holds a pod's network namespace.
func (h *hostNet) netnsPath(ip netip.Addr) string {
	return filepath.Join(netnsDir, h.netnsName(ip))
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

func prefixNet(p netip.Prefix) *net.IPNet { return ipNet(p.Addr(), p.Bits()) }

// serviceRoute is the host's local route for the service range.
func (h *hostNet) serviceRoute() (*netlink.Route, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("cannot find the loopback link: %w", err)
	}
	return &netlink.Route{
		LinkIndex: lo.Attrs().Index, Dst: prefixNet(h.services),
		Type: unix.RTN_LOCAL, Table: unix.RT_TABLE_LOCAL, Scope: netlink.SCOPE_HOST,
	}, nil
}

// setUp removes what an earlier cluster with the same number left, then
// makes the bridge and the service route.
func (h *hostNet) setUp() (err error) {
	if err := h.tearDown(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = h.tearDown()
		}
	}()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: h.bridgeName()}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("cannot make bridge %q: %w", br.Name, err)
	}
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: ipNet(h.gateway, h.pods.Bits())}); err != nil {
		return fmt.Errorf("cannot address bridge %q: %w", br.Name, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("cannot bring up bridge %q: %w", br.Name, err)
	}
	route, err := h.serviceRoute()
	if err != nil {
		return err
	}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("cannot route service range %s to the host: %w", h.services, err)
	}
	return nil
}

// tearDown removes the bridge, the service route, every veth and every
// namespace file named after this cluster's number.
func (h *hostNet) tearDown() error {
	var errs []error
	files, _ := filepath.Glob(filepath.Join(netnsDir, h.netnsPrefix()+"*"))
	for _, f := range files {
		if err := removeNetns(f); err != nil {
			errs = append(errs, err)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("cannot list links: %w", err)
	}
	for _, l := range links {
		name := l.Attrs().Name
		if name != h.bridgeName() && !strings.HasPrefix(name, h.vethPrefix()) {
			continue
		}
		if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("cannot remove link %q: %w", name, err))
		}
	}
	route, err := h.serviceRoute()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := netlink.RouteDel(route); err != nil && !errors.Is(err, unix.ESRCH) {
		errs = append(errs, fmt.Errorf("cannot remove route of %s: %w", h.services, err))
	}
	return errors.Join(errs...)
}

// addPod makes a pod's network namespace with lo up and eth0 holding ip,
// wired to the bridge, with routes to the pod subnet and the service range
// only. It returns the namespace's file.
func (h *hostNet) addPod(ip netip.Addr) (path string, err error) {
	if !h.pods.Contains(ip) {
		return "", fmt.Errorf("pod IP %s is not in the pod subnet %s", ip, h.pods)
	}
	br, err := netlink.LinkByName(h.bridgeName())
	if err != nil {
		return "", fmt.Errorf("cannot find bridge %q: %w", h.bridgeName(), err)
	}
	// A namespace or veth by this name is a leftover of a pod that held
	// the address before.
	_ = h.removePod(ip)
	ns, err := newNamedNetns(h.netnsName(ip))
	if err != nil {
		return "", fmt.Errorf("cannot make network namespace %q: %w", h.netnsName(ip), err)
	}
	defer ns.Close()
	defer func() {
		if err != nil {
			_ = h.removePod(ip)
		}
	}()
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: h.vethName(ip), MasterIndex: br.Attrs().Index},
		PeerName:  "eth0", PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("cannot make veth %q: %w", veth.Name, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return "", fmt.Errorf("cannot bring up veth %q: %w", veth.Name, err)
	}
	if err := h.configurePod(ns, ip); err != nil {
		return "", err
	}
	return h.netnsPath(ip), nil
}

// configurePod sets up the links and routes inside a pod's namespace.
func (h *hostNet) configurePod(ns netns.NsHandle, ip netip.Addr) error {
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("cannot open pod network namespace: %w", err)
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("cannot find the pod's loopback link: %w", err)
	}
	if err := nh.LinkSetUp(lo); err != nil {
		return fmt.Errorf("cannot bring up the pod's loopback link: %w", err)
	}
	eth, err := nh.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("cannot find the pod's eth0: %w", err)
	}
	if err := nh.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(ip, h.pods.Bits())}); err != nil {
		return fmt.Errorf("cannot address the pod's eth0: %w", err)
	}
	if err := nh.LinkSetUp(eth); err != nil {
		return fmt.Errorf("cannot bring up the pod's eth0: %w", err)
	}
	// The subnet's route came with the address; the service range goes
	// through the bridge. There is no default route: nothing else is
	// reachable from the pod.
	route := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: prefixNet(h.services), Gw: h.gateway.AsSlice()}
	if err := nh.RouteAdd(route); err != nil {
		return fmt.Errorf("cannot route the service range in the pod: %w", err)
	}
	return nil
}

// removePod deletes a pod's veth (its eth0 goes with it) and namespace
// file.
func (h *hostNet) removePod(ip netip.Addr) error {
	var errs []error
	if l, err := netlink.LinkByName(h.vethName(ip)); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("cannot remove veth %q: %w", h.vethName(ip), err))
		}
	}
	if err := removeNetns(h.netnsPath(ip)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cannot unmount network namespace %q: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot remove network namespace %q: %w", path, err)
	}
	return nil
}

// newNamedNetns makes a network namespace bind-mounted at netnsDir/name. A
// namespace is made by the calling thread entering it, so a locked thread
// does it and goes back; processes started by the node carry the
// parent-death signal of the thread that started them, so the thread must
// live on rather than end with the goroutine.
func newNamedNetns(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name)
		if serr := netns.Set(orig); serr != nil {
			// Stuck in the new namespace: let the thread end with
			// this goroutine rather than serve others.
			if err == nil {
				h.Close()
			}
			done <- result{err: fmt.Errorf("cannot return to the host namespace: %w", serr)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{h: h, err: err}
	}()
	r := <-done
	return r.h, r.err
}

// enterNetwork is the sandbox initialiser's part: it drops the copies of
// pods' namespace mounts from the container's private mount namespace (so
// a deleted pod's namespace is not kept alive by other containers), then,
// when the pod has a namespace, moves the initialiser's thread into it. The
// thread stays locked: the container's program is exec'd from it and
// inherits its namespace.
func enterNetwork(path string) error {
	fd := -1
	if path != "" {
		var err error
		if fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("cannot open pod network namespace: %w", err)
		}
		defer unix.Close(fd)
	}
	files, _ := filepath.Glob(filepath.Join(netnsDir, netnsPrefix+"*"))
	for _, f := range files {
		_ = unix.Unmount(f, unix.MNT_DETACH)
	}
	if fd < 0 {
		return nil
	}
	runtime.LockOSThread()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("cannot enter pod network namespace: %w", err)
	}
	return nil
}
