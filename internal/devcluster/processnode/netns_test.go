package processnode

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testNetID is outside the numbers clusters claim (16 to 215), so the test
// never meets a running cluster's links.
const testNetID = 241

// listenIn listens on a TCP address inside a network namespace; the socket
// stays in it once the thread is back.
func listenIn(t *testing.T, path, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	l, lerr := net.Listen("tcp", addr)
	if err := netns.Set(orig); err != nil {
		t.Fatalf("cannot return to the host namespace: %v", err)
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	return l
}

// The host side of an isolated network wires pods to a bridge the host
// reaches them on, and removes every link and namespace again.
func TestHostNetPods(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making links and network namespaces needs root")
	}
	h, err := newHostNet(testNetID, netip.MustParsePrefix("198.19.241.0/24"), netip.MustParsePrefix("198.18.241.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.setUp(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.tearDown(); err != nil {
			t.Error(err)
		}
	})
	var got []string
	for _, ip := range []netip.Addr{netip.MustParseAddr("198.19.241.2"), netip.MustParseAddr("198.19.241.3")} {
		path, err := h.addPod(ip)
		if err != nil {
			t.Fatal(err)
		}
		// Both pods listen on the same port of their own address.
		l := listenIn(t, path, ":8080")
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err == nil {
				_, _ = io.WriteString(c, ip.String())
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", netip.AddrPortFrom(ip, 8080).String())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got = append(got, string(b))
	}
	if diff := cmp.Diff([]string{"198.19.241.2", "198.19.241.3"}, got); diff != "" {
		t.Errorf("replies from the pods: -want +got:\n%s", diff)
	}
	if err := h.removePod(netip.MustParseAddr("198.19.241.2")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"spbr241", "spv241-3"}, linksOf(t, testNetID)); diff != "" {
		t.Errorf("links after removing a pod: -want +got:\n%s", diff)
	}
	if err := h.tearDown(); err != nil {
		t.Fatal(err)
	}
	if got := linksOf(t, testNetID); len(got) > 0 {
		t.Errorf("links left after tearing down: %v", got)
	}
	if _, err := os.Stat(h.netnsPath(netip.MustParseAddr("198.19.241.3"))); err == nil {
		t.Errorf("a namespace file is left after tearing down")
	}
}

func linksOf(t *testing.T, id int) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		n := l.Attrs().Name
		if n == fmt.Sprintf("spbr%d", id) || strings.HasPrefix(n, fmt.Sprintf("spv%d-", id)) {
			out = append(out, n)
		}
	}
	return out
}

// What a killed cluster left (bridge, veth, namespace file, route) goes when
// a cluster with the same number starts, or when its number is claimed for
// a cluster on the host's network.
func TestHostNetLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making links and network namespaces needs root")
	}
	pods, services := netip.MustParsePrefix("198.19.242.0/24"), netip.MustParsePrefix("198.18.242.0/24")
	ip := netip.MustParseAddr("198.19.242.2")
	cases := map[string]struct {
		reason string
		clean  func(t *testing.T)
		want   []string
	}{
		"IsolatedStart": {
			reason: "A new isolated network of the same number starts from a fresh bridge.",
			clean: func(t *testing.T) {
				h, err := newHostNet(242, pods, services)
				if err != nil {
					t.Fatal(err)
				}
				if err := h.setUp(); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"spbr242"},
		},
		"RemoveNetwork": {
			reason: "A cluster on the host's network removes everything.",
			clean: func(t *testing.T) {
				if err := RemoveNetwork(242, services); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			old, err := newHostNet(242, pods, services)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = old.tearDown() })
			if err := old.setUp(); err != nil {
				t.Fatal(err)
			}
			if _, err := old.addPod(ip); err != nil {
				t.Fatal(err)
			}
			tc.clean(t)
			if diff := cmp.Diff(tc.want, linksOf(t, 242)); diff != "" {
				t.Errorf("%s\nlinks: -want +got:\n%s", tc.reason, diff)
			}
			if _, err := os.Stat(old.netnsPath(ip)); err == nil {
				t.Errorf("%s\nthe namespace file is left", tc.reason)
			}
		})
	}
}
