package datapath

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/nsdo"
	"github.com/vishvananda/netlink"
)

// liveMembers makes veth members a and b (ifindexes 7 and 8, MACs macB and
// macC, b replacing the team MAC) in a namespace of the test's own, their
// devices learned as AttachMember learns them, each the other's fallback.
// It returns the handle of the namespace, where a member loses carrier when
// its peer ("<name>p") goes down.
func liveMembers(t *testing.T, team *Team) *netlink.Handle {
	t.Helper()
	ns, _, h := testNetns(t)
	for _, m := range []struct {
		name    string
		ifindex int
		mac     net.HardwareAddr
		flags   MemberFlags
	}{{"a", 7, macB, 0}, {"b", 8, macC, MemberTxOwnMAC}} {
		addVeth(t, h, m.name, m.name+"p", m.ifindex, nil)
		testMember(t, team, m.ifindex, m.mac, m.flags)
		if err := nsdo.Do(ns, func() error { return team.learnDevLocked(m.ifindex) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := team.SetFallbacks(map[int]int{7: 8, 8: 7}); err != nil {
		t.Fatal(err)
	}
	return h
}

func setLink(t *testing.T, h *netlink.Handle, name string, up bool) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if up {
		err = h.LinkSetUp(l)
	} else {
		err = h.LinkSetDown(l)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestEgressFailover checks that a frame whose chosen member has no carrier
// (or is down) leaves through the member's fallback, after every kind of
// choice, and through the chosen member when no fallback is up, when the
// device is stale, or without the failover program.
func TestEgressFailover(t *testing.T) {
	const a, b = 7, 8
	flow := testFrames["ipv4-tcp"]
	flow.src = macA // the team's own: b replaces it with its MAC
	frame := flow.bytes()
	bcast := testFrames["arp"].bytes()
	pinned := testFrames["ipv4-udp"]
	pinned.src = macD
	pinnedFrame := pinned.bytes()

	tests := []struct {
		name  string
		cfg   Config
		pin   bool
		setup func(t *testing.T, team *Team, h *netlink.Handle)
		frame []byte
		want  int // -1: a or b
	}{
		{name: "carrier: bucket's member", frame: frame, want: a},
		{name: "no carrier: fallback", frame: frame, want: b,
			setup: func(t *testing.T, _ *Team, h *netlink.Handle) { setLink(t, h, "ap", false) }},
		{name: "down: fallback", frame: frame, want: b,
			setup: func(t *testing.T, _ *Team, h *netlink.Handle) { setLink(t, h, "a", false) }},
		{name: "carrier back: bucket's member", frame: frame, want: a,
			setup: func(t *testing.T, team *Team, h *netlink.Handle) {
				setLink(t, h, "ap", false)
				if got := sendVia(t, team, frame); got != b {
					t.Fatalf("without carrier: left through %d, want %d", got, b)
				}
				setLink(t, h, "ap", true)
			}},
		{name: "no fallback", frame: frame, want: a,
			setup: func(t *testing.T, team *Team, h *netlink.Handle) {
				setLink(t, h, "ap", false)
				if err := team.SetFallbacks(map[int]int{a: 0}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "fallback without carrier too", frame: frame, want: a,
			setup: func(t *testing.T, _ *Team, h *netlink.Handle) {
				setLink(t, h, "ap", false)
				setLink(t, h, "bp", false)
			}},
		{name: "fallback detached", frame: frame, want: a,
			setup: func(t *testing.T, team *Team, h *netlink.Handle) {
				setLink(t, h, "ap", false)
				if err := team.DetachMember(b); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "member deleted: no crash, its own or its fallback", frame: frame, want: -1,
			setup: func(t *testing.T, _ *Team, h *netlink.Handle) {
				if err := h.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "a"}}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "device of another ifindex is not trusted", frame: frame, want: a,
			setup: func(t *testing.T, team *Team, h *netlink.Handle) {
				// a's entry points at b's device, which has no carrier:
				// as if a's device had been freed and b's allocated there.
				var ma, mb teamMember
				if err := team.maps.Members.Lookup(uint32(a), &ma); err != nil {
					t.Fatal(err)
				}
				if err := team.maps.Members.Lookup(uint32(b), &mb); err != nil {
					t.Fatal(err)
				}
				ma.Dev = mb.Dev
				if err := team.maps.Members.Put(uint32(a), &ma); err != nil {
					t.Fatal(err)
				}
				setLink(t, h, "bp", false)
			}},
		{name: "broadcast via primary: fallback", frame: bcast, want: b,
			cfg:   Config{Primary: a},
			setup: func(t *testing.T, _ *Team, h *netlink.Handle) { setLink(t, h, "ap", false) }},
		{name: "pinned port: fallback", frame: pinnedFrame, want: b, pin: true,
			cfg:   Config{Hash: HashSourceMAC, Primary: a, PortAffinity: true},
			setup: func(t *testing.T, _ *Team, h *netlink.Handle) { setLink(t, h, "ap", false) }},
		{name: "flowlet: fallback", frame: frame, want: b,
			cfg: Config{Flowlet: time.Hour},
			setup: func(t *testing.T, team *Team, h *netlink.Handle) {
				if got := sendVia(t, team, frame); got != a {
					t.Fatalf("first frame left through %d, want %d", got, a)
				}
				setLink(t, h, "ap", false)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.TeamIfindex, cfg.TeamMAC = 1, macA
			team := loadTeamForTest(t, cfg)
			h := liveMembers(t, team)
			// Every bucket names a; b holds none, as a standby would.
			setBuckets(t, team, uniform(a))
			if tt.pin {
				if err := team.SetAffinity(macD, a); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(t, team, h)
			}
			before, err := team.MemberStats()
			if err != nil {
				t.Fatal(err)
			}
			ret, out := run(t, team.egress, tt.frame)
			if ret != tcActRedirect {
				t.Fatalf("returned %d, want TC_ACT_REDIRECT", ret)
			}
			after, err := team.MemberStats()
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for id, c := range after {
				if c.TxPackets != before[id].TxPackets {
					got = id
				}
			}
			if got != tt.want && (tt.want != -1 || got == 0) {
				t.Fatalf("left through %d, want %d", got, tt.want)
			}
			if tt.want == -1 {
				t.Logf("left through %d", got)
			}
			if fell := after[b].TxFallback - before[b].TxFallback; fell != map[bool]uint64{true: 1}[got == b] {
				t.Errorf("TxFallback of %d grew by %d", b, fell)
			}
			// Leaving through b, the team's or a port's MAC is b's own.
			if got == b && (bytes.Equal(tt.frame[6:12], macA) || tt.pin) && !bytes.Equal(out[6:12], macC) {
				t.Errorf("source MAC %s through the fallback, want its own %s", net.HardwareAddr(out[6:12]), macC)
			}
		})
	}

	t.Run("without failover", func(t *testing.T) {
		team, plain := loadEgressesForTest(t, Config{TeamIfindex: 1, TeamMAC: macA})
		h := liveMembers(t, team)
		setBuckets(t, team, uniform(a))
		setLink(t, h, "ap", false)
		team.egress = plain
		if got := sendVia(t, team, frame); got != a {
			t.Errorf("team_egress sent through %d, want the bucket's %d", got, a)
		}
	})
}

func TestSetFallbacks(t *testing.T) {
	team := loadTeamForTest(t, Config{TeamIfindex: 1, TeamMAC: macA})
	testMember(t, team, 7, macB, MemberTxOwnMAC)
	testMember(t, team, 8, macC, 0)
	if err := team.SetFallbacks(map[int]int{7: 8, 8: 7, 9: 7}); err != nil {
		t.Fatal(err)
	}
	got, err := team.Fallbacks()
	if err != nil || len(got) != 2 || got[7] != 8 || got[8] != 7 {
		t.Fatalf("Fallbacks() = %v, %v; want 7→8, 8→7 (9 not attached)", got, err)
	}
	// Flags and MAC stay as they were.
	var m teamMember
	if err := team.maps.Members.Lookup(uint32(7), &m); err != nil || m.Flags != uint32(MemberTxOwnMAC) || !bytes.Equal(m.Mac[:], macB) {
		t.Errorf("member 7 after SetFallbacks: %+v, %v", m, err)
	}
	if err := team.SetMemberFlags(7, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := team.Fallbacks(); got[7] != 8 {
		t.Errorf("SetMemberFlags reset the fallback: %v", got)
	}
}

// TestCreateFailover: as root on this kernel (BTF, kfuncs) Create picks the
// egress program with failover, AttachMember learns the member's device,
// and Open recognises the program.
func TestCreateFailover(t *testing.T) {
	requireDatapath(t)
	ns, _, h := testNetns(t)
	tl := addVeth(t, h, "tm", "tmp", 0, nil)
	m := addVeth(t, h, "m1", "m1p", 0, nil)
	tm := attachedTeam(t, ns, Config{TeamIfindex: tl.Attrs().Index, TeamMAC: macA}, nil, m)
	if !tm.Failover() {
		t.Fatal("Create as root chose the egress program without failover")
	}
	var e teamMember
	if err := tm.maps.Members.Lookup(uint32(m.Attrs().Index), &e); err != nil || e.Dev == 0 {
		t.Errorf("member entry after AttachMember: %+v, %v; want its device learned", e, err)
	}
	o, err := Open(tm.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if !o.Failover() {
		t.Error("Open did not recognise the egress program with failover")
	}
}
