package daemon

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"

	"github.com/nicteam/nicteam/internal/lacp"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// slowSocket sends and receives LACPDUs on one member. Packet sockets bound
// to a protocol see frames after tc ingress, where the member's program
// passes slow protocol frames up instead of redirecting them to the team.
// It is non-blocking and run by the runtime poller, so closing it ends a
// blocked read.
type slowSocket struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int
}

// lacpFilter passes LACPDUs (slow protocols subtype 1) only: Marker PDUs
// share the EtherType and are no business of the LACP machines.
var lacpFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 14, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: lacp.Subtype, SkipTrue: 1},
	bpf.RetConstant{Val: 1514},
	bpf.RetConstant{Val: 0},
}

func openSlowSocket(ifindex int) (*slowSocket, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("lacp socket on ifindex %d: %w", ifindex, os.NewSyscallError("socket", err))
	}
	if err := bindSlow(fd, ifindex); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lacp socket on ifindex %d: %w", ifindex, err)
	}
	f := os.NewFile(uintptr(fd), "lacp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lacp socket on ifindex %d: %w", ifindex, err)
	}
	return &slowSocket{f: f, rc: rc, ifindex: ifindex}, nil
}

func bindSlow(fd, ifindex int) error {
	raw, err := bpf.Assemble(lacpFilter)
	if err != nil {
		return fmt.Errorf("assemble filter: %w", err)
	}
	insns := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		insns[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return os.NewSyscallError("setsockopt SO_ATTACH_FILTER", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return os.NewSyscallError("setsockopt PACKET_IGNORE_OUTGOING", err)
	}
	// A NIC that filters multicast must be told to accept the slow
	// protocols address; the membership ends with the socket.
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_MULTICAST, Alen: 6}
	copy(mreq.Address[:], lacp.SlowProtocolsMAC)
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return os.NewSyscallError("setsockopt PACKET_ADD_MEMBERSHIP", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(lacp.EtherType), Ifindex: ifindex}); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

func (s *slowSocket) send(frame []byte) error {
	to := &unix.SockaddrLinklayer{Protocol: htons(lacp.EtherType), Ifindex: s.ifindex}
	var err error
	werr := s.rc.Write(func(fd uintptr) bool {
		err = unix.Sendto(int(fd), frame, 0, to)
		return err != unix.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return os.NewSyscallError("sendto", err)
}

func (s *slowSocket) recv(buf []byte) (int, error) {
	var n int
	var err error
	rerr := s.rc.Read(func(fd uintptr) bool {
		n, _, err = unix.Recvfrom(int(fd), buf, 0)
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return 0, rerr
	}
	return n, os.NewSyscallError("recvfrom", err)
}

// close ends the socket and its reader.
func (s *slowSocket) close() { s.f.Close() }

// htons puts v in network byte order, as sockaddr_ll wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
