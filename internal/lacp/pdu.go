// Package lacp is the Link Aggregation Control Protocol of IEEE 802.1AX
// (LACPDU version 1): the PDU codec and the per-port receive, periodic
// transmit, selection, mux and transmit machines. It imports no OS code:
// the caller passes the time into every call and sends the frames the
// machines hand to its callback, so two systems can be wired together in a
// test and the clock advanced at will.
package lacp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Slow protocols addressing (802.3 Annex 57A).
var SlowProtocolsMAC = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x02}

const (
	EtherType = 0x8809 // slow protocols
	Subtype   = 1      // LACP
	Version   = 1

	tlvTerminator = 0
	tlvActor      = 1
	tlvPartner    = 2
	tlvCollector  = 3

	infoLen      = 20 // actor and partner information TLVs
	collectorLen = 16

	// PDULen is a LACPDU from subtype to the end of its padding.
	PDULen = 110
	// FrameLen is a whole LACPDU frame without FCS.
	FrameLen = 14 + PDULen
	// minDecodeLen ends at the terminator: some senders trim the trailing
	// reserved octets, and nothing after the terminator carries meaning.
	minDecodeLen = 14 + 2 + infoLen + infoLen + collectorLen + 2
)

// State is the actor or partner state octet.
type State uint8

// State bits, in octet order.
const (
	StateActivity    State = 1 << iota // active LACP
	StateTimeout                       // short timeout (fast rate)
	StateAggregation                   // aggregatable
	StateSynchronization
	StateCollecting
	StateDistributing
	StateDefaulted
	StateExpired
)

var stateNames = []string{"Activity", "Timeout", "Aggregation", "Synchronization",
	"Collecting", "Distributing", "Defaulted", "Expired"}

// Names spells out the bits that are set, lowest first.
func (s State) Names() []string {
	out := []string{}
	for i, n := range stateNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func (s State) String() string { return strings.Join(s.Names(), ",") }

// Info is the actor or partner information of a LACPDU: who a port is and
// what it is doing.
type Info struct {
	SystemPriority uint16
	System         [6]byte
	Key            uint16
	PortPriority   uint16
	Port           uint16
	State          State
}

// sameLink reports whether two infos name the same partner port in the
// same aggregation state: what update_Selected compares.
func (i Info) sameLink(o Info) bool {
	return i.SystemPriority == o.SystemPriority && i.System == o.System && i.Key == o.Key &&
		i.PortPriority == o.PortPriority && i.Port == o.Port &&
		i.State&StateAggregation == o.State&StateAggregation
}

// PDU is a decoded LACPDU.
type PDU struct {
	Source            net.HardwareAddr
	Actor, Partner    Info
	CollectorMaxDelay uint16 // tens of microseconds
}

// Encode returns p as an Ethernet frame to the slow protocols address,
// padded to FrameLen.
func (p PDU) Encode() []byte {
	b := make([]byte, FrameLen)
	copy(b[0:6], SlowProtocolsMAC)
	copy(b[6:12], p.Source)
	binary.BigEndian.PutUint16(b[12:14], EtherType)
	b[14], b[15] = Subtype, Version
	o := 16
	o = putInfo(b, o, tlvActor, p.Actor)
	o = putInfo(b, o, tlvPartner, p.Partner)
	b[o], b[o+1] = tlvCollector, collectorLen
	binary.BigEndian.PutUint16(b[o+2:], p.CollectorMaxDelay)
	// The collector's 12 reserved octets, the terminator (type 0, length
	// 0) and the 50 reserved octets are zero already.
	return b
}

func putInfo(b []byte, o int, typ byte, i Info) int {
	b[o], b[o+1] = typ, infoLen
	binary.BigEndian.PutUint16(b[o+2:], i.SystemPriority)
	copy(b[o+4:o+10], i.System[:])
	binary.BigEndian.PutUint16(b[o+10:], i.Key)
	binary.BigEndian.PutUint16(b[o+12:], i.PortPriority)
	binary.BigEndian.PutUint16(b[o+14:], i.Port)
	b[o+16] = byte(i.State)
	return o + infoLen
}

func getInfo(b []byte, o int) Info {
	var i Info
	i.SystemPriority = binary.BigEndian.Uint16(b[o+2:])
	copy(i.System[:], b[o+4:o+10])
	i.Key = binary.BigEndian.Uint16(b[o+10:])
	i.PortPriority = binary.BigEndian.Uint16(b[o+12:])
	i.Port = binary.BigEndian.Uint16(b[o+14:])
	i.State = State(b[o+16])
	return i
}

// ErrMalformed matches every decoding error (errors.Is).
var ErrMalformed = errors.New("malformed LACPDU")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Decode parses an Ethernet frame carrying a LACPDU. Versions above 1 are
// read as version 1, as 802.1AX asks; anything that does not have the TLVs
// of version 1 in their places and lengths is malformed.
func Decode(frame []byte) (PDU, error) {
	if len(frame) < minDecodeLen {
		return PDU{}, malformed("%d bytes, want at least %d", len(frame), minDecodeLen)
	}
	if et := binary.BigEndian.Uint16(frame[12:14]); et != EtherType {
		return PDU{}, malformed("EtherType %#04x", et)
	}
	if frame[14] != Subtype {
		return PDU{}, malformed("slow protocol subtype %d", frame[14])
	}
	if frame[15] < Version {
		return PDU{}, malformed("version %d", frame[15])
	}
	o := 16
	for _, tlv := range []struct{ typ, len byte }{
		{tlvActor, infoLen}, {tlvPartner, infoLen}, {tlvCollector, collectorLen},
	} {
		if frame[o] != tlv.typ || frame[o+1] != tlv.len {
			return PDU{}, malformed("TLV at %d: type %d length %d, want type %d length %d", o-14, frame[o], frame[o+1], tlv.typ, tlv.len)
		}
		o += int(tlv.len)
	}
	if frame[o] != tlvTerminator || frame[o+1] != 0 {
		return PDU{}, malformed("TLV at %d: type %d length %d, want the terminator", o-14, frame[o], frame[o+1])
	}
	p := PDU{
		Source:            net.HardwareAddr(append([]byte(nil), frame[6:12]...)),
		Actor:             getInfo(frame, 16),
		Partner:           getInfo(frame, 16+infoLen),
		CollectorMaxDelay: binary.BigEndian.Uint16(frame[16+2*infoLen+2:]),
	}
	return p, nil
}
