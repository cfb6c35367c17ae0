package datapath

import (
	"path/filepath"
	"testing"

	"github.com/nicteam/nicteam/internal/nsdo/nstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testNetns is a network namespace of the test's own, removed in Cleanup.
func testNetns(t *testing.T) (netns.NsHandle, string, *netlink.Handle) {
	t.Helper()
	return nstest.New(t, "ntdp")
}

// addVeth creates a veth pair in h's namespace, the peer optionally moved to
// peerNS, brings both ends up (the peer only if it stays) and returns the
// first end.
func addVeth(t *testing.T, h *netlink.Handle, name, peer string, index int, peerNS *netns.NsHandle) netlink.Link {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, Index: index}, PeerName: peer}
	if peerNS != nil {
		v.PeerNamespace = netlink.NsFd(*peerNS)
	}
	if err := h.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s/%s: %v", name, peer, err)
	}
	up := []string{name}
	if peerNS == nil {
		up = append(up, peer)
	}
	for _, n := range up {
		if err := h.LinkSetUp(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n}}); err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testBPFFS mounts a private bpffs for one test and unmounts it in Cleanup,
// which also drops anything still pinned in it.
func testBPFFS(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bpffs")
	if err := MountBPFFS(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
