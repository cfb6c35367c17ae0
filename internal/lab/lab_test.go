package lab

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and bridges")
	}
}

// newBasic builds a Basic lab that is closed when the test ends, and
// checks then that no namespace with its prefix is left.
func newBasic(t *testing.T, nics int) *Basic {
	t.Helper()
	b, err := NewBasic(UniquePrefix("ntl"), nics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if left := netnsWithPrefix(t, b.Prefix); len(left) > 0 {
			t.Errorf("namespaces left after Close: %v", left)
		}
	})
	return b
}

func netnsWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := run("netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(out, "\n") {
		if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, prefix+"-") {
			found = append(found, name)
		}
	}
	return found
}

func ping(t *testing.T, h *Host, dst string, count int) PingResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := h.PingFlood(ctx, dst, 2*time.Millisecond, count)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func carrier(t *testing.T, h *Host, ifname string) (lowerUp bool, oper netlink.LinkOperState) {
	t.Helper()
	l, err := h.Link(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0, l.Attrs().OperState
}

func TestBasicFailRestore(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	b := newBasic(t, 2)

	if got := b.Host.NICs; len(got) != 2 || got[0] != "eth1" || got[1] != "eth2" {
		t.Fatalf("host NICs = %v, want [eth1 eth2]", got)
	}
	if got := b.SwitchPort(b.Host, "eth1"); got != "host-eth1" {
		t.Errorf("switch port of host eth1 = %q, want host-eth1", got)
	}
	for _, nic := range b.Host.NICs {
		if up, _ := carrier(t, b.Host, nic); !up {
			t.Errorf("%s has no carrier after NewBasic", nic)
		}
	}
	for _, cidr := range []string{HostCIDRv4, HostCIDRv6} {
		if err := b.Host.AddAddr("eth1", cidr); err != nil {
			t.Fatal(err)
		}
	}
	for _, dst := range []string{PeerIPv4, PeerIPv6} {
		if res := ping(t, b.Host, dst, 50); res.Lost() != 0 || res.Received != 50 {
			t.Fatalf("ping %s over eth1: %v\n%s", dst, res, res.Output)
		}
	}

	// A plain learning switch: it has learned eth1's MAC from the pings.
	eth1, err := b.Host.Link("eth1")
	if err != nil {
		t.Fatal(err)
	}
	fdb, err := b.Switch.Run("bridge", "fdb", "show", "br", b.Switch.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if want := eth1.Attrs().HardwareAddr.String() + " dev host-eth1"; !strings.Contains(fdb, want) {
		t.Errorf("switch fdb lacks %q:\n%s", want, fdb)
	}
	br, err := b.Switch.Run("ip", "-d", "-o", "link", "show", b.Switch.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stp_state 0 ", "forward_delay 0 ", "vlan_filtering 0 ", "mcast_snooping 0 "} {
		if !strings.Contains(br, want) {
			t.Errorf("bridge lacks %q: %s", want, br)
		}
	}

	if err := b.Fail(b.Host, "eth1"); err != nil {
		t.Fatal(err)
	}
	if up, _ := carrier(t, b.Host, "eth1"); up {
		t.Fatal("eth1 still has IFF_LOWER_UP after Fail")
	}
	// The operational state follows through the kernel's linkwatch, which
	// may lag behind the carrier flag.
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, oper := carrier(t, b.Host, "eth1")
		if oper == netlink.OperDown || oper == netlink.OperLowerLayerDown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eth1 operstate %v after Fail, want down", oper)
		}
		time.Sleep(10 * time.Millisecond)
	}
	out, err := b.Host.Run("ip", "-o", "link", "show", "dev", "eth1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "NO-CARRIER") {
		t.Errorf("ip link show eth1 after Fail: %s (want NO-CARRIER)", out)
	}
	if up, _ := carrier(t, b.Host, "eth2"); !up {
		t.Error("eth2 lost carrier when eth1 failed")
	}

	if err := b.Restore(b.Host, "eth1"); err != nil {
		t.Fatal(err)
	}
	if up, _ := carrier(t, b.Host, "eth1"); !up {
		t.Fatal("eth1 has no carrier after Restore")
	}
	for _, dst := range []string{PeerIPv4, PeerIPv6} {
		if res := ping(t, b.Host, dst, 50); res.Lost() != 0 {
			t.Errorf("ping %s after Restore: %v\n%s", dst, res, res.Output)
		}
	}
}

// TestPingCountsLoss checks that pings dropped in the network, not
// refused locally, show up as missing sequence numbers.
func TestPingCountsLoss(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	b := newBasic(t, 1)
	if err := b.Host.AddAddr("eth1", HostCIDRv4); err != nil {
		t.Fatal(err)
	}
	if res := ping(t, b.Host, PeerIPv4, 5); res.Lost() != 0 {
		t.Fatalf("warm-up ping: %v", res)
	}
	// The peer's cable goes: the host still has carrier and sends, the
	// requests die at the switch.
	if err := b.Fail(b.Peer, "eth0"); err != nil {
		t.Fatal(err)
	}
	res := ping(t, b.Host, PeerIPv4, 20)
	if res.Transmitted != 20 || res.Lost() != 20 {
		t.Fatalf("ping with the peer unplugged: %v, want all 20 lost\n%s", res, res.Output)
	}
	if got := res.String(); got != "pings lost: 20 of 20 (seq 1–20)" {
		t.Errorf("String() = %q", got)
	}
}

func TestStartStopClose(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	b := newBasic(t, 1)

	p, err := b.Host.Start("sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	// Until nsenter has exec'd the program it may not have entered yet.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/comm")
		if string(comm) == "sleep\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process is still %q", comm)
		}
	}
	if got, want := netnsInode(t, "/proc/"+strconv.Itoa(p.Pid())+"/ns/net"), netnsInode(t, nsPath(b.Host.NS)); got != want {
		t.Errorf("process runs in netns %d, want the host's %d", got, want)
	}
	if got, want := netnsInode(t, "/proc/"+strconv.Itoa(p.Pid())+"/ns/mnt"), netnsInode(t, "/proc/self/ns/mnt"); got != want {
		t.Errorf("process runs in mount namespace %d, want the caller's %d", got, want)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("stop sleep: %v", err)
	}

	sh, err := b.Host.Start("sh", "-c", "echo started; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(sh.Output(), "started"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output = %q, want it to contain \"started\"", sh.Output())
		}
	}
	// A command started with Exec and never waited for must not keep the
	// namespace alive either.
	stray := b.Host.Exec(context.Background(), "sleep", "60")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	strayDone := make(chan struct{})
	go func() { stray.Wait(); close(strayDone) }()

	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-sh.Done():
	default:
		t.Error("process still running after Close")
	}
	select {
	case <-strayDone:
	case <-time.After(5 * time.Second):
		t.Error("command started with Exec still running after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := b.Host.Start("sleep", "1"); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func netnsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
