package daemon

import (
	"fmt"

	"github.com/nicteam/nicteam/internal/lacp"
	"github.com/nicteam/nicteam/internal/packet"
	"golang.org/x/net/bpf"
)

// lacpFilter passes LACPDUs (slow protocols subtype 1) only: Marker PDUs
// share the EtherType and are no business of the LACP machines.
var lacpFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 14, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: lacp.Subtype, SkipTrue: 1},
	bpf.RetConstant{Val: 1514},
	bpf.RetConstant{Val: 0},
}

// openSlowSocket opens a socket that sends and receives LACPDUs on one
// member. Packet sockets bound to a protocol see frames after tc ingress,
// where the member's program passes slow protocol frames up instead of
// redirecting them to the team. Closing it ends a blocked read.
func openSlowSocket(ifindex int) (*packet.Conn, error) {
	c, err := packet.Listen(ifindex, packet.Config{
		Protocol:       lacp.EtherType,
		Filter:         lacpFilter,
		IgnoreOutgoing: true,
		// A NIC that filters multicast must be told to accept the slow
		// protocols address; the membership ends with the socket.
		Multicast: lacp.SlowProtocolsMAC,
	})
	if err != nil {
		return nil, fmt.Errorf("lacp: %w", err)
	}
	return c, nil
}
