package datapath

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/nicteam/nicteam/internal/nsdo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// createIn creates a team on a fresh veth pair named name in ns, pinned in
// dir, with one member, and returns it and the team NIC.
func createIn(t *testing.T, ns netns.NsHandle, h *netlink.Handle, dir, name string) (*Team, netlink.Link) {
	t.Helper()
	nic := addVeth(t, h, name, name+"p", 0, nil)
	m := addVeth(t, h, name+"m", name+"mp", 0, nil)
	var tm *Team
	if err := nsdo.Do(ns, func() (err error) {
		if tm, err = Create(dir, Config{TeamIfindex: nic.Attrs().Index, TeamMAC: nic.Attrs().HardwareAddr}); err != nil {
			return err
		}
		return tm.AttachMember(m.Attrs().Index, m.Attrs().HardwareAddr)
	}); err != nil {
		t.Fatal(err)
	}
	return tm, nic
}

func cookieIn(t *testing.T, ns netns.NsHandle) uint64 {
	t.Helper()
	var c uint64
	if err := nsdo.Do(ns, func() (err error) { c, err = netnsCookie(); return err }); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitDefunct waits until the team's egress link has lost its interface.
func waitDefunct(t *testing.T, tm *Team) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ifindex, ok := tcxIfindex(tm.link); ok && ifindex == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("egress link still attached 20s after its namespace or NIC went")
		}
	}
}

// TestTidyPins: a dead namespace's teams are removed, a live namespace's
// are kept even when its team NIC is gone, and the caller's own teams in
// the inode-keyed layout move to the cookie-keyed one still attached.
func TestTidyPins(t *testing.T) {
	requireDatapath(t)
	root := testBPFFS(t)

	// A namespace that dies once the handles below are closed. It is made
	// by ip, a process of its own: no thread of ours may stay in it.
	name := fmt.Sprintf("ntdead-%d-%08x", os.Getpid(), rand.Uint32())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	dead, err := netns.GetFromName(name)
	if out, derr := exec.Command("ip", "netns", "del", name).CombinedOutput(); derr != nil {
		t.Fatalf("ip netns del %s: %v: %s", name, derr, out)
	}
	if err != nil {
		t.Fatal(err)
	}
	dh, err := netlink.NewHandleAt(dead)
	if err != nil {
		t.Fatal(err)
	}
	deadDir := namespaceDir(root, cookieIn(t, dead))
	deadTm, _ := createIn(t, dead, dh, filepath.Join(deadDir, "Team0"), "td0")
	half := filepath.Join(deadDir, "Half") // a Create that died before attaching
	if err := os.Mkdir(half, 0o700); err != nil {
		t.Fatal(err)
	}
	dh.Close()
	dead.Close()
	waitDefunct(t, deadTm)
	deadTm.Close()

	// A live namespace whose team NIC was deleted: its daemon rebuilds it.
	liveNS, _, lh := testNetns(t)
	liveDir := namespaceDir(root, cookieIn(t, liveNS))
	liveTm, liveNIC := createIn(t, liveNS, lh, filepath.Join(liveDir, "Team0"), "tl0")
	defer liveTm.Close()
	if err := lh.LinkDel(liveNIC); err != nil {
		t.Fatal(err)
	}
	waitDefunct(t, liveTm)

	// The caller's namespace, with a team in the old layout.
	own, _, oh := testNetns(t)
	var ino uint64
	if err := nsdo.Do(own, func() (err error) { _, ino, err = ownNamespace(); return err }); err != nil {
		t.Fatal(err)
	}
	oldDir := filepath.Join(root, pinRoot, "ns"+strconv.FormatUint(ino, 10), "Team1")
	oldTm, oldNIC := createIn(t, own, oh, oldDir, "to1")
	egressID := linkID(t, oldTm.link)
	oldTm.Close()

	tidy := func(grace time.Duration) (dir string, done []string) {
		t.Helper()
		if err := nsdo.Do(own, func() (err error) { dir, done, err = tidyPins(root, grace); return err }); err != nil {
			t.Fatal(err)
		}
		t.Logf("tidy: %q", done)
		return dir, done
	}
	dir, _ := tidy(time.Hour)
	if want := namespaceDir(root, cookieIn(t, own)); dir != want {
		t.Errorf("tidyPins returned %s, want %s", dir, want)
	}
	for path, want := range map[string]bool{
		filepath.Join(deadDir, "Team0"): false,
		half:                            true, // younger than the grace
		filepath.Join(liveDir, "Team0"): true,
		oldDir:                          false,
		filepath.Join(dir, "Team1"):     true,
	} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s after tidy: %v, want it there: %v", path, err, want)
		}
	}
	moved, err := Open(filepath.Join(dir, "Team1"))
	if err != nil {
		t.Fatalf("open the moved team: %v", err)
	}
	defer moved.Destroy()
	if got := attachedLinks(t, own, oldNIC.Attrs().Index, ebpf.AttachTCXEgress); !slices.Equal(got, []link.ID{egressID}) {
		t.Errorf("egress links on the moved team's NIC %v, want [%d] as before the move", got, egressID)
	}

	if _, done := tidy(0); !slices.Contains(done, "removed empty "+deadDir) {
		t.Errorf("second tidy did not remove %s: %q", deadDir, done)
	}
	if _, err := os.Stat(filepath.Join(liveDir, "Team0")); err != nil {
		t.Errorf("live namespace's team after tidy: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(oldDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old layout's directory after tidy: %v", err)
	}
}
