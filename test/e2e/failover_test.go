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
