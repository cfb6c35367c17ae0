package datapath

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// HashPolicy selects which header fields the egress program hashes to pick a
// bucket. The values are shared with bpf/team.c.
type HashPolicy uint32

// Hash policies. Each falls back to a coarser key for frames that lack the
// fields it wants: TransportPorts uses only the IP addresses for protocols
// other than TCP and UDP and for fragments; every policy but SourceMAC uses
// source and destination MAC for non-IP frames.
const (
	HashTransportPorts HashPolicy = iota // IP addresses, TCP/UDP ports and protocol
	HashIPAddresses                      // IP addresses
	HashMacAddresses                     // destination and source MAC
	HashSourceMAC                        // source MAC only: each sender stays on one member (HyperVPort-style affinity)
)

var hashPolicyNames = [...]string{"TransportPorts", "IPAddresses", "MacAddresses", "SourceMAC"}

func (p HashPolicy) String() string {
	if int(p) < len(hashPolicyNames) {
		return hashPolicyNames[p]
	}
	return fmt.Sprintf("HashPolicy(%d)", uint32(p))
}

func (p HashPolicy) valid() bool { return int(p) < len(hashPolicyNames) }

const (
	hashSeed = 0x9747b28c

	ethPIP     = 0x0800
	ethPIPv6   = 0x86dd
	ethP8021Q  = 0x8100
	ethP8021AD = 0x88a8
	ipprotoTCP = 6
	ipprotoUDP = 17
)

// Hash is the pure Go twin of frame_hash in bpf/team.c: the bucket the egress
// program picks for frame is Hash(policy, frame) % NumBuckets. Like the C
// code it reads header words as little-endian loads of the wire bytes (what
// a native load does on the bpfel target) and treats a frame shorter than an
// Ethernet header as an all-zero header.
func Hash(policy HashPolicy, frame []byte) uint32 {
	eth := frame
	if len(eth) < 14 {
		eth = make([]byte, 14)
	}
	if policy != HashTransportPorts && policy != HashIPAddresses {
		return hashMACs(eth, policy)
	}

	l3 := 14
	proto := binary.BigEndian.Uint16(eth[12:])
	if proto == ethP8021Q || proto == ethP8021AD {
		if len(frame) < 18 {
			return hashMACs(eth, HashMacAddresses)
		}
		proto = binary.BigEndian.Uint16(frame[16:])
		l3 = 18
	}

	h := uint32(hashSeed)
	var l4 int
	var l4proto byte
	switch proto {
	case ethPIP:
		if len(frame) < l3+20 {
			return hashMACs(eth, HashMacAddresses)
		}
		ip := frame[l3:]
		ihl := int(ip[0] & 0x0f)
		if ihl < 5 {
			return hashMACs(eth, HashMacAddresses)
		}
		h = mix(h, le32(ip[12:]))
		h = mix(h, le32(ip[16:]))
		if policy == HashIPAddresses || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return fmix(h)
		}
		l4proto = ip[9]
		l4 = l3 + ihl*4
	case ethPIPv6:
		if len(frame) < l3+40 {
			return hashMACs(eth, HashMacAddresses)
		}
		ip := frame[l3:]
		for off := 8; off < 40; off += 4 {
			h = mix(h, le32(ip[off:]))
		}
		if policy == HashIPAddresses {
			return fmix(h)
		}
		l4proto = ip[6]
		l4 = l3 + 40
	default:
		return hashMACs(eth, HashMacAddresses)
	}

	if (l4proto != ipprotoTCP && l4proto != ipprotoUDP) || len(frame) < l4+4 {
		return fmix(h)
	}
	h = mix(h, le32(frame[l4:]))
	return fmix(mix(h, uint32(l4proto)))
}

func hashMACs(eth []byte, policy HashPolicy) uint32 {
	h := uint32(hashSeed)
	if policy == HashSourceMAC {
		h = mix(h, le32(eth[6:]))
		return fmix(mix(h, uint32(binary.LittleEndian.Uint16(eth[10:]))))
	}
	h = mix(h, le32(eth[0:]))
	h = mix(h, le32(eth[4:]))
	return fmix(mix(h, le32(eth[8:])))
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// mix and fmix are MurmurHash3's (x86_32) block step and finaliser.
func mix(h, k uint32) uint32 {
	k *= 0xcc9e2d51
	k = bits.RotateLeft32(k, 15)
	k *= 0x1b873593
	h ^= k
	h = bits.RotateLeft32(h, 13)
	return h*5 + 0xe6546b64
}

func fmix(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
