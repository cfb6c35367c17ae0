package datapath

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/nicteam/nicteam/internal/nsdo"
	"github.com/vishvananda/netns"
)

// attachedLinks returns the link IDs of the tcx programs on ifindex in ns.
func attachedLinks(t *testing.T, ns netns.NsHandle, ifindex int, attach ebpf.AttachType) []link.ID {
	t.Helper()
	var ids []link.ID
	err := nsdo.Do(ns, func() error {
		res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: attach})
		if err != nil {
			return err
		}
		for _, p := range res.Programs {
			id, _ := p.LinkID()
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("query %s on ifindex %d: %v", attach, ifindex, err)
	}
	return ids
}

// waitLinkGone waits for the kernel to free link id, which it does once no
// pin and no file descriptor holds it (in a work item, so not at once).
func waitLinkGone(t *testing.T, id link.ID) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l, err := link.NewFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err == nil {
			_ = l.Close()
		}
		if time.Now().After(deadline) {
			t.Errorf("link %d still exists (%v): something holds it open", id, err)
			return
		}
	}
}

func linkID(t *testing.T, l link.Link) link.ID {
	t.Helper()
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

func TestCreateOpenDestroy(t *testing.T) {
	requireDatapath(t)
	ns, _, h := testNetns(t)
	team := addVeth(t, h, "tm0", "tm0p", 0, nil)
	m1 := addVeth(t, h, "m1", "m1p", 0, nil)
	m2 := addVeth(t, h, "m2", "m2p", 0, nil)
	dir := filepath.Join(testBPFFS(t), "nicteam", "tm0")
	cfg := Config{TeamIfindex: team.Attrs().Index, TeamMAC: team.Attrs().HardwareAddr, Hash: HashIPAddresses, Primary: m1.Attrs().Index}

	var tm *Team
	if err := nsdo.Do(ns, func() (err error) {
		if tm, err = Create(dir, cfg); err != nil {
			return err
		}
		if err := tm.AttachMember(m1.Attrs().Index, m1.Attrs().HardwareAddr); err != nil {
			return err
		}
		return tm.AttachMember(m2.Attrs().Index, m2.Attrs().HardwareAddr)
	}); err != nil {
		t.Fatal(err)
	}
	egressID := linkID(t, tm.link)
	memberIDs := map[int]link.ID{m1.Attrs().Index: linkID(t, tm.members[m1.Attrs().Index]), m2.Attrs().Index: linkID(t, tm.members[m2.Attrs().Index])}
	if got := attachedLinks(t, ns, cfg.TeamIfindex, ebpf.AttachTCXEgress); !slices.Equal(got, []link.ID{egressID}) {
		t.Fatalf("egress links on team %v, want [%d]", got, egressID)
	}

	// Idempotent attach: same link, MAC updated, flags and counters kept.
	if err := tm.SetMemberFlags(m1.Attrs().Index, MemberTxOwnMAC); err != nil {
		t.Fatal(err)
	}
	if err := nsdo.Do(ns, func() error { return tm.AttachMember(m1.Attrs().Index, macC) }); err != nil {
		t.Fatal(err)
	}
	var m teamMember
	if err := tm.maps.Members.Lookup(uint32(m1.Attrs().Index), &m); err != nil || m.Mac != [6]byte(macC) || m.Flags != uint32(MemberTxOwnMAC) {
		t.Errorf("member entry after re-attach = %+v, %v; want MAC %s, flags kept", m, err, macC)
	}
	if got := attachedLinks(t, ns, m1.Attrs().Index, ebpf.AttachTCXIngress); !slices.Equal(got, []link.ID{memberIDs[m1.Attrs().Index]}) {
		t.Errorf("ingress links on m1 after re-attach %v, want [%d]", got, memberIDs[m1.Attrs().Index])
	}

	// A second Create on the same dir must not clobber the team.
	if err := nsdo.Do(ns, func() error { _, err := Create(dir, cfg); return err }); !errors.Is(err, os.ErrExist) {
		t.Errorf("second Create: %v, want os.ErrExist", err)
	}

	// Close (daemon exit) keeps everything; Open adopts the same links.
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
	if got := attachedLinks(t, ns, cfg.TeamIfindex, ebpf.AttachTCXEgress); !slices.Equal(got, []link.ID{egressID}) {
		t.Fatalf("egress links after Close %v, want [%d]", got, egressID)
	}
	tm, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := linkID(t, tm.link); got != egressID {
		t.Errorf("adopted egress link %d, want %d", got, egressID)
	}
	members, err := tm.Members()
	if err != nil || !slices.Equal(members, []int{m1.Attrs().Index, m2.Attrs().Index}) {
		t.Errorf("Members() = %v, %v; want m1, m2", members, err)
	}
	for ifindex, id := range memberIDs {
		if got := linkID(t, tm.members[ifindex]); got != id {
			t.Errorf("adopted member %d link %d, want %d", ifindex, got, id)
		}
		if got := attachedLinks(t, ns, ifindex, ebpf.AttachTCXIngress); !slices.Equal(got, []link.ID{id}) {
			t.Errorf("ingress links on %d after Open %v, want [%d]", ifindex, got, id)
		}
	}
	if got, err := tm.Config(); err != nil || got.TeamIfindex != cfg.TeamIfindex || got.TeamMAC.String() != cfg.TeamMAC.String() ||
		got.Hash != cfg.Hash || got.Primary != cfg.Primary || got.BroadcastAll {
		t.Errorf("adopted Config() = %+v, %v; want %+v", got, err, cfg)
	}
	cfg2 := cfg
	cfg2.Hash, cfg2.BroadcastAll, cfg2.Flowlet = HashTransportPorts, true, DefaultFlowlet
	if err := tm.SetConfig(cfg2); err != nil {
		t.Error(err)
	}
	if got, err := tm.Config(); err != nil || got.Hash != cfg2.Hash || !got.BroadcastAll || got.Flowlet != DefaultFlowlet {
		t.Errorf("Config() after SetConfig = %+v, %v", got, err)
	}
	cfg3 := cfg2
	cfg3.Flowlet = -time.Microsecond
	if err := tm.SetConfig(cfg3); err == nil {
		t.Error("SetConfig accepted a negative flowlet gap")
	}
	cfg2.TeamIfindex = m1.Attrs().Index
	if err := tm.SetConfig(cfg2); err == nil {
		t.Error("SetConfig moved the team ifindex")
	}

	// DetachMember takes the link off the NIC and forgets the member.
	if err := tm.DetachMember(m2.Attrs().Index); err != nil {
		t.Fatal(err)
	}
	if err := tm.DetachMember(m2.Attrs().Index); err != nil {
		t.Errorf("second DetachMember: %v", err)
	}
	if got := attachedLinks(t, ns, m2.Attrs().Index, ebpf.AttachTCXIngress); len(got) != 0 {
		t.Errorf("ingress links on m2 after DetachMember: %v", got)
	}
	if _, err := os.Stat(memberPin(dir, m2.Attrs().Index)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("m2 pin after DetachMember: %v", err)
	}
	// Closed, not only detached: a link held open lives on in the kernel.
	waitLinkGone(t, memberIDs[m2.Attrs().Index])
	stats, err := tm.MemberStats()
	if _, ok := stats[m2.Attrs().Index]; err != nil || ok || len(stats) != 1 {
		t.Errorf("MemberStats() after DetachMember = %v, %v; want m1 only", stats, err)
	}

	if err := tm.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin dir after Destroy: %v", err)
	}
	waitLinkGone(t, egressID)
	waitLinkGone(t, memberIDs[m1.Attrs().Index])
	for ifindex, attach := range map[int]ebpf.AttachType{cfg.TeamIfindex: ebpf.AttachTCXEgress, m1.Attrs().Index: ebpf.AttachTCXIngress} {
		if got := attachedLinks(t, ns, ifindex, attach); len(got) != 0 {
			t.Errorf("%s links on %d after Destroy: %v", attach, ifindex, got)
		}
	}
	if _, err := Open(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open after Destroy: %v, want os.ErrNotExist", err)
	}
}

func TestCreateUndoesOnError(t *testing.T) {
	requireDatapath(t)
	ns, _, _ := testNetns(t)
	root := testBPFFS(t)
	dir := filepath.Join(root, "a", "b")
	err := nsdo.Do(ns, func() error {
		_, err := Create(dir, Config{TeamIfindex: 4000, TeamMAC: macA}) // no such interface
		return err
	})
	if err == nil {
		t.Fatal("Create on a missing interface succeeded")
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Create left %s behind: %v", filepath.Join(root, "a"), err)
	}
	if _, err := Create(dir, Config{TeamIfindex: 1, TeamMAC: macA[:4]}); err == nil {
		t.Error("Create accepted a 4-byte MAC")
	}
}

// TestRemoveHalfBuilt removes a team dir with pins missing (a Create killed
// midway or a tampered dir), which Open refuses.
func TestRemoveHalfBuilt(t *testing.T) {
	requireDatapath(t)
	ns, _, h := testNetns(t)
	team := addVeth(t, h, "tm0", "tm0p", 0, nil)
	m1 := addVeth(t, h, "m1", "m1p", 0, nil)
	dir := filepath.Join(testBPFFS(t), "tm0")
	if err := nsdo.Do(ns, func() error {
		tm, err := Create(dir, Config{TeamIfindex: team.Attrs().Index, TeamMAC: team.Attrs().HardwareAddr})
		if err != nil {
			return err
		}
		if err := tm.AttachMember(m1.Attrs().Index, m1.Attrs().HardwareAddr); err != nil {
			return err
		}
		return tm.Close()
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{teamMapConfig, pinIngressProg} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a half-built dir: %v, want os.ErrNotExist", err)
	}
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir after Remove: %v", err)
	}
	if got := attachedLinks(t, ns, m1.Attrs().Index, ebpf.AttachTCXIngress); len(got) != 0 {
		t.Errorf("ingress links on m1 after Remove: %v", got)
	}
	if got := attachedLinks(t, ns, team.Attrs().Index, ebpf.AttachTCXEgress); len(got) != 0 {
		t.Errorf("egress links on team after Remove: %v", got)
	}
	if err := Remove(dir); err != nil {
		t.Errorf("Remove of a missing dir: %v", err)
	}
}

// TestMemberInterfaceRecreated: a member NIC that disappears leaves a
// defunct link behind; when an interface with the same ifindex comes back,
// AttachMember must attach again rather than trust the old pin.
func TestMemberInterfaceRecreated(t *testing.T) {
	requireDatapath(t)
	ns, _, h := testNetns(t)
	team := addVeth(t, h, "tm0", "tm0p", 0, nil)
	const idx = 4242
	m1 := addVeth(t, h, "m1", "m1p", idx, nil)
	dir := filepath.Join(testBPFFS(t), "tm0")
	var tm *Team
	if err := nsdo.Do(ns, func() (err error) {
		if tm, err = Create(dir, Config{TeamIfindex: team.Attrs().Index, TeamMAC: team.Attrs().HardwareAddr}); err != nil {
			return err
		}
		return tm.AttachMember(idx, m1.Attrs().HardwareAddr)
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tm.Destroy() })
	if err := h.LinkDel(m1); err != nil {
		t.Fatal(err)
	}
	m1 = addVeth(t, h, "m1", "m1p", idx, nil)
	if m1.Attrs().Index != idx {
		t.Fatalf("recreated m1 has ifindex %d, want %d", m1.Attrs().Index, idx)
	}
	if got := attachedLinks(t, ns, idx, ebpf.AttachTCXIngress); len(got) != 0 {
		t.Fatalf("new m1 born with links %v", got)
	}
	if err := nsdo.Do(ns, func() error { return tm.AttachMember(idx, m1.Attrs().HardwareAddr) }); err != nil {
		t.Fatal(err)
	}
	if got := attachedLinks(t, ns, idx, ebpf.AttachTCXIngress); !slices.Equal(got, []link.ID{linkID(t, tm.members[idx])}) {
		t.Errorf("links on recreated m1 %v, want the new member link", got)
	}
	// A member whose NIC is gone for good can still be detached.
	if err := h.LinkDel(m1); err != nil {
		t.Fatal(err)
	}
	if err := tm.DetachMember(idx); err != nil {
		t.Errorf("DetachMember of a vanished NIC: %v", err)
	}
}
