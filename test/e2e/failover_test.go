package e2e

import (
	"syscall"
	"testing"
	"time"
)

// TestDatapathFailsOverWithoutDaemon stops the daemon (SIGSTOP), pulls a
// member's cable and pings on: the datapath sends the pulled member's frames
// through its fallback by itself. Each member in turn, the primary first.
func TestDatapathFailsOverWithoutDaemon(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--lb", "transport-ports")
	if tm := e.waitStatus("Team0", "Up"); !tm.DatapathFailover {
		t.Fatalf("datapathFailover false as root on this kernel: %+v", tm)
	}
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	if r := e.ping("10.77.0.2", 20, 10*time.Millisecond); r.Received == 0 {
		t.Fatalf("no ping through the team: %+v", r)
	}
	for _, nic := range []string{"eth1", "eth2"} {
		if err := syscall.Kill(e.daemon.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		resumed := false
		resume := func() {
			if !resumed {
				resumed = true
				_ = syscall.Kill(e.daemon.Pid(), syscall.SIGCONT)
			}
		}
		t.Cleanup(resume)
		if err := e.b.Fail(e.b.Host, nic); err != nil {
			t.Fatal(err)
		}
		// Several flows (ICMP ids differ per ping run), so that some hash
		// to the pulled member whichever it is.
		for i := range 4 {
			if r := e.ping("10.77.0.2", 25, 5*time.Millisecond); r.Received < 24 {
				t.Errorf("%s pulled, daemon stopped, run %d: %+v; want every ping but one answered", nic, i, r)
			}
		}
		resume()
		e.waitStatus("Team0", "Degraded")
		if err := e.b.Restore(e.b.Host, nic); err != nil {
			t.Fatal(err)
		}
		e.waitStatus("Team0", "Up")
	}
}

// TestDeletedMemberNoMisroute deletes a member's interface: the daemon
// survives it, the team is Degraded and traffic flows through the other.
func TestDeletedMemberNoMisroute(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--lb", "transport-ports")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	e.hostRun("ip", "link", "del", "eth2")
	e.waitStatus("Team0", "Degraded")
	if m := e.member("Team0", "eth2"); m.FailureReason.String() != "NicNotPresent" {
		t.Errorf("eth2 deleted: %+v", m)
	}
	for i := range 4 {
		if r := e.ping("10.77.0.2", 25, 5*time.Millisecond); r.Received != 25 {
			t.Errorf("eth2 deleted, run %d: %+v; want every ping answered", i, r)
		}
	}
	if err := e.daemon.Exited(); err != nil {
		t.Fatal(err)
	}
}

// TestTapCarrierLossKnownPromptly pulls a tap member's cable 100 ms after
// another link's carrier changed, when the kernel's linkwatch holds the
// tap's event back for most of a second: the daemon's backstop must know
// of the loss in milliseconds. The bound is far below linkwatch's second,
// not a benchmark (the failover section of nicteam-bench measures it).
func TestTapCarrierLossKnownPromptly(t *testing.T) {
	e := newEnv(t, 1)
	e.hostRun("ip", "tuntap", "add", "dev", "tap1", "mode", "tap")
	pull := e.openTap("tap1")
	e.hostRun("ip", "tuntap", "add", "dev", "tap2", "mode", "tap")
	pullOther := e.openTap("tap2")
	e.hostRun("ip", "link", "set", "tap2", "up")
	e.mustCLI("new", "Team0", "--members", "eth1,tap1", "--lb", "transport-ports")
	e.waitStatus("Team0", "Up")
	time.Sleep(time.Second) // linkwatch's batch of the set-up has run

	pullOther()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	pull()
	for {
		if m := e.member("Team0", "tap1"); m.OperationalStatus.String() == "Failed" {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("tap1 not Failed 2 s after its cable was pulled")
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("tap1 Failed %v after the pull", took)
	if took > 200*time.Millisecond {
		t.Errorf("tap1 Failed %v after the pull: the kernel's delayed event, not the backstop", took)
	}
}
