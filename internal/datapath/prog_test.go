package datapath

import (
	"bytes"
	"net"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

const (
	tcActOK       = 0
	tcActShot     = 2
	tcActRedirect = 7
)

// requireDatapath skips a test that needs BPF privileges when not root, and
// fails it when root but the kernel is reported unable to run the datapath:
// on the kernels nicteam targets that is a bug in Probe, not a reason to skip.
func requireDatapath(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loading BPF programs requires CAP_BPF and CAP_NET_ADMIN")
	}
	if err := Probe(); err != nil {
		t.Fatalf("Probe as root: %v", err)
	}
}

// loadTeamForTest loads the programs and maps without pinning or attaching,
// for BPF_PROG_TEST_RUN. The team's egress program is team_egress_fo, the
// one Create loads as root.
func loadTeamForTest(t testing.TB, cfg Config) *Team {
	t.Helper()
	team, _ := loadEgressesForTest(t, cfg)
	return team
}

// loadEgressesForTest is loadTeamForTest that also returns team_egress,
// the egress program without failover, on the same maps.
func loadEgressesForTest(t testing.TB, cfg Config) (*Team, *ebpf.Program) {
	t.Helper()
	requireDatapath(t)
	if err := ProbeFailover(); err != nil {
		t.Fatalf("ProbeFailover as root: %v", err)
	}
	var objs teamObjects
	if err := loadTeamObjects(&objs, nil); err != nil {
		t.Fatalf("load: %v", err)
	}
	team := &Team{maps: objs.teamMaps, egress: objs.TeamEgressFo, ingress: objs.TeamIngress, learn: objs.TeamLearnDev, members: map[int]link.Link{}}
	t.Cleanup(func() {
		_ = team.Close()
		_ = objs.TeamEgress.Close()
	})
	if err := team.writeConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return team, objs.TeamEgress
}

func run(t *testing.T, prog *ebpf.Program, frame []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(frame)+64)
	opts := ebpf.RunOptions{Data: frame, DataOut: out}
	ret, err := prog.Run(&opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return ret, opts.DataOut
}

// testMember adds a member's map entries as AttachMember does, without a link.
func testMember(t testing.TB, team *Team, ifindex int, mac net.HardwareAddr, flags MemberFlags) {
	t.Helper()
	m := teamMember{Flags: uint32(flags)}
	copy(m.Mac[:], mac)
	if err := team.maps.Members.Put(uint32(ifindex), &m); err != nil {
		t.Fatal(err)
	}
	if err := team.maps.MemberStats.Put(uint32(ifindex), make([]teamMemberCounters, ebpf.MustPossibleCPU())); err != nil {
		t.Fatal(err)
	}
}

// TestEgressHashMatchesGo runs every test frame through the egress program
// under every policy and checks that the bucket it counted is the one Hash
// predicts.
func TestEgressHashMatchesGo(t *testing.T) {
	team := loadTeamForTest(t, Config{TeamIfindex: 1, TeamMAC: macA})
	for _, policy := range allPolicies {
		if err := team.writeConfig(Config{TeamIfindex: 1, TeamMAC: macA, Hash: policy}); err != nil {
			t.Fatal(err)
		}
		for name, f := range testFrames {
			b := f.bytes()
			before, err := team.BucketStats()
			if err != nil {
				t.Fatal(err)
			}
			if ret, _ := run(t, team.egress, b); ret != tcActShot {
				t.Errorf("%s/%s: empty bucket table returned %d, want TC_ACT_SHOT", policy, name, ret)
			}
			after, err := team.BucketStats()
			if err != nil {
				t.Fatal(err)
			}
			want := Hash(policy, b) % NumBuckets
			for i := range after {
				d := after[i].Packets - before[i].Packets
				switch {
				case uint32(i) == want && (d != 1 || after[i].Bytes-before[i].Bytes != uint64(len(b))):
					t.Errorf("%s/%s: bucket %d (Hash's) counted %d frames, %d bytes; want 1, %d",
						policy, name, i, d, after[i].Bytes-before[i].Bytes, len(b))
				case uint32(i) != want && d != 0:
					t.Errorf("%s/%s: program chose bucket %d, Hash says %d", policy, name, i, want)
				}
			}
		}
	}
	drops, err := team.EgressDrops()
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(allPolicies) * len(testFrames)); drops != want {
		t.Errorf("EgressDrops = %d, want %d", drops, want)
	}
}

func TestEgressRedirectAndCounters(t *testing.T) {
	team := loadTeamForTest(t, Config{TeamIfindex: 1, TeamMAC: macA})
	testMember(t, team, 7, macB, 0)
	testMember(t, team, 8, macC, MemberTxOwnMAC)
	var b [NumBuckets]uint32
	for i := range b {
		b[i] = uint32(7 + i%2)
	}
	if err := team.SetBuckets(b); err != nil {
		t.Fatal(err)
	}
	if got, err := team.Buckets(); err != nil || got != b {
		t.Fatalf("Buckets() = %v, %v; want what was set", got, err)
	}

	// Find one frame per member: vary the source port until each bucket
	// parity has been seen.
	sent := map[uint32][]byte{}
	f := testFrames["ipv4-tcp"]
	f.src = macA // the team MAC: member 8 replaces it
	for port := uint16(1); len(sent) < 2; port++ {
		f.sport = port
		fb := f.bytes()
		sent[b[Hash(HashTransportPorts, fb)%NumBuckets]] = fb
	}
	for ifindex, fb := range sent {
		ret, out := run(t, team.egress, fb)
		if ret != tcActRedirect {
			t.Fatalf("member %d: returned %d, want TC_ACT_REDIRECT", ifindex, ret)
		}
		wantSrc := macA
		if ifindex == 8 {
			wantSrc = macC
		}
		if !bytes.Equal(out[6:12], wantSrc) || !bytes.Equal(out[12:], fb[12:]) || !bytes.Equal(out[:6], fb[:6]) {
			t.Errorf("member %d: frame out % x, want source %s and nothing else changed", ifindex, out[:14], wantSrc)
		}
	}
	// A frame not from the team MAC (a bridged container) keeps its source.
	f.src = macB
	var fb []byte
	for port := uint16(1); ; port++ {
		f.sport = port
		if fb = f.bytes(); b[Hash(HashTransportPorts, fb)%NumBuckets] == 8 {
			break
		}
	}
	if _, out := run(t, team.egress, fb); !bytes.Equal(out, fb) {
		t.Errorf("frame from another MAC changed: % x", out[:14])
	}

	stats, err := team.MemberStats()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]MemberCounters{
		7: {TxPackets: 1, TxBytes: uint64(len(sent[7]))},
		8: {TxPackets: 2, TxBytes: uint64(len(sent[8]) + len(fb))},
	}
	if len(stats) != 2 || stats[7] != want[7] || stats[8] != want[8] {
		t.Errorf("MemberStats() = %+v, want %+v", stats, want)
	}
	if drops, err := team.EgressDrops(); err != nil || drops != 0 {
		t.Errorf("EgressDrops() = %d, %v; want 0", drops, err)
	}
}

// TestEgressNeighbourViaPrimary checks that ARP and neighbour discovery
// leave through the primary although every bucket names the other member,
// and that everything else, and ARP/ND where the rule does not apply, follows
// the bucket.
func TestEgressNeighbourViaPrimary(t *testing.T) {
	const primary, other = 7, 8
	// Unicast ICMPv6 from the team MAC: only ND (133-137) goes to the
	// primary. (Multicast goes there anyway, whatever it carries.)
	icmp6 := func(typ byte) frame {
		return frame{dst: macC, src: macA, srcIP: v6("fe80::a1"), dstIP: v6("fe80::c3"), proto: 58, icmpType: typ, payload: 16}
	}
	arpReply := frame{dst: macC, src: macA, typ: 0x0806}
	arpRequest := testFrames["arp"] // broadcast
	arpRequest.src = macA
	behindFragment := icmp6(135)
	behindFragment.fragOff = 0x0001
	v4icmp := testFrames["ipv4-icmp"]
	v4icmp.icmpType = 135 // an ICMPv4 type, not ND
	v4icmp.src = macA     // the team's own: only is_neigh keeps it off the primary
	// An endpoint behind the team (a container on a bridge above it) sends
	// with its own MAC: its unicast neighbour discovery follows its bucket,
	// its broadcasts leave through the primary like everyone's.
	endpointReply := arpReply
	endpointReply.src = macD
	endpointNS := icmp6(135)
	endpointNS.src = macD
	endpointRequest := arpRequest
	endpointRequest.src = macD
	ownTCP := testFrames["ipv6-tcp"]
	ownTCP.src = macA
	multicastEcho := icmp6(128)
	multicastEcho.dst, multicastEcho.dstIP = macMC, v6("ff02::1")

	primaryCfg := Config{Primary: primary}
	tests := []struct {
		name string
		cfg  Config
		in   frame
		want int // member the frame leaves through
	}{
		{"arp reply", primaryCfg, arpReply, primary},
		{"arp request (broadcast)", primaryCfg, arpRequest, primary},
		{"router solicitation", primaryCfg, icmp6(133), primary},
		{"router advertisement", primaryCfg, icmp6(134), primary},
		{"neighbour solicitation", primaryCfg, icmp6(135), primary},
		{"neighbour advertisement", primaryCfg, icmp6(136), primary},
		{"redirect", primaryCfg, icmp6(137), primary},
		{"multicast echo", primaryCfg, multicastEcho, primary},
		{"echo request", primaryCfg, icmp6(128), other},
		{"mld done", primaryCfg, icmp6(132), other},
		{"icmpv6 138", primaryCfg, icmp6(138), other},
		{"ns behind fragment header", primaryCfg, behindFragment, other},
		{"icmpv4 type 135", primaryCfg, v4icmp, other},
		{"tcp", primaryCfg, ownTCP, other},
		{"arp reply of an endpoint", primaryCfg, endpointReply, other},
		{"ns of an endpoint", primaryCfg, endpointNS, other},
		{"arp request of an endpoint", primaryCfg, endpointRequest, primary},
		{"arp without primary", Config{}, arpReply, other},
		{"broadcast without primary", Config{}, arpRequest, other},
		{"arp broadcast-all", Config{Primary: primary, BroadcastAll: true}, arpRequest, other},
		{"ns broadcast-all", Config{Primary: primary, BroadcastAll: true}, icmp6(135), other},
		// Under HyperVPort the team NIC is a port like any, pinned to the
		// primary; unpinned endpoints broadcast through it too.
		{"team's own tcp, source-mac", Config{Primary: primary, Hash: HashSourceMAC}, ownTCP, primary},
		{"team's own arp, source-mac", Config{Primary: primary, Hash: HashSourceMAC}, arpRequest, primary},
		{"unpinned endpoint's arp request, source-mac", Config{Primary: primary, Hash: HashSourceMAC, PortAffinity: true}, endpointRequest, primary},
		{"unpinned endpoint's arp reply, source-mac", Config{Primary: primary, Hash: HashSourceMAC, PortAffinity: true}, endpointReply, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.TeamIfindex, cfg.TeamMAC = 1, macA
			team := loadTeamForTest(t, cfg)
			testMember(t, team, primary, macB, 0)
			// Had the frame left through the other member, its source
			// would have become that member's MAC.
			testMember(t, team, other, macC, MemberTxOwnMAC)
			b := uniform(other)
			if err := team.SetBuckets(b); err != nil {
				t.Fatal(err)
			}

			in := tt.in.bytes()
			ret, out := run(t, team.egress, in)
			if ret != tcActRedirect {
				t.Fatalf("returned %d, want TC_ACT_REDIRECT", ret)
			}
			stats, err := team.MemberStats()
			if err != nil {
				t.Fatal(err)
			}
			if stats[tt.want].TxPackets != 1 || stats[primary].TxPackets+stats[other].TxPackets != 1 {
				t.Errorf("tx packets: primary %d, other %d; want the frame on member %d",
					stats[primary].TxPackets, stats[other].TxPackets, tt.want)
			}
			bs, err := team.BucketStats()
			if err != nil {
				t.Fatal(err)
			}
			var hashed uint64
			for _, c := range bs {
				hashed += c.Packets
			}
			if viaBucket := tt.want == other; hashed != 0 != viaBucket {
				t.Errorf("%d frames counted in buckets; want them counted: %t", hashed, viaBucket)
			}
			if tt.want == primary && !bytes.Equal(out, in) {
				t.Errorf("frame through the primary changed:\n% x\nwant\n% x", out, in)
			}
		})
	}
}

// TestIngress runs frames through the member program. BPF_PROG_TEST_RUN
// runs it on lo (ifindex 1), so the member under test is ifindex 1.
func TestIngress(t *testing.T) {
	const member = 1
	memberMAC := macB
	unicast := testFrames["ipv4-udp"]
	unicast.dst = macA // the team MAC
	toMember := unicast
	toMember.dst = memberMAC
	toOther := unicast
	toOther.dst = macC
	bcast := testFrames["arp"]
	mcast := testFrames["ipv4-udp"]
	mcast.dst = macMC
	lacp := frame{dst: macLAC, src: macC, typ: 0x8809}

	tests := []struct {
		name    string
		cfg     Config
		flags   MemberFlags
		in      frame
		ret     uint32
		dst     net.HardwareAddr // after the program; nil: unchanged
		rx      uint64
		dropped uint64
	}{
		{name: "lacp on non-primary", cfg: Config{Primary: 2}, in: lacp, ret: tcActOK},
		{name: "lacp while rx disabled", cfg: Config{Primary: member}, flags: MemberRxDisabled, in: lacp, ret: tcActOK},
		{name: "broadcast on non-primary", cfg: Config{Primary: 2}, in: bcast, ret: tcActShot, dropped: 1},
		{name: "multicast on non-primary", cfg: Config{Primary: 2}, in: mcast, ret: tcActShot, dropped: 1},
		{name: "broadcast with no primary", cfg: Config{}, in: bcast, ret: tcActShot, dropped: 1},
		{name: "broadcast on primary", cfg: Config{Primary: member}, in: bcast, ret: tcActRedirect, rx: 1},
		{name: "multicast on primary", cfg: Config{Primary: member}, in: mcast, ret: tcActRedirect, rx: 1},
		{name: "broadcast-all", cfg: Config{Primary: 2, BroadcastAll: true}, in: bcast, ret: tcActRedirect, rx: 1},
		{name: "to team MAC", cfg: Config{Primary: 2}, in: unicast, ret: tcActRedirect, rx: 1},
		{name: "to member MAC", cfg: Config{Primary: 2}, in: toMember, ret: tcActRedirect, dst: macA, rx: 1},
		{name: "to another MAC", cfg: Config{Primary: 2}, in: toOther, ret: tcActRedirect, rx: 1},
		{name: "vlan to member MAC", cfg: Config{Primary: 2}, in: func() frame { f := toMember; f.vlan = 0x8100; return f }(), ret: tcActRedirect, dst: macA, rx: 1},
		{name: "rx disabled", cfg: Config{Primary: member}, flags: MemberRxDisabled, in: unicast, ret: tcActShot, dropped: 1},
		{name: "rx disabled broadcast", cfg: Config{Primary: member}, flags: MemberRxDisabled, in: bcast, ret: tcActShot, dropped: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.TeamIfindex, cfg.TeamMAC = 9, macA
			team := loadTeamForTest(t, cfg)
			testMember(t, team, member, memberMAC, tt.flags)
			in := tt.in.bytes()
			ret, out := run(t, team.ingress, in)
			if ret != tt.ret {
				t.Errorf("returned %d, want %d", ret, tt.ret)
			}
			want := append([]byte{}, in...)
			if tt.dst != nil {
				copy(want, tt.dst)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("frame out\n% x\nwant\n% x", out, want)
			}
			stats, err := team.MemberStats()
			if err != nil {
				t.Fatal(err)
			}
			wantStats := MemberCounters{RxPackets: tt.rx, RxDropped: tt.dropped}
			if tt.rx > 0 {
				wantStats.RxBytes = uint64(len(in))
			}
			if stats[member] != wantStats {
				t.Errorf("counters %+v, want %+v", stats[member], wantStats)
			}
		})
	}
}

// A member missing from the maps (the moment between DetachMember's steps)
// is still forwarded, just not counted.
func TestIngressUnknownMember(t *testing.T) {
	team := loadTeamForTest(t, Config{TeamIfindex: 9, TeamMAC: macA, Primary: 1})
	if ret, _ := run(t, team.ingress, testFrames["ipv4-tcp"].bytes()); ret != tcActRedirect {
		t.Errorf("returned %d, want TC_ACT_REDIRECT", ret)
	}
}
