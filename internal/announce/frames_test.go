package announce

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

var (
	macM     = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macPeer  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	macOther = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0c}
)

// wire decodes a frame written as hex with fields separated by spaces or |.
func wire(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The expected frames are laid out by hand from RFC 826/903/4861/8200; the
// ICMPv6 checksums were computed separately and are also recomputed below.
func TestFrames(t *testing.T) {
	a4 := netip.MustParseAddr
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"gratuitous ARP", GratuitousARP(macM, a4("10.99.0.1")),
			// dst broadcast | src M | ARP | Ethernet, IPv4, 6, 4, request | sha M, spa | tha 0, tpa = spa
			`ffffffffffff 02000000000a 0806 | 0001 0800 06 04 0001 | 02000000000a 0a630001 | 000000000000 0a630001`},
		{"gratuitous ARP from mapped address", GratuitousARP(macM, netip.AddrFrom16(a4("::ffff:10.99.0.1").As16())),
			`ffffffffffff 02000000000a 0806 | 0001 0800 06 04 0001 | 02000000000a 0a630001 | 000000000000 0a630001`},
		{"ARP request", ARPRequest(macM, a4("10.99.0.1"), a4("10.99.0.2")),
			`ffffffffffff 02000000000a 0806 | 0001 0800 06 04 0001 | 02000000000a 0a630001 | 000000000000 0a630002`},
		{"RARP", RARP(macM),
			// RARP | reverse request | sha M, spa 0 | tha M, tpa 0
			`ffffffffffff 02000000000a 8035 | 0001 0800 06 04 0003 | 02000000000a 00000000 | 02000000000a 00000000`},
		{"unsolicited NA", UnsolicitedNA(macM, a4("fd99::1")),
			// dst 33:33:00:00:00:01 | src M | IPv6
			// v6, payload 32, ICMPv6, hop limit 255, src fd99::1, dst ff02::1
			// NA, code 0, checksum | R=0 S=0 O=1 | target fd99::1 | TLLA option, 8 bytes, M
			`333300000001 02000000000a 86dd
			 60000000 0020 3a ff fd990000000000000000000000000001 ff020000000000000000000000000001
			 88 00 5960 | 20000000 | fd990000000000000000000000000001 | 02 01 02000000000a`},
		{"neighbour solicitation", NeighborSolicitation(macM, a4("fd99::1"), a4("fd99::2")),
			// dst 33:33:ff:00:00:02 | src M | IPv6
			// src fd99::1, dst solicited-node ff02::1:ff00:2
			// NS, code 0, checksum | reserved | target fd99::2 | SLLA option, 8 bytes, M
			`3333ff000002 02000000000a 86dd
			 60000000 0020 3a ff fd990000000000000000000000000001 ff0200000000000000000001ff000002
			 87 00 7c5c | 00000000 | fd990000000000000000000000000002 | 01 01 02000000000a`},
		{"link-local neighbour solicitation", NeighborSolicitation(macM, a4("fe80::a"), a4("fe80::1234:5678:9abc%eth0")),
			`3333ff789abc 02000000000a 86dd
			 60000000 0020 3a ff fe80000000000000000000000000000a ff0200000000000000000001ff789abc
			 87 00 dbeb | 00000000 | fe800000000000000000123456789abc | 01 01 02000000000a`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := wire(t, tt.want)
			if !bytes.Equal(tt.got, want) {
				t.Errorf("frame\n%s\nwant\n%s", hex.Dump(tt.got), hex.Dump(want))
			}
			if binary.BigEndian.Uint16(tt.got[12:]) == etherTypeIPv6 {
				verifyICMPv6Checksum(t, tt.got)
			}
		})
	}
}

// verifyICMPv6Checksum sums pseudo-header and message including the checksum
// field, as a receiver does: a correct checksum gives 0xffff.
func verifyICMPv6Checksum(t *testing.T, frame []byte) {
	t.Helper()
	ip := frame[ethHdrLen:]
	msg := ip[ipv6HdrLen:]
	if n := int(binary.BigEndian.Uint16(ip[4:])); n != len(msg) {
		t.Fatalf("payload length %d, message is %d bytes", n, len(msg))
	}
	pseudo := append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(msg)>>8), byte(len(msg)), 0, 0, 0, ip[6])
	var sum uint32
	for _, b := range [][]byte{pseudo, msg} {
		for i := 0; i < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	if sum != 0xffff {
		t.Errorf("ICMPv6 checksum does not verify: sum %#04x", sum)
	}
}

func TestFramesPanicOnMisuse(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")
	for name, f := range map[string]func(){
		"GARP for IPv6":           func() { GratuitousARP(macM, v6) },
		"ARP request from IPv6":   func() { ARPRequest(macM, v6, v4) },
		"NA for IPv4":             func() { UnsolicitedNA(macM, v4) },
		"NA for mapped IPv4":      func() { UnsolicitedNA(macM, netip.AddrFrom16(v4.As16())) },
		"NS from IPv4":            func() { NeighborSolicitation(macM, v4, v6) },
		"NS for the zero address": func() { NeighborSolicitation(macM, v6, netip.Addr{}) },
		"RARP for a short MAC":    func() { RARP(macM[:5]) },
		"GARP from a long MAC":    func() { GratuitousARP(append(macM, 0, 0), v4) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			f()
		})
	}
}

func TestAnnouncementFrames(t *testing.T) {
	ep1, ep2 := net.HardwareAddr{0x02, 0, 0, 0, 0, 0xe1}, net.HardwareAddr{0x02, 0, 0, 0, 0, 0xe2}
	v4, v6 := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("fd99::1")
	got, err := Announcement{MAC: macM, Addrs: []netip.Addr{v6, netip.AddrFrom16(v4.As16())}, Endpoints: []net.HardwareAddr{ep1, ep2}}.frames()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{UnsolicitedNA(macM, v6), GratuitousARP(macM, v4), RARP(ep1), RARP(ep2)}
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d:\n%s\nwant\n%s", i, hex.Dump(got[i]), hex.Dump(want[i]))
		}
	}

	for name, a := range map[string]Announcement{
		"no MAC":             {Addrs: []netip.Addr{v4}},
		"zero address":       {MAC: macM, Addrs: []netip.Addr{v4, {}}},
		"short endpoint MAC": {MAC: macM, Endpoints: []net.HardwareAddr{ep1[:4]}},
	} {
		if _, err := a.frames(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestProbeRequests(t *testing.T) {
	a := netip.MustParseAddr
	srcs := []netip.Addr{a("::"), a("fe80::a"), a("10.99.0.1"), a("fd99::1"), a("10.99.0.3")}
	targets := []netip.Addr{a("10.99.0.2"), a("fd99::2"), a("fe80::2%eth0"), netip.AddrFrom16(a("10.99.0.2").As16())}
	requests, pending, err := probeRequests(macM, srcs, targets)
	if err != nil {
		t.Fatal(err)
	}
	// The first source of each family other than ::; the repeated target
	// (mapped form) is asked once; the zone is dropped.
	want := [][]byte{
		ARPRequest(macM, a("10.99.0.1"), a("10.99.0.2")),
		NeighborSolicitation(macM, a("fe80::a"), a("fd99::2")),
		NeighborSolicitation(macM, a("fe80::a"), a("fe80::2")),
	}
	if len(requests) != len(want) {
		t.Fatalf("%d requests, want %d", len(requests), len(want))
	}
	for i := range want {
		if !bytes.Equal(requests[i], want[i]) {
			t.Errorf("request %d:\n%s\nwant\n%s", i, hex.Dump(requests[i]), hex.Dump(want[i]))
		}
	}
	if len(pending) != 3 || !pending[a("10.99.0.2")] || !pending[a("fd99::2")] || !pending[a("fe80::2")] {
		t.Errorf("pending = %v", pending)
	}

	for name, tt := range map[string]struct {
		mac           net.HardwareAddr
		srcs, targets []netip.Addr
	}{
		"no IPv6 source": {macM, []netip.Addr{a("10.99.0.1"), a("::")}, []netip.Addr{a("fd99::2")}},
		"no IPv4 source": {macM, []netip.Addr{a("fd99::1")}, []netip.Addr{a("10.99.0.2")}},
		"zero target":    {macM, srcs, []netip.Addr{{}}},
		"short MAC":      {macM[:3], srcs, []netip.Addr{a("10.99.0.2")}},
	} {
		if _, _, err := probeRequests(tt.mac, tt.srcs, tt.targets); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestReplyFilterAndParse runs the socket filter in x/net/bpf's VM, and
// parseReply, over replies and near misses.
func TestReplyFilterAndParse(t *testing.T) {
	a := netip.MustParseAddr
	arpReply := func(dst net.HardwareAddr, spa string) []byte {
		return arp(dst, etherTypeARP, arpOpReply, macPeer, as4(a(spa)), dst, as4(a("10.99.0.1")))
	}
	na := func(dst net.HardwareAddr, target string, flags byte) []byte {
		tgt := as16(a(target))
		msg := append([]byte{icmpv6NA, 0, 0, 0, flags, 0, 0, 0}, tgt[:]...)
		msg = append(msg, ndOptTargetLLA, 1)
		msg = append(msg, macPeer...)
		f := icmpv6(macPeer, tgt, as16(a("fd99::1")), msg)
		copy(f, dst) // unicast to the solicitor
		return f
	}
	edit := func(f []byte, off int, v byte) []byte {
		f = append([]byte{}, f...)
		f[off] = v
		return f
	}
	ipv4 := wire(t, `02000000000a 02000000000b 0800 4500001c00004000401100000a6300020a630001 0035003500080000`)

	tests := []struct {
		name   string
		frame  []byte
		pass   bool       // through the filter
		answer netip.Addr // from parseReply; invalid: not an answer
	}{
		{"ARP reply", arpReply(macM, "10.99.0.2"), true, a("10.99.0.2")},
		{"ARP reply padded", append(arpReply(macM, "10.99.0.2"), make([]byte, 18)...), true, a("10.99.0.2")},
		{"solicited NA", na(macM, "fd99::2", naSolicited|naOverride), true, a("fd99::2")},
		{"solicited NA without override", na(macM, "fe80::2", naSolicited), true, a("fe80::2")},
		{"ARP reply to another MAC", arpReply(macOther, "10.99.0.2"), false, netip.Addr{}},
		{"NA to another MAC", na(macOther, "fd99::2", naSolicited), false, netip.Addr{}},
		{"ARP request", ARPRequest(macPeer, a("10.99.0.2"), a("10.99.0.1")), false, netip.Addr{}},
		{"ARP request to the MAC", edit(arpReply(macM, "10.99.0.2"), offARPOp+1, arpOpRequest), false, netip.Addr{}},
		{"RARP reply to the MAC", edit(arpReply(macM, "10.99.0.2"), 13, 0x35), false, netip.Addr{}},
		{"NS to the MAC", edit(na(macM, "fd99::2", naSolicited), offICMPv6, icmpv6NS), false, netip.Addr{}},
		{"NA behind an extension header", edit(na(macM, "fd99::2", naSolicited), offNextHdr, 0), false, netip.Addr{}},
		{"IPv4 to the MAC", ipv4, false, netip.Addr{}},
		{"unsolicited NA to the MAC", na(macM, "fd99::2", naOverride), true, netip.Addr{}},
		{"NA with hop limit 64", edit(na(macM, "fd99::2", naSolicited), offHopLimit, 64), true, netip.Addr{}},
		{"ARP reply for another protocol", edit(arpReply(macM, "10.99.0.2"), ethHdrLen+2, 0x86), true, netip.Addr{}},
		{"ARP reply truncated", arpReply(macM, "10.99.0.2")[:30], true, netip.Addr{}},
		{"NA truncated", na(macM, "fd99::2", naSolicited)[:70], true, netip.Addr{}},
		{"runt", macM, false, netip.Addr{}},
	}
	vm, err := bpf.NewVM(replyFilter(macM))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := vm.Run(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if pass := n > 0; pass != tt.pass {
				t.Errorf("filter passed %d bytes, want pass=%t", n, tt.pass)
			}
			if tt.pass && n != replySnapLen {
				t.Errorf("filter passed %d bytes, want %d (the kernel cuts that to the frame)", n, replySnapLen)
			}
			got, ok := parseReply(tt.frame, macM)
			if ok != tt.answer.IsValid() || got != tt.answer {
				t.Errorf("parseReply = %v, %t; want %v", got, ok, tt.answer)
			}
		})
	}
}
