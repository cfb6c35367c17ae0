// Package packet is a raw AF_PACKET socket on one interface: whole
// Ethernet frames out of it and, optionally, a filtered stream of frames
// in. The socket is non-blocking and run by the Go runtime's poller, so
// read deadlines work and closing it ends a blocked read.
package packet

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Config says what a Conn receives. The zero Config receives nothing:
// a socket for sending only.
type Config struct {
	// Protocol is the EtherType to receive (unix.ETH_P_ALL for every
	// frame); 0 receives nothing.
	Protocol uint16
	// Filter, when set, is attached before the socket is bound, so no
	// unfiltered frame can queue up first.
	Filter []bpf.Instruction
	// IgnoreOutgoing leaves out the frames the host itself sends.
	IgnoreOutgoing bool
	// Multicast is a group address the NIC must accept while the socket
	// is open (a NIC that filters multicast drops it otherwise).
	Multicast net.HardwareAddr
}

// Conn is a packet socket on one interface.
type Conn struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int
}

// Listen opens a packet socket on ifindex, in the calling thread's network
// namespace. Without CAP_NET_RAW the error matches os.ErrPermission.
func Listen(ifindex int, cfg Config) (*Conn, error) {
	if ifindex <= 0 {
		return nil, fmt.Errorf("packet socket: invalid ifindex %d", ifindex)
	}
	// Protocol 0: the socket receives nothing until bound with one.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket on ifindex %d: %w", ifindex, os.NewSyscallError("socket", err))
	}
	if err := configure(fd, ifindex, cfg); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket on ifindex %d: %w", ifindex, err)
	}
	f := os.NewFile(uintptr(fd), "packet")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("packet socket on ifindex %d: %w", ifindex, err)
	}
	return &Conn{f: f, rc: rc, ifindex: ifindex}, nil
}

func configure(fd, ifindex int, cfg Config) error {
	if cfg.Filter != nil {
		raw, err := bpf.Assemble(cfg.Filter)
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
	}
	if cfg.IgnoreOutgoing {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return os.NewSyscallError("setsockopt PACKET_IGNORE_OUTGOING", err)
		}
	}
	if cfg.Multicast != nil {
		mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_MULTICAST, Alen: uint16(len(cfg.Multicast))}
		copy(mreq.Address[:], cfg.Multicast)
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return os.NewSyscallError("setsockopt PACKET_ADD_MEMBERSHIP", err)
		}
	}
	if cfg.Protocol != 0 {
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(cfg.Protocol), Ifindex: ifindex}); err != nil {
			return os.NewSyscallError("bind", err)
		}
	}
	return nil
}

// Send transmits one whole Ethernet frame out of the interface.
func (c *Conn) Send(frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("send: frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	// The EtherType becomes skb->protocol, which drivers' offloads and tc
	// look at.
	to := &unix.SockaddrLinklayer{Protocol: htons(binary.BigEndian.Uint16(frame[12:])), Ifindex: c.ifindex}
	var err error
	werr := c.rc.Write(func(fd uintptr) bool {
		err = unix.Sendto(int(fd), frame, 0, to)
		return err != unix.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return os.NewSyscallError("sendto", err)
}

// Recv reads one frame, truncated to len(buf); after the read deadline it
// fails with os.ErrDeadlineExceeded, after Close with os.ErrClosed.
func (c *Conn) Recv(buf []byte) (int, error) {
	var n int
	var err error
	rerr := c.rc.Read(func(fd uintptr) bool {
		n, _, err = unix.Recvfrom(int(fd), buf, 0)
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return 0, rerr
	}
	return n, os.NewSyscallError("recvfrom", err)
}

// Ifindex is the interface the socket is on.
func (c *Conn) Ifindex() int { return c.ifindex }

// SetReadDeadline bounds Recv; the zero time removes the bound.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// Close releases the socket. It waits for an RCU grace period in the
// kernel (packet_release calls synchronize_net): callers on a latency
// critical path close in the background.
func (c *Conn) Close() error { return c.f.Close() }

// htons puts v in network byte order, as sockaddr_ll and socket(2) want it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
