// Package announce tells a team's peers which port now carries a MAC, and
// checks that they can reach it there.
//
// Frames go straight out of one member through an AF_PACKET socket, not
// through the team interface: the team's egress program would pick a member
// by hash, and an announcement must leave through the member the daemon
// names. Replies are read on the member too: packet sockets see received
// frames before tc ingress, where the member's program hands them to the
// team interface.
//
// The frame builders are pure. Send and Probe open their sockets in the
// calling thread's network namespace, which must be the member's, and need
// CAP_NET_RAW there.
package announce

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/nicteam/nicteam/internal/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Announcement is what the peers must learn after a MAC moved to a member.
type Announcement struct {
	// MAC is the MAC the addresses now live at.
	MAC net.HardwareAddr
	// Addrs are announced with a gratuitous ARP (IPv4) or an unsolicited
	// neighbour advertisement (IPv6) each, from MAC.
	Addrs []netip.Addr
	// Endpoints are further MACs behind the team (containers on a bridge
	// above it) whose addresses the team does not know: one RARP each, from
	// that MAC, teaches the switches where they are.
	Endpoints []net.HardwareAddr
}

// Send sends every frame of a once out of ifindex. Peers and switches lose
// single frames, and a port that just came up may still be blocked by the
// switch: call it a few times, spaced out.
//
// ifindex should be the member that carries a.MAC (the primary): sent out
// of another member, the switch floods the frames back in through the
// primary to the team's own stack, which then sees its addresses claimed
// by someone else (IPv6 logs it, and a tentative address fails DAD).
func Send(ifindex int, a Announcement) error {
	frames, err := a.frames()
	if err != nil {
		return fmt.Errorf("send announcement on ifindex %d: %w", ifindex, err)
	}
	if len(frames) == 0 {
		return nil
	}
	c, err := openSocket(ifindex, nil)
	if err != nil {
		return fmt.Errorf("send announcement on ifindex %d: %w", ifindex, err)
	}
	defer closeSoon(c)
	for _, f := range frames {
		if err := c.Send(f); err != nil {
			return fmt.Errorf("send announcement on ifindex %d: %w", ifindex, err)
		}
	}
	return nil
}

func (a Announcement) frames() ([][]byte, error) {
	if len(a.MAC) != 6 {
		return nil, fmt.Errorf("invalid MAC %q: want 6 bytes", a.MAC)
	}
	var frames [][]byte
	for _, ip := range a.Addrs {
		switch ip = ip.Unmap(); {
		case ip.Is4():
			frames = append(frames, GratuitousARP(a.MAC, ip))
		case ip.Is6():
			frames = append(frames, UnsolicitedNA(a.MAC, ip))
		default:
			return nil, errors.New("invalid address: the zero netip.Addr")
		}
	}
	for _, mac := range a.Endpoints {
		if len(mac) != 6 {
			return nil, fmt.Errorf("invalid endpoint MAC %q: want 6 bytes", mac)
		}
		frames = append(frames, RARP(mac))
	}
	return frames, nil
}

// Probe asks every target for its MAC once, out of ifindex, as mac, and
// returns the targets that answered to mac within timeout, in the order
// given. An answer proves both directions: the target heard the request
// and the fabric delivers mac to this member. IPv4 targets get an ARP
// request, IPv6 targets a neighbour solicitation; the sender address is the
// first of srcs of the target's family (an IPv6 source may be link-local or
// global, but not ::). Either way the target updates its own neighbour
// entry for that source to mac. Answers are returned without zone and
// IPv4-mapped form. Probe returns as soon as every target has answered, and
// with ctx's error if ctx ends first.
//
// Each target is asked once: a lost request or reply looks like no answer,
// so a caller that acts on a missing answer should probe again first. The
// member must accept frames to mac (mac is its own, or it is promiscuous),
// else the NIC drops the answers before the socket sees them.
func Probe(ctx context.Context, ifindex int, mac net.HardwareAddr, srcs []netip.Addr, targets []netip.Addr, timeout time.Duration) (answered []netip.Addr, err error) {
	requests, pending, err := probeRequests(mac, srcs, targets)
	if err != nil {
		return nil, fmt.Errorf("probe on ifindex %d: %w", ifindex, err)
	}
	// Listen before sending: a reply can come back before the last
	// request has left.
	c, err := openSocket(ifindex, replyFilter(mac))
	if err != nil {
		return nil, fmt.Errorf("probe on ifindex %d: %w", ifindex, err)
	}
	defer closeSoon(c)

	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("probe on ifindex %d: %w", ifindex, err)
	}
	// The end of ctx interrupts the blocked read the same way; ctx.Err is
	// set by then, which tells the two apart.
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	for _, r := range requests {
		if err := c.Send(r); err != nil {
			return nil, fmt.Errorf("probe on ifindex %d: %w", ifindex, err)
		}
	}

	heard := map[netip.Addr]bool{}
	buf := make([]byte, replySnapLen)
	for len(heard) < len(pending) {
		n, err := c.Recv(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("probe on ifindex %d: %w", ifindex, err)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("probe on ifindex %d: %w", ifindex, err)
		}
		if ip, ok := parseReply(buf[:n], mac); ok && pending[ip] {
			heard[ip] = true
		}
	}
	for _, t := range targets {
		if t = normalize(t); heard[t] {
			answered = append(answered, t)
			delete(heard, t) // once, should targets repeat
		}
	}
	return answered, nil
}

// probeRequests builds one request per target and the set of targets
// (normalised as parseReply returns them) that may answer.
func probeRequests(mac net.HardwareAddr, srcs, targets []netip.Addr) ([][]byte, map[netip.Addr]bool, error) {
	if len(mac) != 6 {
		return nil, nil, fmt.Errorf("invalid MAC %q: want 6 bytes", mac)
	}
	var src4, src6 netip.Addr
	for _, s := range srcs {
		switch s = s.Unmap(); {
		case s.Is4() && !src4.IsValid():
			src4 = s
		case s.Is6() && !src6.IsValid() && !s.IsUnspecified():
			src6 = s
		}
	}
	var requests [][]byte
	pending := map[netip.Addr]bool{}
	for _, t := range targets {
		t = normalize(t)
		switch {
		case pending[t]:
			continue
		case t.Is4() && src4.IsValid():
			requests = append(requests, ARPRequest(mac, src4, t))
		case t.Is6() && src6.IsValid():
			requests = append(requests, NeighborSolicitation(mac, src6, t))
		case t.IsValid():
			return nil, nil, fmt.Errorf("target %v: no source address of its family", t)
		default:
			return nil, nil, errors.New("invalid target: the zero netip.Addr")
		}
		pending[t] = true
	}
	return requests, pending, nil
}

// normalize drops what a reply cannot carry: a zone, the IPv4-mapped form.
func normalize(ip netip.Addr) netip.Addr { return ip.Unmap().WithZone("") }

// replySnapLen is how much of a reply the filter passes: enough for an ARP
// packet and for a neighbour advertisement up to its target.
const replySnapLen = 128

// replyFilter passes only ARP replies and ICMPv6 neighbour advertisements
// sent to mac, so that a busy member does not wake the prober for every
// frame; parseReply checks the rest.
func replyFilter(mac net.HardwareAddr) []bpf.Instruction {
	const drop, accept = 14, 13 // instruction indexes below
	return []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 4},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: binary.BigEndian.Uint32(mac[0:4]), SkipTrue: drop - 2},
		/* 2 */ bpf.LoadAbsolute{Off: 4, Size: 2},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(binary.BigEndian.Uint16(mac[4:6])), SkipTrue: drop - 4},
		/* 4 */ bpf.LoadAbsolute{Off: 12, Size: 2},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeARP, SkipTrue: 11 - 6},
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: drop - 7},
		/* 7 */ bpf.LoadAbsolute{Off: offNextHdr, Size: 1},
		/* 8 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: drop - 9},
		/* 9 */ bpf.LoadAbsolute{Off: offICMPv6, Size: 1},
		/* 10 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpv6NA, SkipTrue: accept - 11, SkipFalse: drop - 11},
		/* 11 */ bpf.LoadAbsolute{Off: offARPOp, Size: 2},
		/* 12 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: arpOpReply, SkipTrue: drop - 13},
		/* 13 */ bpf.RetConstant{Val: replySnapLen},
		/* 14 */ bpf.RetConstant{Val: 0},
	}
}

// openSocket opens a packet socket for sending out of ifindex. With a
// filter it also receives, from ifindex only, what the filter passes, and
// never the frames it sends itself.
func openSocket(ifindex int, filter []bpf.Instruction) (*packet.Conn, error) {
	if filter == nil {
		return packet.Listen(ifindex, packet.Config{})
	}
	return packet.Listen(ifindex, packet.Config{Protocol: unix.ETH_P_ALL, Filter: filter, IgnoreOutgoing: true})
}

// closeSoon releases a socket in the background: the kernel's
// packet_release waits for an RCU grace period (synchronize_net),
// milliseconds that must not stand between an announcement and what the
// caller does next.
func closeSoon(c *packet.Conn) { go c.Close() }
