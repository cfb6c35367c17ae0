package e2e

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"
)

// tunSetCarrier is TUNSETCARRIER, _IOW('T', 226, int), which x/sys lacks.
const tunSetCarrier = 0x400454e2

// openTap attaches the test to the persistent tap name in the host's
// namespace, which gives it carrier, until the test ends. The function
// returned pulls its cable: the carrier goes off as a NIC driver's would,
// leaving the kernel's linkwatch to report it (closing the tap's file would
// report it at once).
func (e *env) openTap(name string) (pull func()) {
	e.t.Helper()
	var fd int
	err := e.b.Host.Do(func() error {
		var err error
		if fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	})
	if err != nil {
		e.t.Fatalf("attach to tap %s: %v", name, err)
	}
	e.t.Cleanup(func() { unix.Close(fd) })
	return func() {
		e.t.Helper()
		if err := unix.IoctlSetPointerInt(fd, tunSetCarrier, 0); err != nil {
			e.t.Fatalf("pull %s: %v", name, err)
		}
	}
}

// TestSpeedsHonoured teams a 10 Gbit/s veth with a tap set to 1 Gbit/s:
// each gets buckets in proportion to its speed, under address hashing and
// under Dynamic, and the team's speed is their sum.
func TestSpeedsHonoured(t *testing.T) {
	e := newEnv(t, 1)
	e.hostRun("ip", "tuntap", "add", "dev", "tap1", "mode", "tap")
	e.hostRun("ethtool", "-s", "tap1", "speed", "1000", "duplex", "full", "autoneg", "off")
	e.openTap("tap1")
	for _, lb := range []string{"transport-ports", "dynamic"} {
		e.mustCLI("new", "Team0", "--members", "eth1,tap1", "--lb", lb)
		tm := e.waitStatus("Team0", "Up")
		if tm.LinkSpeed != 11e9 {
			t.Errorf("%s: team speed %d, want 11 Gbps", lb, tm.LinkSpeed)
		}
		st, err := e.client().Stats(context.Background(), "Team0")
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, b := range st.Buckets {
			n[b.Member]++
		}
		// 256 buckets at 10:1 are 232.7 and 23.3.
		if n["eth1"] != 233 || n["tap1"] != 23 {
			t.Errorf("%s: buckets per member %v, want eth1 233 and tap1 23 (10:1)", lb, n)
		}
		e.mustCLI("rm", "Team0")
	}
}
