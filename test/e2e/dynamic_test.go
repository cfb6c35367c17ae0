package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/datapath"
	"github.com/nicteam/nicteam/internal/seqstream"
	"github.com/nicteam/nicteam/internal/team"
	"golang.org/x/sys/unix"
)

// ipv4Frame is just enough of an IPv4 frame of protocol proto (TCP, UDP)
// for the datapath's hash.
func ipv4Frame(proto byte, src, dst netip.Addr, sport, dport uint16) []byte {
	f := make([]byte, 14+20+8)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	f[14] = 0x45
	f[14+9] = proto
	copy(f[14+12:], src.AsSlice())
	copy(f[14+16:], dst.AsSlice())
	binary.BigEndian.PutUint16(f[34:], sport)
	binary.BigEndian.PutUint16(f[36:], dport)
	return f
}

// addressTeam0 gives Team0 10.77.0.1, checks it reaches the peer and
// returns its stats and the member of each bucket from then.
func (e *env) addressTeam0() (api.Stats, map[int]string) {
	e.t.Helper()
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	e.ping("10.77.0.2", 2, 10*time.Millisecond)
	st, err := e.client().Stats(context.Background(), "Team0")
	if err != nil {
		e.t.Fatal(err)
	}
	owner := map[int]string{}
	for _, b := range st.Buckets {
		owner[b.Bucket] = b.Member
	}
	return st, owner
}

// TestDynamicRebalancesWithoutReordering starts three sequenced streams, an
// elephant beside two mice, that hash onto the same member of a Dynamic
// team. The rebalancer must move load to the idle member by measure, and
// the flowlet rule must move a flow only at a pause: no packet lost or
// reordered.
func TestDynamicRebalancesWithoutReordering(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--lb", "dynamic", "--flowlet-gap", "300us", "--rebalance-interval", "100ms")
	if tm := e.waitStatus("Team0", "Up"); tm.FlowletGap != "300µs" || tm.RebalanceInterval != "100ms" {
		t.Errorf("flowlet gap %q, rebalance interval %q; want 300µs and 100ms", tm.FlowletGap, tm.RebalanceInterval)
	}
	before, owner := e.addressTeam0()
	src, dst := netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2")
	bucketOf := func(sport, dport uint16) int {
		return int(datapath.Hash(datapath.HashTransportPorts, ipv4Frame(unix.IPPROTO_UDP, src, dst, sport, dport)) % team.NumBuckets)
	}
	// An elephant and two mice in different buckets held by the same
	// member.
	type flow struct {
		sport, dport uint16
		pps          int
	}
	flows := []flow{{0, 9000, 3000}, {0, 9001, 300}, {0, 9002, 300}}
	var buckets []int
	for i := range flows {
		for sp := uint16(20000 + 1000*i); sp < uint16(21000+1000*i); sp++ {
			b := bucketOf(sp, flows[i].dport)
			if i == 0 || (owner[b] == owner[buckets[0]] && !slices.Contains(buckets, b)) {
				flows[i].sport = sp
				buckets = append(buckets, b)
				break
			}
		}
		if flows[i].sport == 0 {
			t.Fatalf("found no flow %d on the elephant's member", i)
		}
	}
	t.Logf("all flows start on %s (buckets %v)", owner[buckets[0]], buckets)

	seq := filepath.Join(bin, "nicteam-seqstream")
	var recvs []interface {
		Wait() error
		Output() string
	}
	for _, f := range flows {
		r, err := e.b.Peer.Start(seq, "recv", "--listen", fmt.Sprintf("10.77.0.2:%d", f.dport), "--duration", "20s", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Kill() })
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(r.Output(), "listening on") {
			if time.Now().After(deadline) {
				t.Fatalf("receiver not listening: %s", r.Output())
			}
			time.Sleep(10 * time.Millisecond)
		}
		recvs = append(recvs, r)
	}
	// At most 3000 packets per second: a pause of 333 µs or more between
	// packets, longer than the flowlet gap, so a moved bucket takes its
	// flow along at once and ordering still holds.
	var senders []interface{ Wait() error }
	for _, f := range flows {
		s, err := e.b.Host.Start(seq, "send", "--to", fmt.Sprintf("10.77.0.2:%d", f.dport), "--from", fmt.Sprintf("10.77.0.1:%d", f.sport),
			"--pps", strconv.Itoa(f.pps), "--size", "1200", "--duration", "3s")
		if err != nil {
			t.Fatal(err)
		}
		senders = append(senders, s)
	}
	for _, s := range senders {
		if err := s.Wait(); err != nil {
			t.Fatalf("sender: %v", err)
		}
	}
	for i, r := range recvs {
		if err := r.Wait(); err != nil {
			t.Fatalf("receiver %d: %v\n%s", i, err, r.Output())
		}
		out := r.Output()
		var rep seqstream.Report
		at := strings.Index(out, "{")
		if at < 0 {
			t.Fatalf("receiver %d wrote no report:\n%s", i, out)
		}
		if err := json.Unmarshal([]byte(out[at:]), &rep); err != nil {
			t.Fatalf("receiver %d report: %v\n%s", i, err, out)
		}
		if rep.Received == 0 || rep.Lost != 0 || rep.Reordered != 0 || rep.Duplicates != 0 {
			t.Errorf("flow %d: received %d, lost %d, reordered %d, duplicates %d; want all, none, none, none", i, rep.Received, rep.Lost, rep.Reordered, rep.Duplicates)
		}
	}

	after, err := e.client().Stats(context.Background(), "Team0")
	if err != nil {
		t.Fatal(err)
	}
	var sent []uint64
	var total uint64
	for i, m := range after.Members {
		sent = append(sent, m.TxPackets-before.Members[i].TxPackets)
		total += sent[i]
	}
	// Moving the elephant off the mice balances best; moving only a mouse
	// would leave the other member under a tenth.
	for i, m := range after.Members {
		if sent[i] < total/10 {
			t.Errorf("%s sent %d of %d packets: the load was not spread over both members", m.Name, sent[i], total)
		}
	}
	t.Logf("packets sent per member: %v", sent)
	rebalanced := false
	e.client().Events(context.Background(), false, func(ev api.Event) error {
		rebalanced = rebalanced || (ev.Kind == api.EventBucketsMoved && strings.Contains(ev.Detail, "rebalanced by load"))
		return nil
	})
	if !rebalanced {
		t.Error("no BucketsMoved event from the rebalancer")
	}
	if out := e.mustCLI("stats", "Team0", "--interval", "200ms"); !strings.Contains(out, "Flowlet moves:") {
		t.Errorf("nicteam stats:\n%s", out)
	}
}

// TestDynamicPlacesConnections opens four TCP connections through a
// Dynamic team of four, from source ports that all hash to one member's
// buckets: placed as they open, each leaves through a member of its own,
// where TransportPorts would have put all four on one.
func TestDynamicPlacesConnections(t *testing.T) {
	e := newEnv(t, 4)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2,eth3,eth4", "--lb", "dynamic")
	e.waitStatus("Team0", "Up")
	before, owner := e.addressTeam0()
	src, dst := netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2")
	const dport = 5001
	memberOf := func(sport uint16) string {
		return owner[int(datapath.Hash(datapath.HashTransportPorts, ipv4Frame(unix.IPPROTO_TCP, src, dst, sport, dport))%team.NumBuckets)]
	}
	var sports []uint16
	for sp := uint16(30000); len(sports) < 4 && sp < 31000; sp++ {
		if memberOf(sp) == memberOf(30000) {
			sports = append(sports, sp)
		}
	}
	if len(sports) < 4 {
		t.Fatalf("found %d source ports hashing to %s, want 4", len(sports), memberOf(30000))
	}
	t.Logf("source ports %v all hash to %s", sports, memberOf(30000))

	var ln net.Listener
	if err := e.b.Peer.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, dport).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c)
			}()
		}
	}()

	const size = 4 << 20
	payload := make([]byte, size)
	for _, sp := range sports {
		var c net.Conn
		if err := e.b.Host.Do(func() (err error) {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, sp)), Timeout: 5 * time.Second}
			c, err = d.Dial("tcp", netip.AddrPortFrom(dst, dport).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(payload); err != nil {
			t.Fatalf("connection from port %d: %v", sp, err)
		}
		c.Close()
	}

	after, err := e.client().Stats(context.Background(), "Team0")
	if err != nil {
		t.Fatal(err)
	}
	var sent []uint64
	for i, m := range after.Members {
		sent = append(sent, m.TxBytes-before.Members[i].TxBytes)
		if sent[i] < size {
			t.Errorf("%s sent %d bytes, want at least one connection's %d", m.Name, sent[i], size)
		}
	}
	t.Logf("bytes sent per member: %v; flows moved: %d", sent, after.FlowletMoves-before.FlowletMoves)
}
