// Command nicteam-seqstream sends a numbered UDP stream and reports what
// arrived, to measure how long traffic stops when a team member fails.
// The accounting is in internal/seqstream; this is sockets and flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
	"unsafe"

	"github.com/nicteam/nicteam/internal/seqstream"
	"golang.org/x/sys/unix"
)

const usage = `nicteam-seqstream sends a numbered UDP stream and reports what arrived:
loss, reordering, duplicates, and every outage (a run of lost packets) with
how long it lasted. It measures how long traffic stops when a team member
fails.

Usage:
  nicteam-seqstream recv --listen ADDR:PORT [--duration D] [--bins N] [-o text|json]
  nicteam-seqstream send --to ADDR:PORT [--from ADDR:PORT] [--pps N] [--duration D] [--size BYTES]

Start recv first; it says "listening on ADDR:PORT" on stderr when ready.
It stops when the sender's end marker arrives (and then waits 100ms for
stragglers), after --duration, or on SIGINT or SIGTERM, and prints its
report on stdout.

An outage lasts from the arrival of the last packet before the gap to the
arrival of the first packet after it, as the kernel stamped them on
receipt, so it is measured to within one packet interval (1/pps) plus the
sender's scheduling noise; the receiver's does not count. Packets lost at the end of
the stream are counted only if the end marker arrives; the report says so
when it did not.

Run "nicteam-seqstream recv --help" or "nicteam-seqstream send --help" for
the flags.
`

const (
	// linger is how long recv keeps reading after the end marker, for
	// packets that were overtaken by it.
	linger = 100 * time.Millisecond
	// endRepeats and endGap: the end marker is sent several times, spaced
	// out, so that one lost copy does not hide the tail of the stream.
	endRepeats = 5
	endGap     = 10 * time.Millisecond
	// spinBelow: waits shorter than this are spun rather than slept,
	// because a sleep overshoots by tens of microseconds, more than the
	// gap between packets at tens of kpps.
	spinBelow = 200 * time.Microsecond
	// rcvBuf is the receive buffer recv asks for, so that bursts after a
	// stall of the receiver are queued rather than measured as loss.
	rcvBuf = 8 << 20
	// maxUDPPayload is the largest UDP payload over IPv4.
	maxUDPPayload = 65507
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nicteam-seqstream: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command: recv or send")
	}
	switch args[0] {
	case "recv":
		return recvCmd(ctx, args[1:], stdout, stderr)
	case "send":
		return sendCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q: want recv or send (see --help)", args[0])
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: nicteam-seqstream %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

func recvCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("recv", "recv --listen ADDR:PORT [--duration D] [--bins N] [-o text|json]", stderr)
	listen := fs.String("listen", "", "`ADDR:PORT` to receive the stream on (required)")
	duration := fs.Duration("duration", 0, "stop after `D` even if the end marker has not arrived (0: wait for it or a signal)")
	bins := fs.Uint64("bins", 0, "count the packets received per `N` sequence numbers, in the JSON report (0: do not)")
	format := fs.String("o", "text", "report `format`: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *listen == "" {
		return errors.New("recv: --listen is required")
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("recv: -o %q: want text or json", *format)
	}
	laddr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		return fmt.Errorf("recv: %w", err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return fmt.Errorf("recv: %w", err)
	}
	defer conn.Close()
	growRcvBuf(conn)
	if err := stampArrivals(conn); err != nil {
		return fmt.Errorf("recv: %w", err)
	}
	fmt.Fprintf(stderr, "listening on %s\n", conn.LocalAddr())

	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	rep, err := receive(ctx, conn, *bins)
	if err != nil {
		return fmt.Errorf("recv: %w", err)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err = fmt.Fprint(stdout, rep)
	return err
}

// receive records the stream arriving on conn until ctx ends or linger
// after the end marker, counting packets per bin sequence numbers if bin
// is not 0.
func receive(ctx context.Context, conn *net.UDPConn, bin uint64) (seqstream.Report, error) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// Ending by deadline keeps the read loop free of any other wake-up.
	go func() {
		<-ctx.Done()
		conn.SetReadDeadline(time.Now())
	}()
	rec := seqstream.Recorder{BinSeqs: bin}
	buf := make([]byte, maxUDPPayload)
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))))
	ending := false
	for {
		n, oobn, _, _, err := conn.ReadMsgUDP(buf, oob)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return rec.Report(), nil
		}
		if err != nil {
			return rec.Report(), err
		}
		if p, err := rec.Receive(buf[:n], arrival(oob[:oobn])); err == nil && p.Kind == seqstream.End && !ending {
			ending = true
			time.AfterFunc(linger, stop)
		}
	}
}

// stampArrivals asks the kernel to stamp each datagram with the time it
// arrived (SO_TIMESTAMPNS, taken as the stack receives it). Arrival times
// from the kernel are the network's: a receiver that was not scheduled for
// a while, then read its queue in a burst, would otherwise see a gap
// longer before the burst and none inside it.
func stampArrivals(conn *net.UDPConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("receive timestamps: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return fmt.Errorf("receive timestamps: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("receive timestamps: SO_TIMESTAMPNS: %w", serr)
	}
	return nil
}

// arrival is the kernel's receive timestamp in the control messages oob,
// or now if there is none.
func arrival(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS &&
				len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				return time.Unix(ts.Unix())
			}
		}
	}
	return time.Now()
}

// growRcvBuf enlarges conn's receive buffer past net.core.rmem_max when
// the process may (CAP_NET_ADMIN), and as far as the limit allows when not.
func growRcvBuf(conn *net.UDPConn) {
	var serr error
	rc, err := conn.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf)
		})
	}
	if err != nil || serr != nil {
		// Best effort: the kernel caps it silently.
		_ = conn.SetReadBuffer(rcvBuf)
	}
}

func sendCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", "send --to ADDR:PORT [--from ADDR:PORT] [--pps N] [--duration D] [--size BYTES]", stderr)
	to := fs.String("to", "", "`ADDR:PORT` of the receiver (required)")
	from := fs.String("from", "", "send from `ADDR:PORT` (default: any address, an ephemeral port), which picks the flow's hash")
	pps := fs.Uint64("pps", 1000, "send `N` packets per second")
	duration := fs.Duration("duration", 10*time.Second, "send for `D`")
	size := fs.Int("size", 64, fmt.Sprintf("`BYTES` of UDP payload per packet, %d to %d", seqstream.HeaderLen, maxUDPPayload))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *to == "":
		return errors.New("send: --to is required")
	case *pps == 0:
		return errors.New("send: --pps must be positive")
	case *duration <= 0:
		return errors.New("send: --duration must be positive")
	case *size < seqstream.HeaderLen || *size > maxUDPPayload:
		return fmt.Errorf("send: --size %d out of range %d..%d", *size, seqstream.HeaderLen, maxUDPPayload)
	}
	raddr, err := net.ResolveUDPAddr("udp", *to)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	var laddr *net.UDPAddr
	if *from != "" {
		if laddr, err = net.ResolveUDPAddr("udp", *from); err != nil {
			return fmt.Errorf("send: --from: %w", err)
		}
	}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer conn.Close()
	res, err := transmit(ctx, conn, *pps, *duration, *size)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	fmt.Fprintf(stdout, "sent %d packets in %v (%.0f pps)", res.sent, res.elapsed.Round(time.Millisecond),
		float64(res.sent)/res.elapsed.Seconds())
	if res.errors > 0 {
		fmt.Fprintf(stdout, "; %d send errors, the first: %v", res.errors, res.firstErr)
	}
	fmt.Fprintln(stdout)
	return nil
}

type sendResult struct {
	sent     uint64 // data packets, including those whose write failed
	errors   uint64
	firstErr error
	elapsed  time.Duration
}

// transmit sends data packets on conn at pps for d, or until ctx ends, then
// the end marker. A packet whose write fails keeps its sequence number: to
// the receiver it is lost, as it is. Errors do not stop the stream, since
// a failover may well make some writes fail (no route, no buffer space,
// port unreachable from a receiver not yet listening).
//
// Writes never block. A blocked sender would hold its sequence numbers
// back and send them late in a burst, and the receiver would count a long
// outage with hardly anything missing; a full socket buffer (packets
// queued behind an unresolved neighbour, say) drops the packet instead,
// so the stream keeps its schedule and what is missing matches how long.
func transmit(ctx context.Context, conn *net.UDPConn, pps uint64, d time.Duration, size int) (sendResult, error) {
	var res sendResult
	rc, err := conn.SyscallConn()
	if err != nil {
		return res, err
	}
	buf := make([]byte, size)
	total := seqstream.Total(d, pps)
	start := time.Now()
	// Send times are wall clock at the start plus monotonic time since, so
	// a clock step during the run cannot bend them.
	startNs := start.UnixNano()
	write := func(p seqstream.Packet) {
		p.Sent = startNs + int64(time.Since(start))
		p.Put(buf)
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			_, werr = unix.Write(int(fd), buf)
			return true // done, whatever happened: no waiting for room
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			res.errors++
			if res.firstErr == nil {
				res.firstErr = err
			}
		}
	}
	for res.sent < total && ctx.Err() == nil {
		// Whatever is due goes out back to back, so a late wake-up costs a
		// burst, not a lower rate.
		for due := min(seqstream.Due(time.Since(start), pps), total); res.sent < due; res.sent++ {
			write(seqstream.Packet{Kind: seqstream.Data, Seq: res.sent})
		}
		if res.sent == total {
			break
		}
		next := time.Duration(float64(res.sent) / float64(pps) * float64(time.Second))
		if wait := next - time.Since(start); wait > spinBelow {
			time.Sleep(wait - spinBelow/2)
		}
	}
	res.elapsed = time.Since(start)
	for i := range endRepeats {
		if i > 0 {
			time.Sleep(endGap)
		}
		write(seqstream.Packet{Kind: seqstream.End, Seq: res.sent})
	}
	return res, nil
}
