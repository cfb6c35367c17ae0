package announce

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// Wire constants (RFC 826, RFC 903, RFC 8200, RFC 4861).
const (
	ethHdrLen  = 14
	arpBodyLen = 28 // Ethernet/IPv4 ARP and RARP
	ipv6HdrLen = 40

	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeRARP = 0x8035
	etherTypeIPv6 = 0x86dd

	arpHwEthernet = 1
	arpOpRequest  = 1
	arpOpReply    = 2
	rarpOpRequest = 3

	protoICMPv6 = 58
	// ndHopLimit is the only hop limit receivers accept on neighbour
	// discovery: it proves the sender is on the link.
	ndHopLimit = 255
	icmpv6NS   = 135
	icmpv6NA   = 136

	naSolicited = 0x40 // NA flags, first byte after the checksum
	naOverride  = 0x20

	ndOptSourceLLA = 1
	ndOptTargetLLA = 2

	// Offsets of the fields a reply is recognised by.
	offARPOp    = ethHdrLen + 6
	offARPSPA   = ethHdrLen + 14
	offNextHdr  = ethHdrLen + 6
	offHopLimit = ethHdrLen + 7
	offICMPv6   = ethHdrLen + ipv6HdrLen
	offNATarget = offICMPv6 + 8
)

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC      = make(net.HardwareAddr, 6)
	allNodes     = netip.MustParseAddr("ff02::1")
)

// GratuitousARP is a broadcast ARP request from mac whose sender and target
// address are both ip and whose target MAC is zero: the form Linux (arp_notify,
// bonding) and Open vSwitch send. Receivers update an existing entry for ip
// from it whatever their arp_accept; the request form also reaches hosts that
// ignore unsolicited replies. ip must be IPv4 (or IPv4-mapped) and mac 6
// bytes, else GratuitousARP panics.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) []byte {
	a := as4(ip)
	return arp(broadcastMAC, etherTypeARP, arpOpRequest, mac, a, zeroMAC, a)
}

// ARPRequest is a broadcast ARP request from mac and src asking for target.
// The target answers to mac, and updates its own entry for src to mac on the
// way. src and target must be IPv4 (or IPv4-mapped) and mac 6 bytes, else
// ARPRequest panics.
func ARPRequest(mac net.HardwareAddr, src, target netip.Addr) []byte {
	return arp(broadcastMAC, etherTypeARP, arpOpRequest, mac, as4(src), zeroMAC, as4(target))
}

// RARP is a broadcast reverse ARP request from mac asking for its own
// address, as Open vSwitch and VMware send for MACs behind a port that
// moved: it carries no IP address, so it is safe for MACs whose addresses
// the team does not know, and every learning switch on the broadcast domain
// learns the MAC on the port it came in. mac must be 6 bytes, else RARP
// panics.
func RARP(mac net.HardwareAddr) []byte {
	var none [4]byte
	return arp(broadcastMAC, etherTypeRARP, rarpOpRequest, mac, none, mac, none)
}

// UnsolicitedNA is a neighbour advertisement for ip from mac to all nodes
// (ff02::1), as Linux sends with ndisc_notify: source ip, hop limit 255,
// Override set so receivers replace the MAC they hold for ip, Solicited
// clear, Router clear, and mac as target link-layer address. ip must be IPv6
// and mac 6 bytes, else UnsolicitedNA panics.
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr) []byte {
	target := as16(ip)
	msg := []byte{icmpv6NA, 0, 0, 0, naOverride, 0, 0, 0}
	msg = append(msg, target[:]...)
	msg = append(msg, ndOptTargetLLA, 1)
	msg = append(msg, mac6(mac)...)
	return icmpv6(mac, target, allNodes.As16(), msg)
}

// NeighborSolicitation asks for target's MAC from mac and src, sent to
// target's solicited-node multicast group with mac as source link-layer
// address, so target answers with a unicast advertisement to mac (and
// updates its own entry for src to mac on the way). src must be a unicast
// IPv6 address: a solicitation from :: is a DAD probe, which carries no
// source link-layer address and is answered to all nodes. target must be
// IPv6 and mac 6 bytes, else NeighborSolicitation panics.
func NeighborSolicitation(mac net.HardwareAddr, src, target netip.Addr) []byte {
	t := as16(target)
	msg := []byte{icmpv6NS, 0, 0, 0, 0, 0, 0, 0}
	msg = append(msg, t[:]...)
	msg = append(msg, ndOptSourceLLA, 1)
	msg = append(msg, mac6(mac)...)
	return icmpv6(mac, as16(src), solicitedNode(t), msg)
}

// arp builds an Ethernet frame carrying an Ethernet/IPv4 ARP or RARP packet.
func arp(dst net.HardwareAddr, etherType, op uint16, sha net.HardwareAddr, spa [4]byte, tha net.HardwareAddr, tpa [4]byte) []byte {
	b := ethernet(dst, sha, etherType, arpBodyLen)
	b = binary.BigEndian.AppendUint16(b, arpHwEthernet)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
	b = append(b, 6, 4) // hardware and protocol address lengths
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, mac6(sha)...)
	b = append(b, spa[:]...)
	b = append(b, mac6(tha)...)
	return append(b, tpa[:]...)
}

// icmpv6 builds an Ethernet frame carrying an IPv6 packet with hop limit
// 255 and the ICMPv6 message msg, whose checksum it fills in. The
// destination MAC is the multicast MAC of dst (all ND messages built here
// go to multicast groups).
func icmpv6(src net.HardwareAddr, srcIP, dst [16]byte, msg []byte) []byte {
	b := ethernet(multicastMAC(dst), src, etherTypeIPv6, ipv6HdrLen+len(msg))
	b = append(b, 0x60, 0, 0, 0) // version 6, traffic class and flow label 0
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	b = append(b, protoICMPv6, ndHopLimit)
	b = append(b, srcIP[:]...)
	b = append(b, dst[:]...)
	binary.BigEndian.PutUint16(msg[2:], icmpv6Checksum(srcIP, dst, msg))
	return append(b, msg...)
}

func ethernet(dst, src net.HardwareAddr, etherType uint16, payload int) []byte {
	b := make([]byte, 0, ethHdrLen+payload)
	b = append(b, mac6(dst)...)
	b = append(b, mac6(src)...)
	return binary.BigEndian.AppendUint16(b, etherType)
}

// icmpv6Checksum is the Internet checksum of the IPv6 pseudo-header (RFC
// 8200 section 8.1) and msg, whose checksum field must be zero.
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	sum := uint32(len(msg)) + protoICMPv6
	for _, b := range [][]byte{src[:], dst[:], msg} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// solicitedNode is ff02::1:ffXX:XXXX, the group that receives solicitations
// for ip (RFC 4291 section 2.7.1).
func solicitedNode(ip [16]byte) [16]byte {
	g := [16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff}
	copy(g[13:], ip[13:])
	return g
}

// multicastMAC is 33:33 followed by the low 32 bits of the group (RFC 2464
// section 7).
func multicastMAC(group [16]byte) net.HardwareAddr {
	return append(net.HardwareAddr{0x33, 0x33}, group[12:]...)
}

// as4 and as16 accept an IPv4 address in either form, as netip.AddrFromSlice
// makes a mapped one from the 16-byte net.IP that netlink returns.
func as4(ip netip.Addr) [4]byte {
	return ip.Unmap().As4() // panics if not IPv4
}

func as16(ip netip.Addr) [16]byte {
	if !ip.Unmap().Is6() {
		panic(fmt.Sprintf("announce: %v is not an IPv6 address", ip))
	}
	return ip.As16()
}

func mac6(mac net.HardwareAddr) net.HardwareAddr {
	if len(mac) != 6 {
		panic(fmt.Sprintf("announce: %q is not an Ethernet MAC", mac))
	}
	return mac
}

// parseReply recognises an answer to ARPRequest or NeighborSolicitation sent
// to mac: an ARP reply, or a solicited neighbour advertisement with hop limit
// 255 right behind the IPv6 header. It returns whose answer it is: the ARP
// sender address or the advertisement's target.
func parseReply(frame []byte, mac net.HardwareAddr) (netip.Addr, bool) {
	if len(frame) < ethHdrLen || !bytes.Equal(frame[:6], mac) {
		return netip.Addr{}, false
	}
	switch binary.BigEndian.Uint16(frame[12:]) {
	case etherTypeARP:
		if len(frame) < ethHdrLen+arpBodyLen {
			return netip.Addr{}, false
		}
		hdr := frame[ethHdrLen:]
		if binary.BigEndian.Uint16(hdr[0:]) != arpHwEthernet || binary.BigEndian.Uint16(hdr[2:]) != etherTypeIPv4 ||
			hdr[4] != 6 || hdr[5] != 4 || binary.BigEndian.Uint16(frame[offARPOp:]) != arpOpReply {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4([4]byte(frame[offARPSPA:])), true
	case etherTypeIPv6:
		if len(frame) < offNATarget+16 {
			return netip.Addr{}, false
		}
		if frame[ethHdrLen]>>4 != 6 || frame[offNextHdr] != protoICMPv6 || frame[offHopLimit] != ndHopLimit ||
			frame[offICMPv6] != icmpv6NA || frame[offICMPv6+1] != 0 || frame[offICMPv6+4]&naSolicited == 0 {
			return netip.Addr{}, false
		}
		return netip.AddrFrom16([16]byte(frame[offNATarget:])), true
	}
	return netip.Addr{}, false
}
