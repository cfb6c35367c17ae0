package announce

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/nsdo"
	"github.com/nicteam/nicteam/internal/nsdo/nstest"
	"github.com/nicteam/nicteam/internal/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// testLink is a veth pair a/b in a fresh named network namespace, removed
// in Cleanup; b has 10.99.0.2/24 and fd99::2/64.
type testLink struct {
	ns   netns.NsHandle
	h    *netlink.Handle
	a, b netlink.Link
}

func newTestLink(t *testing.T) *testLink {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creating network namespaces and AF_PACKET sockets requires CAP_SYS_ADMIN and CAP_NET_RAW")
	}
	ns, _, h := nstest.New(t, "ntan")
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "a"}, PeerName: "b"}); err != nil {
		t.Fatal(err)
	}
	tl := &testLink{ns: ns, h: h}
	for _, l := range []*netlink.Link{&tl.a, &tl.b} {
		name := "a"
		if l == &tl.b {
			name = "b"
		}
		var err error
		if *l, err = h.LinkByName(name); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(*l); err != nil {
			t.Fatal(err)
		}
	}
	// Until the kernel has seen the carrier come up (linkwatch), the
	// devices' qdisc is noop and drops what is sent, silently.
	for _, l := range []netlink.Link{tl.a, tl.b} {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			cur, err := h.LinkByIndex(l.Attrs().Index)
			if err != nil {
				t.Fatal(err)
			}
			if cur.Attrs().OperState == netlink.OperUp {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not operationally up: %s", l.Attrs().Name, cur.Attrs().OperState)
			}
		}
	}
	for _, cidr := range []string{"10.99.0.2/24", "fd99::2/64"} {
		addr, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatal(err)
		}
		addr.Flags = unix.IFA_F_NODAD // usable at once
		if err := h.AddrAdd(tl.b, addr); err != nil {
			t.Fatalf("add %s to b: %v", cidr, err)
		}
	}
	// b joins fd99::2's solicited-node group from a workqueue shortly
	// after the address appears; solicitations sent before are not
	// received.
	if err := nsdo.Do(ns, func() error {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			groups, err := os.ReadFile("/proc/thread-self/net/igmp6")
			if err != nil {
				return err
			}
			if regexp.MustCompile(`(?m)^\d+\s+b\s+ff0200000000000000000001ff000002\s`).Match(groups) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("b did not join ff02::1:ff00:2:\n%s", groups)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return tl
}

// neighbour returns b's neighbour entry for ip, if any.
func (tl *testLink) neighbour(t *testing.T, ip netip.Addr) (netlink.Neigh, bool) {
	t.Helper()
	family := netlink.FAMILY_V6
	if ip.Is4() {
		family = netlink.FAMILY_V4
	}
	neighs, err := tl.h.NeighList(tl.b.Attrs().Index, family)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip {
			return n, true
		}
	}
	return netlink.Neigh{}, false
}

// TestSendUpdatesNeighbours checks that the peer b replaces the MAC it holds
// for the team's addresses, and that every frame leaves a as built.
func TestSendUpdatesNeighbours(t *testing.T) {
	tl := newTestLink(t)
	old := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	v4, v6 := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("fd99::1")
	endpoint := net.HardwareAddr{0x02, 0, 0, 0, 0, 0xe1}
	for _, ip := range []netip.Addr{v4, v6} {
		family := netlink.FAMILY_V6
		if ip.Is4() {
			family = netlink.FAMILY_V4
		}
		// A stale entry: what a peer holds for an address it has talked
		// to before the MAC moved.
		n := &netlink.Neigh{LinkIndex: tl.b.Attrs().Index, Family: family, State: netlink.NUD_STALE, IP: ip.AsSlice(), HardwareAddr: old}
		if err := tl.h.NeighSet(n); err != nil {
			t.Fatalf("set neighbour %s: %v", ip, err)
		}
	}

	// Capture on b what arrives from a.
	var capture *packet.Conn
	if err := nsdo.Do(tl.ns, func() (err error) {
		capture, err = openSocket(tl.b.Attrs().Index, []bpf.Instruction{bpf.RetConstant{Val: 1 << 16}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer capture.Close()

	a := Announcement{MAC: macM, Addrs: []netip.Addr{v4, v6}, Endpoints: []net.HardwareAddr{endpoint}}
	if err := nsdo.Do(tl.ns, func() error { return Send(tl.a.Attrs().Index, a) }); err != nil {
		t.Fatal(err)
	}

	want := [][]byte{GratuitousARP(macM, v4), UnsolicitedNA(macM, v6), RARP(endpoint)}
	if err := capture.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	for len(want) > 0 {
		n, err := capture.Recv(buf)
		if err != nil {
			t.Fatalf("frames not seen on b: %v\n%s", err, hexFrames(want))
		}
		// a's own stack talks too (IPv6 link-local DAD, MLD, RS).
		want = slices.DeleteFunc(want, func(w []byte) bool { return bytes.Equal(w, buf[:n]) })
	}

	for _, ip := range []netip.Addr{v4, v6} {
		deadline := time.Now().Add(2 * time.Second)
		for {
			n, ok := tl.neighbour(t, ip)
			if ok && n.HardwareAddr.String() == macM.String() {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("b's entry for %s: %v (found %t), want MAC %s", ip, n.HardwareAddr, ok, macM)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func hexFrames(frames [][]byte) string {
	var s string
	for _, f := range frames {
		s += hex.Dump(f)
	}
	return s
}

func TestProbe(t *testing.T) {
	tl := newTestLink(t)
	a := netip.MustParseAddr
	srcs := []netip.Addr{a("10.99.0.1"), a("fd99::1")}
	probe := func(ctx context.Context, timeout time.Duration, targets ...netip.Addr) (answered []netip.Addr, elapsed time.Duration, err error) {
		err = nsdo.Do(tl.ns, func() error {
			start := time.Now()
			// macM is not a's own MAC, as the team MAC on a member
			// that is not its owner.
			answered, err = Probe(ctx, tl.a.Attrs().Index, macM, srcs, targets, timeout)
			elapsed = time.Since(start)
			return err
		})
		return answered, elapsed, err
	}

	got, elapsed, err := probe(context.Background(), 5*time.Second, a("10.99.0.2"), a("fd99::2"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{a("10.99.0.2"), a("fd99::2")}; !slices.Equal(got, want) {
		t.Errorf("answered %v, want %v", got, want)
	}
	if elapsed > time.Second {
		t.Errorf("took %v although every target answered", elapsed)
	}

	got, elapsed, err = probe(context.Background(), 50*time.Millisecond, a("10.99.0.9"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("missing 10.99.0.9 answered: %v", got)
	}
	if elapsed < 50*time.Millisecond || elapsed > time.Second {
		t.Errorf("took %v with a 50ms timeout", elapsed)
	}

	// Answers come back in the order asked, without the silent target.
	got, _, err = probe(context.Background(), 300*time.Millisecond, a("fd99::2"), a("10.99.0.9"), a("10.99.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{a("fd99::2"), a("10.99.0.2")}; !slices.Equal(got, want) {
		t.Errorf("answered %v, want %v", got, want)
	}

	// The context ends the wait before the timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, elapsed, err = probe(ctx, 5*time.Second, a("10.99.0.9"))
	if !errors.Is(err, context.DeadlineExceeded) || elapsed > time.Second {
		t.Errorf("with a context ending after 50ms: %v after %v, want context.DeadlineExceeded at once", err, elapsed)
	}
}

// TestPermission drops CAP_NET_RAW from one thread's effective set: Send and
// Probe must then fail with an error that is os.ErrPermission.
func TestPermission(t *testing.T) {
	tl := newTestLink(t)
	ip := netip.MustParseAddr("10.99.0.1")
	// A thread of its own that dies with it: nsdo.Do would hand the
	// thread, without the capability, back to other goroutines.
	err := nsdo.OnNewThread(func() error {
		if err := netns.Set(tl.ns); err != nil {
			return err
		}
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var caps [2]unix.CapUserData
		if err := unix.Capget(&hdr, &caps[0]); err != nil {
			return err
		}
		caps[0].Effective &^= 1 << unix.CAP_NET_RAW
		if err := unix.Capset(&hdr, &caps[0]); err != nil {
			return err
		}
		var errs []error
		if err := Send(tl.a.Attrs().Index, Announcement{MAC: macM, Addrs: []netip.Addr{ip}}); !errors.Is(err, os.ErrPermission) {
			errs = append(errs, fmt.Errorf("Send without CAP_NET_RAW: %v, want os.ErrPermission", err))
		}
		if _, err := Probe(context.Background(), tl.a.Attrs().Index, macM, []netip.Addr{ip}, []netip.Addr{ip}, time.Millisecond); !errors.Is(err, os.ErrPermission) {
			errs = append(errs, fmt.Errorf("Probe without CAP_NET_RAW: %v, want os.ErrPermission", err))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Error(err)
	}
}
