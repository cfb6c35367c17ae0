package datapath

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/nicteam/nicteam/internal/nsdo"
	"github.com/nicteam/nicteam/internal/seqstream"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestFlowlets drives one TCP flow through the egress program while the
// control plane rewrites the bucket table. Time is real (BPF has no clock to
// inject), so the gaps are either far above the test's run time (1 h: the
// flow must stay) or far below the time between two runs (1 ns: it must
// move at once).
func TestFlowlets(t *testing.T) {
	const a, b = 7, 8
	flow := testFrames["ipv4-tcp"].bytes()
	bucket := Hash(HashTransportPorts, flow) % NumBuckets
	tableOf := func(rest, flowBucket uint32) [NumBuckets]uint32 {
		tb := uniform(rest)
		tb[bucket] = flowBucket
		return tb
	}

	tests := []struct {
		name   string
		gap    time.Duration
		change func(t *testing.T, team *Team) // after the first frame went to a
		want   int                            // member of the second frame
		moves  uint64
	}{
		{name: "off: follows its bucket", gap: 0, want: b,
			change: func(t *testing.T, team *Team) { setBuckets(t, team, tableOf(a, b)) }},
		{name: "within the gap: stays", gap: time.Hour, want: a,
			change: func(t *testing.T, team *Team) { setBuckets(t, team, tableOf(a, b)) }},
		{name: "after the gap: moves", gap: time.Nanosecond, want: b, moves: 1,
			change: func(t *testing.T, team *Team) { setBuckets(t, team, tableOf(a, b)) }},
		{name: "bucket unchanged after the gap", gap: time.Nanosecond, want: a,
			change: func(t *testing.T, team *Team) { setBuckets(t, team, tableOf(b, a)) }},
		{name: "member left the table: moves at once", gap: time.Hour, want: b, moves: 1,
			change: func(t *testing.T, team *Team) { setBuckets(t, team, tableOf(b, b)) }},
		{name: "member detached: moves at once", gap: time.Hour, want: b, moves: 1,
			change: func(t *testing.T, team *Team) {
				setBuckets(t, team, tableOf(a, b))
				if err := team.DetachMember(a); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "member flags rewritten: stays", gap: time.Hour, want: a,
			change: func(t *testing.T, team *Team) {
				setBuckets(t, team, tableOf(a, b))
				if err := team.SetMemberFlags(a, MemberTxOwnMAC); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "member back in the table: a moved flow stays moved", gap: time.Hour, want: b, moves: 1,
			change: func(t *testing.T, team *Team) {
				setBuckets(t, team, tableOf(b, b))
				if got := sendVia(t, team, flow); got != b {
					t.Fatalf("frame after a left the table went to %d, want %d", got, b)
				}
				setBuckets(t, team, tableOf(b, a))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			team := loadTeamForTest(t, Config{TeamIfindex: 1, TeamMAC: macA, Flowlet: tt.gap})
			testMember(t, team, a, macB, 0)
			testMember(t, team, b, macC, 0)
			setBuckets(t, team, tableOf(b, a))
			if got := sendVia(t, team, flow); got != a {
				t.Fatalf("first frame left through %d, want %d", got, a)
			}
			tt.change(t, team)
			if got := sendVia(t, team, flow); got != tt.want {
				t.Errorf("second frame left through %d, want %d", got, tt.want)
			}
			if moves, err := team.FlowletMoves(); err != nil || moves != tt.moves {
				t.Errorf("FlowletMoves() = %d, %v; want %d", moves, err, tt.moves)
			}
			// Load is the bucket's, whichever member carried it.
			bs, err := team.BucketStats()
			if err != nil {
				t.Fatal(err)
			}
			if bs[bucket].Packets < 2 {
				t.Errorf("bucket %d counted %d frames, want all", bucket, bs[bucket].Packets)
			}
		})
	}
}

// TestMemberInTable checks that the datapath's own member flag follows the
// bucket table and that callers can neither set nor clear it.
func TestMemberInTable(t *testing.T) {
	const a, b = 7, 8
	team := loadTeamForTest(t, Config{TeamIfindex: 1, TeamMAC: macA})
	testMember(t, team, a, macB, 0)
	testMember(t, team, b, macC, 0)
	check := func(when string, wantA, wantB bool) {
		t.Helper()
		for id, want := range map[uint32]bool{a: wantA, b: wantB} {
			var m teamMember
			if err := team.maps.Members.Lookup(id, &m); err != nil {
				t.Fatal(err)
			}
			if got := MemberFlags(m.Flags)&memberInTable != 0; got != want {
				t.Errorf("%s: member %d in table: %t, want %t", when, id, got, want)
			}
		}
	}
	var tb [NumBuckets]uint32
	for i := range tb {
		tb[i] = uint32(a + i%2)
	}
	setBuckets(t, team, tb)
	check("both in the table", true, true)
	if err := team.SetMemberFlags(a, MemberTxOwnMAC); err != nil {
		t.Fatal(err)
	}
	check("after SetMemberFlags", true, true)
	if err := team.SetMemberFlags(a, memberInTable); err == nil {
		t.Error("SetMemberFlags accepted the datapath's own flag")
	}
	for i := range tb {
		tb[i] = b
	}
	setBuckets(t, team, tb)
	check("a out of the table", false, true)
	var m teamMember
	if err := team.maps.Members.Lookup(uint32(a), &m); err != nil || MemberFlags(m.Flags) != MemberTxOwnMAC {
		t.Errorf("flags of a = %#x, %v; want MemberTxOwnMAC kept", m.Flags, err)
	}
	// A table naming a member that is not attached is no error.
	tb[0] = 99
	setBuckets(t, team, tb)
	if err := team.maps.Members.Lookup(uint32(99), &m); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("lookup of unattached member 99: %v, want ErrKeyNotExist", err)
	}
}

func setBuckets(t *testing.T, team *Team, b [NumBuckets]uint32) {
	t.Helper()
	if err := team.SetBuckets(b); err != nil {
		t.Fatal(err)
	}
}

// uniform returns a bucket table whose every bucket names member.
func uniform(member uint32) (tb [NumBuckets]uint32) {
	for i := range tb {
		tb[i] = member
	}
	return tb
}

// sendVia runs frame through the egress program and returns the member it
// left through, by the members' tx counters (0 if dropped).
func sendVia(t *testing.T, team *Team, frame []byte) int {
	t.Helper()
	before, err := team.MemberStats()
	if err != nil {
		t.Fatal(err)
	}
	ret, _ := run(t, team.egress, frame)
	after, err := team.MemberStats()
	if err != nil {
		t.Fatal(err)
	}
	if ret != tcActRedirect {
		return 0
	}
	for id, c := range after {
		if c.TxPackets != before[id].TxPackets {
			return id
		}
	}
	t.Fatalf("redirected but counted on no member")
	return 0
}

// TestFlowletTraffic sends a sequenced UDP stream through a team whose m2
// path is slow (a token bucket queues the bursts it gets), and flips the
// stream's bucket between the members in the middle of every burst and
// between bursts. Without flowlets the half burst sent through m1 overtakes
// the half still queued on m2. With a gap well above that queueing delay the
// flow moves only between bursts, and not one packet is reordered.
func TestFlowletTraffic(t *testing.T) {
	requireDatapath(t)
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skipf("tc not installed (iproute2): %v", err)
	}
	const bursts = 20
	for _, tt := range []struct {
		name string
		gap  time.Duration
	}{
		{"off", 0},
		{"20ms", 20 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep, moves := flowletStream(t, tt.gap, bursts)
			t.Logf("gap %v: %d of %d received, %d reordered, max one-way delay %dµs; %d flowlet moves",
				tt.gap, rep.Received, rep.Sent, rep.Reordered, rep.MaxDelayUs, moves)
			if rep.Lost != 0 || !rep.Ended {
				t.Errorf("lost %d packets (end marker seen: %t), want none", rep.Lost, rep.Ended)
			}
			switch {
			case tt.gap == 0 && rep.Reordered == 0:
				t.Error("no packet reordered without flowlets: the test does not provoke reordering")
			case tt.gap > 0 && rep.Reordered != 0:
				t.Errorf("%d packets reordered with flowlets, want none", rep.Reordered)
			case tt.gap > 0 && moves < bursts/2:
				t.Errorf("the flow moved %d times in %d bursts, want one move per burst", moves, bursts)
			}
		})
	}
}

// flowletStream runs TestFlowletTraffic's stream through a new team with
// the given flowlet gap and returns what the receiver saw and how many
// flowlet moves the datapath counted.
func flowletStream(t *testing.T, gap time.Duration, bursts int) (seqstream.Report, uint64) {
	const (
		perBurst = 20
		size     = 1200
		pause    = 2 * 20 * time.Millisecond // above the gap plus the m2 queue's drain time
	)
	nsA, nsB, hA, hB, team, m1, m2 := bridgedTeam(t)
	h0, err := hB.LinkByName("h0")
	if err != nil {
		t.Fatal(err)
	}
	h0p, err := hB.LinkByName("h0p")
	if err != nil {
		t.Fatal(err)
	}
	// No ARP and no flooding: only the stream crosses the members.
	if err := hA.NeighSet(&netlink.Neigh{LinkIndex: team.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: net.ParseIP("10.99.0.2"), HardwareAddr: h0.Attrs().HardwareAddr}); err != nil {
		t.Fatal(err)
	}
	if err := hB.NeighAdd(&netlink.Neigh{LinkIndex: h0p.Attrs().Index, Family: unix.AF_BRIDGE, State: netlink.NUD_NOARP, // static; PERMANENT would mean the bridge's own
		Flags: netlink.NTF_MASTER, HardwareAddr: h0.Attrs().HardwareAddr}); err != nil {
		t.Fatal(err)
	}
	// 50 Mbit/s: a burst's half on m2 takes about 2 ms to drain.
	var tcOut []byte
	if err := nsdo.Do(nsA, func() (err error) {
		tcOut, err = exec.Command("tc", "qdisc", "add", "dev", "m2", "root", "tbf", "rate", "50mbit", "burst", "1600", "limit", "1000000").CombinedOutput()
		return err
	}); err != nil {
		if strings.Contains(string(tcOut), "qdisc kind is unknown") {
			t.Skipf("the kernel has no tbf qdisc (sch_tbf) to slow one path down: %s", tcOut)
		}
		t.Fatalf("tc: %v\n%s", err, tcOut)
	}

	// The table names both members before they are attached: AttachMember
	// must mark them as in the table, or flowlets could never stay.
	var tables [2][NumBuckets]uint32
	for i := range NumBuckets {
		tables[0][i] = uint32([]int{m1.Attrs().Index, m2.Attrs().Index}[i%2])
		tables[1][i] = uint32([]int{m2.Attrs().Index, m1.Attrs().Index}[i%2])
	}
	tm := attachedTeam(t, nsA, Config{TeamIfindex: team.Attrs().Index, TeamMAC: team.Attrs().HardwareAddr, Primary: m1.Attrs().Index, Flowlet: gap}, &tables[0], m1, m2)

	var rx, tx *net.UDPConn
	if err := nsdo.Do(nsB, func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.99.0.2")})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := nsdo.Do(nsA, func() (err error) {
		tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	done := make(chan seqstream.Report, 1)
	go func() {
		var rec seqstream.Recorder
		buf := make([]byte, 2048)
		for {
			_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := rx.Read(buf)
			if err != nil {
				break
			}
			p, err := rec.Receive(buf[:n], time.Now())
			if err == nil && p.Kind == seqstream.End {
				break
			}
		}
		done <- rec.Report()
	}()

	buf := make([]byte, size)
	var seq uint64
	send := func(kind seqstream.Kind, n uint64) {
		seqstream.Packet{Kind: kind, Seq: n, Sent: time.Now().UnixNano()}.Put(buf)
		if _, err := tx.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	for k := range bursts {
		if err := tm.SetBuckets(tables[k%2]); err != nil {
			t.Fatal(err)
		}
		for i := range perBurst {
			if i == perBurst/2 {
				if err := tm.SetBuckets(tables[(k+1)%2]); err != nil {
					t.Fatal(err)
				}
			}
			send(seqstream.Data, seq)
			seq++
		}
		time.Sleep(pause)
	}
	send(seqstream.End, seq)
	rep := <-done
	moves, err := tm.FlowletMoves()
	if err != nil {
		t.Fatal(err)
	}
	return rep, moves
}

// BenchmarkEgress measures the egress program per frame under
// BPF_PROG_TEST_RUN, with and without flowlet tracking, for one flow (the
// flowlet entry hits) and for a new flow per frame (an LRU insert each),
// without (team_egress) and with (team_egress_fo) the carrier check of a
// member whose device is known and has carrier.
func BenchmarkEgress(b *testing.B) {
	// The member is the loopback device, which has carrier: the test run
	// that learns a device takes the loopback for ifindex 1.
	const a = 1
	for _, bm := range []struct {
		name  string
		gap   time.Duration
		flows int
	}{
		{"off/one-flow", 0, 1},
		{"off/new-flows", 0, 1 << 16},
		{"flowlet/one-flow", DefaultFlowlet, 1},
		{"flowlet/new-flows", DefaultFlowlet, 1 << 16},
	} {
		for _, prog := range []string{progEgress, progEgressFailover} {
			b.Run(bm.name+"/"+prog, func(b *testing.B) {
				team, plain := loadEgressesForTest(b, Config{TeamIfindex: 1, TeamMAC: macA, Flowlet: bm.gap})
				if prog == progEgress {
					team.egress = plain
				}
				testMember(b, team, a, macB, 0)
				if err := team.learnDevLocked(a); err != nil {
					b.Fatal(err)
				}
				tb := uniform(a)
				if err := team.SetBuckets(tb); err != nil {
					b.Fatal(err)
				}
				f := testFrames["ipv4-tcp"]
				frames := make([][]byte, bm.flows)
				for i := range frames {
					f.sport = uint16(i)
					f.dport = uint16(i >> 16)
					frames[i] = f.bytes()
				}
				var total time.Duration
				for i := 0; b.Loop(); i++ {
					// A repeated frame is a flow seen before: new flows run once each.
					_, per, err := team.egress.Benchmark(frames[i%len(frames)], max(1, 100/bm.flows), nil)
					if err != nil {
						b.Fatal(err)
					}
					total += per
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/frame")
			})
		}
	}
}

// TestAffinity checks source-MAC pins (HyperVPort): a pinned MAC leaves
// through its member whatever its bucket says, until that member leaves the
// table or the pin is deleted; other policies ignore pins.
func TestAffinity(t *testing.T) {
	const a, b = 7, 8
	endpoint := testFrames["ipv4-udp"]
	endpoint.src = macD
	frameD := endpoint.bytes()
	bucket := Hash(HashSourceMAC, frameD) % NumBuckets
	tableOf := func(rest, endpointBucket uint32) [NumBuckets]uint32 {
		tb := uniform(rest)
		tb[bucket] = endpointBucket
		return tb
	}
	tests := []struct {
		name   string
		hash   HashPolicy
		pin    int // 0: none
		table  [NumBuckets]uint32
		detach bool
		want   int
	}{
		{name: "pinned", hash: HashSourceMAC, pin: b, table: tableOf(b, a), want: b},
		{name: "pinned to the bucket's member", hash: HashSourceMAC, pin: a, table: tableOf(b, a), want: a},
		{name: "not pinned", hash: HashSourceMAC, table: tableOf(b, a), want: a},
		{name: "pinned member out of the table", hash: HashSourceMAC, pin: b, table: tableOf(a, a), want: a},
		{name: "pinned member detached", hash: HashSourceMAC, pin: b, table: tableOf(b, a), detach: true, want: a},
		{name: "pinned to an unknown member", hash: HashSourceMAC, pin: 99, table: tableOf(b, a), want: a},
		{name: "other policy", hash: HashTransportPorts, pin: b, table: func() [NumBuckets]uint32 {
			tb := uniform(b)
			tb[Hash(HashTransportPorts, frameD)%NumBuckets] = a
			return tb
		}(), want: a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			team := loadTeamForTest(t, Config{TeamIfindex: 1, TeamMAC: macA, Hash: tt.hash, Primary: a})
			testMember(t, team, a, macB, 0)
			testMember(t, team, b, macC, 0)
			setBuckets(t, team, tableOf(a, b))
			if tt.pin != 0 {
				if err := team.SetAffinity(macD, tt.pin); err != nil {
					t.Fatal(err)
				}
			}
			setBuckets(t, team, tt.table)
			if tt.detach {
				if err := team.DetachMember(b); err != nil {
					t.Fatal(err)
				}
			}
			if got := sendVia(t, team, frameD); got != tt.want {
				t.Errorf("left through %d, want %d", got, tt.want)
			}
		})
	}

	team := loadTeamForTest(t, Config{TeamIfindex: 1, TeamMAC: macA, Hash: HashSourceMAC})
	testMember(t, team, a, macB, 0)
	testMember(t, team, b, macC, 0)
	setBuckets(t, team, tableOf(b, a))
	for _, mac := range []net.HardwareAddr{macD, macC} {
		if err := team.SetAffinity(mac, b); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := team.Affinities(); err != nil || len(got) != 2 || got[[6]byte(macD)] != b || got[[6]byte(macC)] != b {
		t.Errorf("Affinities() = %v, %v; want %s and %s on %d", got, err, macD, macC, b)
	}
	for range 2 { // deleting twice is no error
		if err := team.DeleteAffinity(macD); err != nil {
			t.Fatal(err)
		}
	}
	if got := sendVia(t, team, frameD); got != a {
		t.Errorf("after DeleteAffinity: left through %d, want its bucket's %d", got, a)
	}
	if err := team.SetAffinity(net.HardwareAddr{1, 2}, a); err == nil {
		t.Error("SetAffinity accepted a 2-byte MAC")
	}
	if err := team.SetAffinity(macD, 0); err == nil {
		t.Error("SetAffinity accepted ifindex 0")
	}
}

// TestPortAffinity checks ports pinned under Config.PortAffinity: under
// HyperVPort all their frames leave through their member unchanged; under
// Dynamic their broadcast and neighbour discovery do, and hashed frames
// that leave elsewhere carry that member's MAC; copies of their broadcasts
// flooded back in through the primary are dropped.
func TestPortAffinity(t *testing.T) {
	const a, b = 7, 8 // a is the primary; the endpoint macD is pinned to b
	udp := testFrames["ipv4-udp"]
	udp.src = macD
	arpReq := testFrames["arp"]
	arpReq.src = macD
	arpReply := arpReq
	arpReply.dst = macA
	other := udp
	other.src = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xe5} // not pinned
	otherReq := arpReq
	otherReq.src = other.src
	hyperV := Config{Hash: HashSourceMAC, PortAffinity: true}
	dynamic := Config{Hash: HashTransportPorts, PortAffinity: true, Flowlet: DefaultFlowlet}
	tests := []struct {
		name    string
		cfg     Config
		in      frame
		table   uint32 // member of every bucket
		out     bool   // b out of the table
		want    int
		wantSrc net.HardwareAddr
	}{
		{name: "hyperv unicast", cfg: hyperV, in: udp, table: a, want: b, wantSrc: macD},
		{name: "hyperv broadcast", cfg: hyperV, in: arpReq, table: a, want: b, wantSrc: macD},
		{name: "hyperv member out of the table", cfg: hyperV, in: udp, table: a, out: true, want: a, wantSrc: macD},
		{name: "dynamic hashed elsewhere", cfg: dynamic, in: udp, table: a, want: a, wantSrc: macB},
		{name: "dynamic hashed to its member", cfg: dynamic, in: udp, table: b, want: b, wantSrc: macD},
		{name: "dynamic arp request", cfg: dynamic, in: arpReq, table: a, want: b, wantSrc: macD},
		{name: "dynamic arp reply", cfg: dynamic, in: arpReply, table: a, want: b, wantSrc: macD},
		{name: "dynamic unpinned broadcast", cfg: dynamic, in: otherReq, table: b, want: a, wantSrc: other.src},
		{name: "dynamic unpinned unicast", cfg: dynamic, in: other, table: b, want: b, wantSrc: other.src},
		{name: "dynamic member out of the table", cfg: dynamic, in: arpReq, table: a, out: true, want: a, wantSrc: macD},
		{name: "without port affinity", cfg: Config{Hash: HashTransportPorts}, in: arpReq, table: b, want: a, wantSrc: macD},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.TeamIfindex, cfg.TeamMAC, cfg.Primary = 1, macA, a
			team := loadTeamForTest(t, cfg)
			testMember(t, team, a, macB, 0)
			testMember(t, team, b, macC, MemberTxOwnMAC)
			tb := uniform(b)
			setBuckets(t, team, tb) // b is in the table when pinned
			if err := team.SetAffinity(macD, b); err != nil {
				t.Fatal(err)
			}
			for i := range tb {
				tb[i] = tt.table
				if !tt.out && i == 0 {
					tb[i] = b
				}
			}
			setBuckets(t, team, tb)
			in := tt.in.bytes()
			if got := sendVia(t, team, in); got != tt.want {
				t.Errorf("left through %d, want %d", got, tt.want)
			}
			_, out := run(t, team.egress, in)
			if src := net.HardwareAddr(out[6:12]); src.String() != tt.wantSrc.String() {
				t.Errorf("source MAC %s, want %s", src, tt.wantSrc)
			}
		})
	}

	// Ingress: BPF_PROG_TEST_RUN runs on lo, so the primary is ifindex 1.
	reflected := arpReq
	for _, tt := range []struct {
		name string
		cfg  Config
		in   frame
		drop bool
	}{
		{"own broadcast flooded back", Config{PortAffinity: true}, reflected, true},
		{"without port affinity", Config{}, reflected, false},
		{"a stranger's broadcast", Config{PortAffinity: true}, otherReq, false},
		{"unicast from the pinned MAC", Config{PortAffinity: true}, arpReply, false},
	} {
		t.Run("ingress "+tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.TeamIfindex, cfg.TeamMAC, cfg.Primary = 9, macA, 1
			team := loadTeamForTest(t, cfg)
			testMember(t, team, 1, macB, 0)
			testMember(t, team, b, macC, 0)
			var tb [NumBuckets]uint32
			for i := range tb {
				tb[i] = uint32(1 + (i%2)*(b-1)) // both members in the table
			}
			setBuckets(t, team, tb)
			if err := team.SetAffinity(macD, b); err != nil {
				t.Fatal(err)
			}
			ret, _ := run(t, team.ingress, tt.in.bytes())
			if want := map[bool]uint32{true: tcActShot, false: tcActRedirect}[tt.drop]; ret != want {
				t.Errorf("returned %d, want %d", ret, want)
			}
		})
	}
}
