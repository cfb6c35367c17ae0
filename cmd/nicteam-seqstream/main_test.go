package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/seqstream"
)

// asMain makes the test binary act as the command, so that the lab test
// can run it in namespaces without building it.
const asMain = "NICTEAM_SEQSTREAM_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"recv --listen ADDR:PORT", "send --to ADDR:PORT", "outage"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, cmd := range []string{"recv", "send"} {
		errOut.Reset()
		if err := run(context.Background(), []string{cmd, "--help"}, &out, &errOut); err == nil || !strings.Contains(errOut.String(), "-duration") {
			t.Errorf("%s --help: %v, output %q", cmd, err, errOut.String())
		}
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"recv"},
		{"recv", "--listen", "127.0.0.1:0", "-o", "yaml"},
		{"recv", "--listen", "127.0.0.1:0", "--bins", "-1"},
		{"send"},
		{"send", "--to", "127.0.0.1:9", "--pps", "0"},
		{"send", "--to", "127.0.0.1:9", "--size", "8"},
		{"send", "--to", "127.0.0.1:9", "extra"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

// TestLoopback runs a stream over loopback in-process, at a rate that
// needs the spinning pacer, and expects all of it.
// TestArrivalIsTheKernels reads datagrams long after they arrived: their
// arrival time must be when the kernel took them in, not when they were
// read. The kernel turns stamping on for the first socket that asks by a
// deferred work item, so the first datagrams may still be stamped as read.
func TestArrivalIsTheKernels(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := stampArrivals(conn); err != nil {
		t.Fatal(err)
	}
	send, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	const wait = 20 * time.Millisecond
	buf, oob := make([]byte, 16), make([]byte, 128)
	for deadline := time.Now().Add(2 * time.Second); ; {
		sent := time.Now()
		if _, err := send.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(wait)
		_, oobn, _, _, err := conn.ReadMsgUDP(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		read, at := time.Now(), arrival(oob[:oobn])
		if at.Before(sent) {
			t.Fatalf("arrival %v is %v before the send", at, sent.Sub(at))
		}
		if read.Sub(at) >= wait {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("arrival %v only %v before the read after %v: the kernel does not stamp datagrams", at, read.Sub(at), wait)
		}
	}
}

func TestLoopback(t *testing.T) {
	rconn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rconn.Close()
	growRcvBuf(rconn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reports := make(chan seqstream.Report, 1)
	go func() {
		rep, err := receive(ctx, rconn, 2000)
		if err != nil {
			t.Error(err)
		}
		reports <- rep
	}()

	sconn, err := net.DialUDP("udp", nil, rconn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close()
	const pps, d = 20_000, 500 * time.Millisecond
	res, err := transmit(ctx, sconn, pps, d, 64)
	if err != nil {
		t.Fatal(err)
	}
	if res.sent != 10_000 || res.errors != 0 {
		t.Fatalf("sent %d with %d errors (%v), want 10000 without", res.sent, res.errors, res.firstErr)
	}
	rep := <-reports
	if !rep.Ended || rep.Sent != 10_000 {
		t.Fatalf("report %+v: want the end marker with 10000 sent", rep)
	}
	// Loopback does not drop, but a test machine can stall a receiver long
	// enough for a burst to overflow; allow a trace.
	if rep.Lost > 10 || rep.Duplicates != 0 {
		t.Errorf("lost %d, duplicates %d over loopback\n%s", rep.Lost, rep.Duplicates, rep)
	}
	// 10000 packets in bins of 2000.
	if b := rep.Bins; b == nil || len(b.Counts) != 5 || sum(b.Counts) != rep.Received {
		t.Errorf("bins %+v, want 5 adding up to %d", b, rep.Received)
	}
}

func sum(xs []uint32) uint64 {
	var n uint64
	for _, x := range xs {
		n += uint64(x)
	}
	return n
}

// TestFailoverOutage pulls the cable of the NIC a stream leaves by, plugs
// it back, and expects the receiver to report an outage at least about as
// long, with counts that add up.
func TestFailoverOutage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds a lab of network namespaces")
	}
	b, err := lab.NewBasic(lab.UniquePrefix("nts"), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	if err := b.Host.AddAddr("eth1", lab.HostCIDRv4); err != nil {
		t.Fatal(err)
	}
	// Pulling the cable flushes eth1's neighbour cache, and re-resolving
	// the peer would add up to a second (the ARP retransmit time) to the
	// outage. A permanent entry survives, so the outage is the cable's.
	peer, err := b.Peer.Link("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Host.Run("ip", "neigh", "replace", lab.PeerIPv4, "lladdr", peer.Attrs().HardwareAddr.String(), "nud", "permanent", "dev", "eth1"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(asMain, "1") // inherited by the processes Start runs
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	dst := net.JoinHostPort(lab.PeerIPv4, "7700")
	recv, err := b.Peer.Start(exe, "recv", "--listen", dst, "--duration", "20s", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(recv.Output(), "listening on"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("receiver not listening: %s", recv.Output())
		}
	}
	send, err := b.Host.Start(exe, "send", "--to", dst, "--pps", "10000", "--duration", "1500ms")
	if err != nil {
		t.Fatal(err)
	}

	const down = 300 * time.Millisecond
	time.Sleep(400 * time.Millisecond)
	if err := b.Fail(b.Host, "eth1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(down)
	if err := b.Restore(b.Host, "eth1"); err != nil {
		t.Fatal(err)
	}

	if err := send.Wait(); err != nil {
		t.Fatalf("send: %v\n%s", err, send.Output())
	}
	if err := recv.Wait(); err != nil {
		t.Fatalf("recv: %v\n%s", err, recv.Output())
	}
	out := recv.Output()
	var rep seqstream.Report
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		t.Fatalf("parse report: %v\n%s", err, out)
	}
	t.Logf("send: %s", strings.TrimSpace(send.Output()))
	t.Logf("report: %+v", rep)
	if !rep.Ended || rep.Sent != 15_000 {
		t.Fatalf("want the end marker with 15000 sent\n%s", out)
	}
	if len(rep.Outages) == 0 {
		t.Fatalf("no outage reported for a cable out %v\n%s", down, out)
	}
	// Only what cannot depend on machine load: the stream cannot come back
	// before the cable does, and the counts add up. How long outages take
	// is the benchmark's business.
	var missing uint64
	for _, o := range rep.Outages {
		missing += o.Missing
	}
	if got := time.Duration(rep.MaxOutageUs) * time.Microsecond; got < down-down/10 {
		t.Errorf("longest outage %v, but the cable was out %v", got, down)
	}
	if missing != rep.Lost || rep.Received+rep.Lost != rep.Sent {
		t.Errorf("missing %d, lost %d, received %d, sent %d: do not add up", missing, rep.Lost, rep.Received, rep.Sent)
	}
}
