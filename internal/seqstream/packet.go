// Package seqstream is the accounting behind nicteam-seqstream, a
// sequenced UDP stream for measuring failover: the wire format, the
// sender's pacing arithmetic and the receiver's loss, reordering and outage
// bookkeeping. It does no I/O, so it is tested without a network.
package seqstream

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"time"
)

// HeaderLen is the size of a packet's header and so the smallest packet.
// Layout, big endian:
//
//	0  4 magic "ntsq"
//	4  1 kind
//	5  3 reserved, zero
//	8  8 sequence number (data) or number of data packets sent (end)
//	16 8 send time, ns since the Unix epoch
//
// Anything after the header is padding.
const HeaderLen = 24

var magic = [4]byte{'n', 't', 's', 'q'}

// Kind says what a packet is.
type Kind uint8

const (
	// Data packets carry consecutive sequence numbers starting at 0.
	Data Kind = 0
	// End packets say the stream is over and how many data packets it had,
	// so the receiver can count loss at the tail, where no later packet
	// reveals the gap. The sender repeats them in case one is lost.
	End Kind = 1
)

// Packet is a decoded header.
type Packet struct {
	Kind Kind
	Seq  uint64 // data: sequence number; end: data packets sent
	Sent int64  // send time, ns since the Unix epoch
}

// ErrNotSeqstream is returned for datagrams that are not stream packets.
var ErrNotSeqstream = errors.New("not a seqstream packet")

// Put writes p's header into b, which must be at least HeaderLen long.
func (p Packet) Put(b []byte) {
	copy(b[0:4], magic[:])
	b[4] = byte(p.Kind)
	b[5], b[6], b[7] = 0, 0, 0
	binary.BigEndian.PutUint64(b[8:16], p.Seq)
	binary.BigEndian.PutUint64(b[16:24], uint64(p.Sent))
}

// Parse decodes the header of datagram b.
func Parse(b []byte) (Packet, error) {
	if len(b) < HeaderLen || [4]byte(b[0:4]) != magic {
		return Packet{}, ErrNotSeqstream
	}
	k := Kind(b[4])
	if k != Data && k != End {
		return Packet{}, ErrNotSeqstream
	}
	return Packet{
		Kind: k,
		Seq:  binary.BigEndian.Uint64(b[8:16]),
		Sent: int64(binary.BigEndian.Uint64(b[16:24])),
	}, nil
}

// Due returns how many packets a sender running at pps packets per second
// should have sent elapsed after it started, the first going out at once:
// floor(elapsed·pps/1s) + 1. The product is formed in 128 bits, so long
// runs at high rates do not overflow.
func Due(elapsed time.Duration, pps uint64) uint64 {
	if elapsed < 0 || pps == 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(elapsed), pps)
	if hi >= uint64(time.Second) {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, uint64(time.Second))
	return q + 1
}

// Total returns how many packets a run of duration d at pps packets per
// second sends: those due strictly before d.
func Total(d time.Duration, pps uint64) uint64 {
	if d <= 0 {
		return 0
	}
	return Due(d-1, pps)
}
