package datapath

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/nsdo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestTraffic sends real frames through the datapath:
//
//	netns A: tm0 (team, 10.99.0.1) ─ tm0p      netns B: br0 ─ m1p, m2p, h0p
//	         m1 ──────────────────────────────────────────── m1p
//	         m2 ──────────────────────────────────────────── m2p
//	                                                  h0 (10.99.0.2) ─ h0p
//
// The bridge floods broadcasts to both members, so this also exercises the
// primary-only rule: without it every ARP request would arrive twice.
func TestTraffic(t *testing.T) {
	requireDatapath(t)
	ping, err := exec.LookPath("ping")
	if err != nil {
		t.Skipf("ping not installed (iputils-ping): %v", err)
	}
	nsA, nsB, hA, hB, team, m1, m2 := bridgedTeam(t)

	tm := attachedTeam(t, nsA, Config{TeamIfindex: team.Attrs().Index, TeamMAC: team.Attrs().HardwareAddr, Hash: HashTransportPorts, Primary: m1.Attrs().Index}, nil, m1, m2)

	pingFrom := func(ns netns.NsHandle, to string) error {
		return nsdo.Do(ns, func() error {
			out, err := exec.Command(ping, "-c", "3", "-i", "0.2", "-W", "1", to).CombinedOutput()
			if err != nil {
				return fmt.Errorf("ping: %w\n%s", err, out)
			}
			return nil
		})
	}

	// No member in the buckets: everything the team sends is dropped.
	if err := nsdo.Do(nsA, func() error {
		return exec.Command(ping, "-c", "1", "-W", "1", "10.99.0.2").Run()
	}); err == nil {
		t.Fatal("ping worked with an empty bucket table")
	}
	if drops, err := tm.EgressDrops(); err != nil || drops == 0 {
		t.Errorf("EgressDrops() = %d, %v; want > 0", drops, err)
	}

	// Each round the team resolves the peer afresh: its ARP request leaves
	// through the primary m1 whatever the buckets say, the echo requests
	// through the member the buckets name.
	primary := m1
	for _, active := range []netlink.Link{m1, m2} {
		b := uniform(uint32(active.Attrs().Index))
		if err := tm.SetBuckets(b); err != nil {
			t.Fatal(err)
		}
		flushNeighbours(t, hA, team)
		before, err := tm.MemberStats()
		if err != nil {
			t.Fatal(err)
		}
		if err := pingFrom(nsA, "10.99.0.2"); err != nil {
			t.Fatalf("all buckets on %s: %v", active.Attrs().Name, err)
		}
		after, err := tm.MemberStats()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []netlink.Link{m1, m2} {
			tx := after[m.Attrs().Index].TxPackets - before[m.Attrs().Index].TxPackets
			switch {
			case m == active && tx < 3:
				t.Errorf("buckets on %s: it sent %d frames, want ≥ 3 echo requests", active.Attrs().Name, tx)
			case m != active && m == primary && tx == 0:
				t.Errorf("buckets on %s: primary %s sent no ARP request", active.Attrs().Name, m.Attrs().Name)
			case m != active && m != primary && tx != 0:
				t.Errorf("buckets on %s: %s sent %d frames", active.Attrs().Name, m.Attrs().Name, tx)
			}
		}
		// Replies come back on whichever port the bridge learned the team
		// MAC on, which is the active member once it has sent.
		if rx := after[active.Attrs().Index].RxPackets - before[active.Attrs().Index].RxPackets; rx < 3 {
			t.Errorf("buckets on %s: it received %d frames, want ≥ 3 echo replies", active.Attrs().Name, rx)
		}
	}

	// The peer resolves the team afresh: its ARP request is flooded to both
	// members and only the primary's copy may reach the team.
	h0, err := hB.LinkByName("h0")
	if err != nil {
		t.Fatal(err)
	}
	flushNeighbours(t, hB, h0)
	before, err := tm.MemberStats()
	if err != nil {
		t.Fatal(err)
	}
	if err := pingFrom(nsB, "10.99.0.1"); err != nil {
		t.Fatalf("peer to team: %v", err)
	}
	after, err := tm.MemberStats()
	if err != nil {
		t.Fatal(err)
	}
	if d := after[m2.Attrs().Index].RxDropped - before[m2.Attrs().Index].RxDropped; d == 0 {
		t.Error("non-primary m2 dropped no flooded frame")
	}
	if d := after[m1.Attrs().Index].RxDropped - before[m1.Attrs().Index].RxDropped; d != 0 {
		t.Errorf("primary m1 dropped %d frames", d)
	}

	// Bulk TCP both ways: the team's GSO frames leave whole through the
	// member (the counters see frames larger than the MTU), and what the
	// members receive is delivered intact. All buckets are on m2 since the
	// loop above, and the bridge has learned the team MAC behind m2p from
	// the last echo replies (the ARP reply before them left through m1).
	for _, dir := range []struct {
		name         string
		listen, dial netns.NsHandle
		addr         string
		counted      int // member whose counters see the bulk
		tx           bool
	}{
		{"team to peer", nsB, nsA, "10.99.0.2:0", m2.Attrs().Index, true},
		{"peer to team", nsA, nsB, "10.99.0.1:0", m2.Attrs().Index, false},
	} {
		before, err := tm.MemberStats()
		if err != nil {
			t.Fatal(err)
		}
		const size = 64 << 20
		elapsed, err := tcpTransfer(dir.listen, dir.dial, dir.addr, size)
		if err != nil {
			t.Fatalf("%s: %v", dir.name, err)
		}
		after, err := tm.MemberStats()
		if err != nil {
			t.Fatal(err)
		}
		a, b := after[dir.counted], before[dir.counted]
		packets, bytes := a.RxPackets-b.RxPackets, a.RxBytes-b.RxBytes
		if dir.tx {
			packets, bytes = a.TxPackets-b.TxPackets, a.TxBytes-b.TxBytes
		}
		t.Logf("%s: %d MiB in %v (%.1f Gbit/s), %d frames of %d bytes on average",
			dir.name, size>>20, elapsed, float64(size)*8/elapsed.Seconds()/1e9, packets, bytes/max(packets, 1))
		if bytes < size {
			t.Errorf("%s: member counted %d bytes, want ≥ %d", dir.name, bytes, size)
		}
		if dir.tx && bytes/max(packets, 1) <= 1514 {
			t.Errorf("%s: %d bytes per frame: GSO frames did not pass whole", dir.name, bytes/max(packets, 1))
		}
	}

	// Source MAC replacement and its return path: m2 sends with its own
	// MAC, the peer answers to that MAC, and the ingress program rewrites
	// it to the team MAC. Without the rewrite the team's stack would see
	// PACKET_OTHERHOST and drop the replies.
	if err := tm.SetMemberFlags(m2.Attrs().Index, MemberTxOwnMAC); err != nil {
		t.Fatal(err)
	}
	if err := hB.NeighSet(&netlink.Neigh{LinkIndex: h0.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: net.ParseIP("10.99.0.1"), HardwareAddr: m2.Attrs().HardwareAddr}); err != nil {
		t.Fatal(err)
	}
	if err := pingFrom(nsA, "10.99.0.2"); err != nil {
		t.Fatalf("replies to the member MAC: %v", err)
	}
	if err := pingFrom(nsB, "10.99.0.1"); err != nil {
		t.Fatalf("requests to the member MAC: %v", err)
	}
}

// bridgedTeam builds TestTraffic's topology, without the datapath: a team
// interface tm0 (10.99.0.1) and members m1, m2 in one namespace, a bridge
// joining the members' peers and a host h0 (10.99.0.2) in another.
func bridgedTeam(t *testing.T) (nsA, nsB netns.NsHandle, hA, hB *netlink.Handle, team, m1, m2 netlink.Link) {
	t.Helper()
	nsA, _, hA = testNetns(t)
	nsB, _, hB = testNetns(t)

	team = addVeth(t, hA, "tm0", "tm0p", 0, nil)
	m1 = addVeth(t, hA, "m1", "m1p", 0, &nsB)
	m2 = addVeth(t, hA, "m2", "m2p", 0, &nsB)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := hB.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	addVeth(t, hB, "h0", "h0p", 0, nil)
	for _, port := range []string{"m1p", "m2p", "h0p"} {
		l, err := hB.LinkByName(port)
		if err != nil {
			t.Fatal(err)
		}
		if err := hB.LinkSetMaster(l, br); err != nil {
			t.Fatal(err)
		}
		if err := hB.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := hB.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	addAddr(t, hA, "tm0", "10.99.0.1/24")
	addAddr(t, hB, "h0", "10.99.0.2/24")
	return nsA, nsB, hA, hB, team, m1, m2
}

// tcpTransfer sends size bytes over TCP from a socket in dial to a listener
// in listen (addr picks its address) and returns how long it took.
func tcpTransfer(listen, dial netns.NsHandle, addr string, size int64) (time.Duration, error) {
	var ln net.Listener
	if err := nsdo.Do(listen, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		return 0, err
	}
	defer ln.Close()
	received := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if err == nil && n != size {
			err = fmt.Errorf("received %d bytes, want %d", n, size)
		}
		received <- err
	}()
	var c net.Conn
	if err := nsdo.Do(dial, func() (err error) { c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); return err }); err != nil {
		return 0, err
	}
	start := time.Now()
	_ = c.SetDeadline(start.Add(20 * time.Second))
	_, err := io.CopyN(c, zeroReader{}, size)
	c.Close()
	if err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	if err := <-received; err != nil {
		return 0, fmt.Errorf("receive: %w", err)
	}
	return time.Since(start), nil
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// flushNeighbours deletes the IPv4 neighbour entries of l.
func flushNeighbours(t *testing.T, h *netlink.Handle, l netlink.Link) {
	t.Helper()
	neighs, err := h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if err := h.NeighDel(&n); err != nil {
			t.Fatal(err)
		}
	}
}

func addAddr(t *testing.T, h *netlink.Handle, dev, cidr string) {
	t.Helper()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(l, addr); err != nil {
		t.Fatalf("add %s to %s: %v", cidr, dev, err)
	}
}

// attachedTeam creates a datapath in ns (pinned on a test bpffs) with
// buckets, if given, written before members are attached, attaches members
// and destroys it all in Cleanup.
func attachedTeam(t *testing.T, ns netns.NsHandle, cfg Config, buckets *[NumBuckets]uint32, members ...netlink.Link) *Team {
	t.Helper()
	dir := filepath.Join(testBPFFS(t), "tm0")
	var tm *Team
	if err := nsdo.Do(ns, func() (err error) {
		if tm, err = Create(dir, cfg); err != nil {
			return err
		}
		if buckets != nil {
			if err := tm.SetBuckets(*buckets); err != nil {
				return err
			}
		}
		for _, m := range members {
			if err := tm.AttachMember(m.Attrs().Index, m.Attrs().HardwareAddr); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tm.Destroy(); err != nil {
			t.Error(err)
		}
	})
	return tm
}
