package datapath

import (
	"encoding/binary"
	"net"
)

// frame describes a test frame; bytes builds it. Zero values give an
// untagged frame with EtherType typ (IPv4/IPv6 when src/dst IPs are set).
type frame struct {
	dst, src   net.HardwareAddr
	vlan       uint16 // TPID of a single tag (0x8100, 0x88a8), 0 for none
	typ        uint16 // EtherType when srcIP is nil
	srcIP      net.IP // 4 or 16 bytes decides IPv4 or IPv6
	dstIP      net.IP
	proto      byte
	icmpType   byte // first byte of an ICMP/ICMPv6 header; 0 gives 8
	sport      uint16
	dport      uint16
	tcpFlags   byte
	fragOff    uint16 // IPv4: flags+offset field; IPv6: non-zero adds a fragment header with this offset field
	ipv4Opts   int    // 32-bit words of IPv4 options (ihl = 5 + ipv4Opts)
	payload    int
	truncateL4 bool // cut the frame right after the IP header
}

var (
	macA   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa1}
	macB   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb2}
	macC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xc3}
	macD   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xd4} // an endpoint behind the team
	macBC  = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	macMC  = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
	macLAC = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x02}
)

func (f frame) bytes() []byte {
	b := append([]byte{}, f.dst...)
	b = append(b, f.src...)
	if f.vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, f.vlan)
		b = binary.BigEndian.AppendUint16(b, 42) // VID
	}
	var l4 []byte
	if f.srcIP != nil {
		switch f.proto {
		case ipprotoTCP:
			l4 = make([]byte, 20)
			l4[12] = 5 << 4
			l4[13] = f.tcpFlags
		case ipprotoUDP:
			l4 = make([]byte, 8)
		default: // ICMP echo and anything else: 8 bytes whose first 4 are not ports
			l4 = []byte{8, 0, 0xab, 0xcd, 0, 1, 0, 1}
			if f.icmpType != 0 {
				l4[0] = f.icmpType
			}
		}
		if f.proto == ipprotoTCP || f.proto == ipprotoUDP {
			binary.BigEndian.PutUint16(l4[0:], f.sport)
			binary.BigEndian.PutUint16(l4[2:], f.dport)
		}
		l4 = append(l4, make([]byte, f.payload)...)
		if f.truncateL4 {
			l4 = nil
		}
	}

	switch {
	case f.srcIP == nil:
		b = binary.BigEndian.AppendUint16(b, f.typ)
		b = append(b, make([]byte, 28+f.payload)...) // an ARP-sized body
	case len(f.srcIP) == 4:
		b = binary.BigEndian.AppendUint16(b, ethPIP)
		hdr := make([]byte, 20+4*f.ipv4Opts)
		hdr[0] = 0x40 | byte(5+f.ipv4Opts)
		binary.BigEndian.PutUint16(hdr[2:], uint16(len(hdr)+len(l4)))
		binary.BigEndian.PutUint16(hdr[4:], 0x1234)
		binary.BigEndian.PutUint16(hdr[6:], f.fragOff)
		hdr[8] = 64
		hdr[9] = f.proto
		copy(hdr[12:], f.srcIP)
		copy(hdr[16:], f.dstIP)
		for i := 20; i < len(hdr); i++ {
			hdr[i] = 1 // NOP options
		}
		b = append(b, hdr...)
		b = append(b, l4...)
	default:
		b = binary.BigEndian.AppendUint16(b, ethPIPv6)
		hdr := make([]byte, 40)
		hdr[0] = 0x60
		next := f.proto
		var ext []byte
		if f.fragOff != 0 {
			ext = make([]byte, 8)
			ext[0] = f.proto
			binary.BigEndian.PutUint16(ext[2:], f.fragOff)
			binary.BigEndian.PutUint32(ext[4:], 0xabcd)
			next = 44
		}
		binary.BigEndian.PutUint16(hdr[4:], uint16(len(ext)+len(l4)))
		hdr[6] = next
		hdr[7] = 64
		copy(hdr[8:], f.srcIP.To16())
		copy(hdr[24:], f.dstIP.To16())
		b = append(b, hdr...)
		b = append(b, ext...)
		b = append(b, l4...)
	}
	return b
}

func v4(s string) net.IP { return net.ParseIP(s).To4() }
func v6(s string) net.IP { return net.ParseIP(s).To16() }

// testFrames covers every parse path of frame_hash; the privileged test
// checks the C program against Hash on each of them.
var testFrames = map[string]frame{
	"ipv4-tcp":         {dst: macA, src: macB, srcIP: v4("10.0.0.1"), dstIP: v4("10.0.0.2"), proto: ipprotoTCP, sport: 40000, dport: 80, payload: 100},
	"ipv4-udp":         {dst: macA, src: macB, srcIP: v4("10.0.0.1"), dstIP: v4("10.0.0.2"), proto: ipprotoUDP, sport: 5353, dport: 53},
	"ipv4-icmp":        {dst: macA, src: macB, srcIP: v4("10.0.0.1"), dstIP: v4("10.0.0.2"), proto: 1},
	"ipv4-options":     {dst: macA, src: macB, srcIP: v4("10.0.0.1"), dstIP: v4("10.0.0.2"), proto: ipprotoTCP, sport: 40000, dport: 80, ipv4Opts: 3},
	"ipv4-first-frag":  {dst: macA, src: macB, srcIP: v4("10.0.0.1"), dstIP: v4("10.0.0.2"), proto: ipprotoUDP, sport: 1, dport: 2, fragOff: 0x2000},
	"ipv4-later-frag":  {dst: macA, src: macB, srcIP: v4("10.0.0.1"), dstIP: v4("10.0.0.2"), proto: ipprotoUDP, sport: 1, dport: 2, fragOff: 0x00b9},
	"ipv4-df":          {dst: macA, src: macB, srcIP: v4("10.0.0.1"), dstIP: v4("10.0.0.2"), proto: ipprotoTCP, sport: 1, dport: 2, fragOff: 0x4000},
	"ipv4-truncated":   {dst: macA, src: macB, srcIP: v4("10.0.0.1"), dstIP: v4("10.0.0.2"), proto: ipprotoTCP, truncateL4: true},
	"ipv6-tcp":         {dst: macA, src: macB, srcIP: v6("fd00::1"), dstIP: v6("fd00::2"), proto: ipprotoTCP, sport: 40000, dport: 443},
	"ipv6-udp":         {dst: macA, src: macB, srcIP: v6("fd00::1"), dstIP: v6("fd00::2"), proto: ipprotoUDP, sport: 4789, dport: 4789},
	"ipv6-icmp":        {dst: macA, src: macB, srcIP: v6("fd00::1"), dstIP: v6("fd00::2"), proto: 58},
	"ipv6-frag":        {dst: macA, src: macB, srcIP: v6("fd00::1"), dstIP: v6("fd00::2"), proto: ipprotoUDP, sport: 1, dport: 2, fragOff: 0x0001},
	"vlan-ipv4-tcp":    {dst: macA, src: macB, vlan: 0x8100, srcIP: v4("10.0.0.1"), dstIP: v4("10.0.0.2"), proto: ipprotoTCP, sport: 40000, dport: 80},
	"qinq-ipv6-udp":    {dst: macA, src: macB, vlan: 0x88a8, srcIP: v6("fd00::1"), dstIP: v6("fd00::2"), proto: ipprotoUDP, sport: 7, dport: 9},
	"arp":              {dst: macBC, src: macB, typ: 0x0806},
	"vlan-arp":         {dst: macBC, src: macB, vlan: 0x8100, typ: 0x0806},
	"lldp":             {dst: macLAC, src: macC, typ: 0x88cc},
	"ipv4-tcp-otherip": {dst: macA, src: macB, srcIP: v4("192.168.7.9"), dstIP: v4("172.16.0.5"), proto: ipprotoTCP, sport: 33333, dport: 22},
}
