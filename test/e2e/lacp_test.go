package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
)

// newBackToBack builds two hosts, a and b, cabled directly (no switch) with
// two veth pairs eth1-eth1 and eth2-eth2, and a daemon on each.
func newBackToBack(t *testing.T) (a, b *env) {
	needRoot(t)
	l := lab.New(lab.UniquePrefix("l"))
	t.Cleanup(func() { l.Close() })
	ha, err := l.AddHost("a")
	if err != nil {
		t.Fatal(err)
	}
	hb, err := l.AddHost("b")
	if err != nil {
		t.Fatal(err)
	}
	for _, nic := range []string{"eth1", "eth2"} {
		cable(t, l, ha, nic, hb, nic)
	}
	return newHostEnv(t, l, ha), newHostEnv(t, l, hb)
}

// lacpOf returns the team's LACP listing through the CLI's JSON.
func (e *env) lacpOf(name string) api.Lacp {
	e.t.Helper()
	var l api.Lacp
	e.getJSON(&l, "lacp", name)
	return l
}

// waitMember polls until the member reports the failure reason want and
// returns how long that took.
func (e *env) waitMember(teamName, member, want string, within time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		m := e.member(teamName, member)
		if m.FailureReason.String() == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			e.t.Fatalf("%s of %s: %s/%s after %s, want %s", member, teamName, m.OperationalStatus, m.FailureReason, within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantCollecting checks that every port of the team is collecting and
// distributing and faces partnerMAC.
func wantCollecting(t *testing.T, e *env, teamName, partnerMAC string) {
	t.Helper()
	l := e.lacpOf(teamName)
	if len(l.Ports) != 2 {
		t.Fatalf("lacp %s: %d ports, want 2: %+v", teamName, len(l.Ports), l)
	}
	for _, p := range l.Ports {
		if p.Mux != "CollectingDistributing" || !p.Selected || p.Actor.Port == 0 ||
			!strings.EqualFold(p.Partner.System, partnerMAC) || p.Partner.Port == 0 ||
			!strings.Contains(strings.Join(p.Actor.StateBits, ","), "Collecting,Distributing") {
			t.Errorf("lacp %s port %s: %+v, want CollectingDistributing with partner %s", teamName, p.Member, p, partnerMAC)
		}
	}
}

func macOf(tm api.Team) string { return strings.ReplaceAll(tm.MacAddress, "-", ":") }

// TestLacpTeamAgainstTeam cables two LACP teams back to back: both reach
// Collecting_Distributing on every member, a pulled cable leaves both
// Degraded and forwarding, restored it rejoins, and a partner that stops
// speaking LACP leaves the members LacpNegotiationIssue within the fast
// timeout.
func TestLacpTeamAgainstTeam(t *testing.T) {
	a, b := newBackToBack(t)
	for i, e := range []*env{a, b} {
		e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--mode", "lacp")
		e.hostRun("ip", "addr", "add", fmt.Sprintf("10.78.0.%d/24", i+1), "dev", "Team0")
	}
	ta, tb := a.waitStatus("Team0", "Up"), b.waitStatus("Team0", "Up")
	wantCollecting(t, a, "Team0", macOf(tb))
	wantCollecting(t, b, "Team0", macOf(ta))
	if l := a.lacpOf("Team0"); l.LacpTimer.String() != "Fast" || l.Malformed != 0 {
		t.Errorf("lacp listing: %+v", l)
	}
	if out := a.mustCLI("lacp", "Team0"); !strings.Contains(out, "CollectingDistributing") || !strings.Contains(out, "PartnerSystem") {
		t.Errorf("lacp table:\n%s", out)
	}
	if ta.LacpTimer == nil || ta.LacpTimer.String() != "Fast" {
		t.Errorf("get Team0: LacpTimer %v, want Fast", ta.LacpTimer)
	}
	if out := a.mustCLI("get", "Team0"); !strings.Contains(out, "LacpTimer              : Fast\n") {
		t.Errorf("get Team0:\n%s", out)
	}
	if r := a.ping("10.78.0.2", 20, 10*time.Millisecond); r.Received < 19 || r.Duplicates > 0 {
		t.Fatalf("ping through LACP teams: %+v", r)
	}

	// Pull a cable: b's end goes down, a's loses carrier.
	b.hostRun("ip", "link", "set", "eth1", "down")
	a.waitStatus("Team0", "Degraded")
	b.waitStatus("Team0", "Degraded")
	if m := a.member("Team0", "eth1"); m.FailureReason.String() != "PhysicalMediaDisconnected" {
		t.Errorf("pulled: %+v", m)
	}
	if r := a.ping("10.78.0.2", 50, 5*time.Millisecond); r.Received < 48 {
		t.Errorf("ping with a cable pulled: %+v", r)
	}
	b.hostRun("ip", "link", "set", "eth1", "up")
	a.waitStatus("Team0", "Up")
	b.waitStatus("Team0", "Up")
	wantCollecting(t, a, "Team0", macOf(tb))
	if r := a.ping("10.78.0.2", 20, 10*time.Millisecond); r.Received < 19 {
		t.Errorf("ping after restore: %+v", r)
	}

	// b stops speaking LACP: a's partner information times out.
	b.mustCLI("set", "Team0", "--mode", "static")
	for _, nic := range []string{"eth1", "eth2"} {
		if d := a.waitMember("Team0", nic, "LacpNegotiationIssue", 5*time.Second); d > 4*time.Second {
			t.Errorf("%s: LacpNegotiationIssue after %s, want within the 3 s fast timeout", nic, d)
		}
	}
	a.waitStatus("Team0", "Down")
	if out := a.hostRun("ip", "-o", "link", "show", "Team0"); !strings.Contains(out, "NO-CARRIER") {
		t.Errorf("a Down team NIC keeps its carrier: %s", out)
	}
	// And back.
	b.mustCLI("set", "Team0", "--mode", "lacp")
	a.waitStatus("Team0", "Up")

	// A removed member's socket is closed, and a removed team's all.
	a.mustCLI("member", "remove", "Team0", "eth2")
	if n := a.lacpSockets(); n != 1 {
		t.Errorf("%d LACP sockets with one member, want 1", n)
	}
	a.mustCLI("rm", "Team0")
	if n := a.lacpSockets(); n != 0 {
		t.Errorf("%d LACP sockets left after rm", n)
	}
}

// lacpSockets counts the packet sockets bound to the slow protocols
// EtherType in the host's namespace (a closed socket is gone at once).
func (e *env) lacpSockets() int {
	e.t.Helper()
	n := 0
	for _, line := range strings.Split(e.hostRun("cat", "/proc/net/packet"), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[3] == "8809" {
			n++
		}
	}
	return n
}

// TestLacpMinLinks keeps a LACP team Down while fewer members than
// --min-links carry traffic.
func TestLacpMinLinks(t *testing.T) {
	a, b := newBackToBack(t)
	a.mustCLI("new", "Team0", "--members", "eth1,eth2", "--mode", "lacp", "--min-links", "2", "--lacp-key", "7", "--lacp-system-priority", "100")
	b.mustCLI("new", "Team0", "--members", "eth1,eth2", "--mode", "lacp", "--lacp-timer", "slow")
	a.waitStatus("Team0", "Up")
	if l := b.lacpOf("Team0"); l.Ports[0].Partner.Key != 7 || l.Ports[0].Partner.SystemPriority != 100 || l.LacpTimer.String() != "Slow" {
		t.Errorf("b sees a as %+v", l)
	}
	b.hostRun("ip", "link", "set", "eth2", "down")
	a.waitStatus("Team0", "Down")
	b.waitStatus("Team0", "Degraded")
	b.hostRun("ip", "link", "set", "eth2", "up")
	a.waitStatus("Team0", "Up")

	// The settings survive a daemon restart, and the protocol resumes
	// where it was: neither side stops collecting, traffic keeps flowing.
	a.hostRun("ip", "addr", "add", "10.78.0.1/24", "dev", "Team0")
	b.hostRun("ip", "addr", "add", "10.78.0.2/24", "dev", "Team0")
	a.daemon.Stop()
	a.startDaemon()
	if l := a.lacpOf("Team0"); l.Key != 7 || l.SystemPriority != 100 || l.MinLinks != 2 || len(l.Ports) != 2 {
		t.Errorf("after restart: %+v", l)
	}
	if tm := a.team("Team0"); tm.Status.String() != "Up" {
		t.Errorf("right after a restart: %+v", tm)
	}
	if r := a.ping("10.78.0.2", 300, 10*time.Millisecond); r.Received < 299 {
		t.Errorf("ping across the restart: %+v", r)
	}
	for _, e := range []*env{a, b} {
		if tm := e.team("Team0"); tm.Status.String() != "Up" {
			t.Errorf("after the restart: %+v", tm)
		}
	}
	wantCollecting(t, a, "Team0", macOf(b.team("Team0")))

	a.mustCLI("set", "Team0", "--min-links", "0")
	if tm := a.team("Team0"); tm.Status.String() != "Up" {
		t.Errorf("min-links 0: %+v", tm)
	}
}

// TestStaticTeamAgainstTeam cables two Static teams back to back: every
// member carries traffic at once, a broadcast is received once, and a
// pulled cable leaves both Degraded and forwarding.
func TestStaticTeamAgainstTeam(t *testing.T) {
	a, b := newBackToBack(t)
	for i, e := range []*env{a, b} {
		e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--mode", "static")
		e.hostRun("ip", "addr", "add", fmt.Sprintf("10.78.0.%d/24", i+1), "dev", "Team0")
	}
	a.waitStatus("Team0", "Up")
	b.waitStatus("Team0", "Up")
	b.hostRun("sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_broadcasts=0")
	// Each broadcast echo request reaches b once: a second copy would
	// draw a second reply, which ping reports as a duplicate.
	if r := a.ping("10.78.0.255", 10, 20*time.Millisecond, "-b"); r.Received < 9 || r.Duplicates > 0 {
		t.Errorf("broadcast ping: %+v", r)
	}
	for _, nic := range []string{"eth1", "eth2"} {
		b.hostRun("ip", "link", "set", nic, "down")
		a.waitStatus("Team0", "Degraded")
		if r := a.ping("10.78.0.2", 50, 5*time.Millisecond); r.Received < 48 {
			t.Errorf("%s pulled: ping %+v", nic, r)
		}
		b.hostRun("ip", "link", "set", nic, "up")
		a.waitStatus("Team0", "Up")
		b.waitStatus("Team0", "Up")
	}
	if l := a.lacpOf("Team0"); len(l.Ports) != 0 || l.TeamingMode.String() != "Static" {
		t.Errorf("a static team runs LACP: %+v", l)
	}
}

// ovs is lab.OVS for a test: commands that fail fail the test.
type ovs struct {
	*lab.OVS
	t *testing.T
}

// startOVS starts Open vSwitch on h with its state in a test directory, or
// skips the test if it is not installed. It is stopped when the test ends,
// and its logs are shown if the test failed.
func startOVS(t *testing.T, h *lab.Host) *ovs {
	t.Helper()
	if err := lab.OVSInstalled(); err != nil {
		t.Skip(err)
	}
	o, err := h.StartOVS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		o.Stop()
		if t.Failed() {
			t.Log(o.Logs())
		}
	})
	return &ovs{OVS: o, t: t}
}

func (o *ovs) vsctl(args ...string) string {
	o.t.Helper()
	out, err := o.Vsctl(args...)
	if err != nil {
		o.t.Fatal(err)
	}
	return out
}

func (o *ovs) appctl(args ...string) string {
	o.t.Helper()
	out, err := o.Appctl(args...)
	if err != nil {
		o.t.Fatal(err)
	}
	return out
}

// cable connects a's nic to port on host sw with a veth pair, both ends up.
func cable(t *testing.T, l *lab.Lab, a *lab.Host, nic string, sw *lab.Host, port string) {
	t.Helper()
	if err := l.Cable(a, nic, sw, port); err != nil {
		t.Fatal(err)
	}
}

// TestLacpAgainstOpenVSwitch faces a LACP team with an Open vSwitch bond
// (lacp=active, lacp-time=fast, balance-tcp) on the userspace datapath:
// both sides reach collecting/distributing on every member, traffic flows
// to a peer behind the switch, a pulled cable leaves the team Degraded and
// forwarding, restored it rejoins, and with LACP turned off on the switch
// the members are LacpNegotiationIssue within the fast timeout.
func TestLacpAgainstOpenVSwitch(t *testing.T) {
	needRoot(t)
	l := lab.New(lab.UniquePrefix("o"))
	t.Cleanup(func() { l.Close() })
	var hosts [3]*lab.Host
	for i, name := range []string{"host", "sw", "peer"} {
		h, err := l.AddHost(name)
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	host, sw, peer := hosts[0], hosts[1], hosts[2]
	cable(t, l, host, "eth1", sw, "p1")
	cable(t, l, host, "eth2", sw, "p2")
	cable(t, l, peer, "eth0", sw, "p3")
	if err := peer.AddAddr("eth0", "10.79.0.2/24"); err != nil {
		t.Fatal(err)
	}

	o := startOVS(t, sw)
	o.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
	o.vsctl("add-bond", "br0", "bond0", "p1", "p2", "lacp=active", "bond_mode=balance-tcp",
		"other_config:lacp-time=fast")
	o.vsctl("add-port", "br0", "p3")

	e := newHostEnv(t, l, host)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--mode", "lacp")
	e.hostRun("ip", "addr", "add", "10.79.0.1/24", "dev", "Team0")
	teamMAC := strings.ToLower(macOf(e.waitStatus("Team0", "Up")))
	ls := e.lacpOf("Team0")
	wantCollecting(t, e, "Team0", ls.Ports[0].Partner.System)
	o.waitLacp(t, teamMAC, 2)
	if r := e.ping("10.79.0.2", 20, 10*time.Millisecond); r.Received < 19 {
		t.Fatalf("ping through the OVS bond: %+v\n%s", r, o.appctl("bond/show", "bond0"))
	}

	// Pull p1's cable on the switch side.
	if _, err := sw.Run("ip", "link", "set", "p1", "down"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("Team0", "Degraded")
	if r := e.ping("10.79.0.2", 50, 5*time.Millisecond); r.Received < 48 {
		t.Errorf("p1 pulled: ping %+v", r)
	}
	if _, err := sw.Run("ip", "link", "set", "p1", "up"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("Team0", "Up")
	wantCollecting(t, e, "Team0", ls.Ports[0].Partner.System)
	o.waitLacp(t, teamMAC, 2)
	if r := e.ping("10.79.0.2", 20, 10*time.Millisecond); r.Received < 19 {
		t.Errorf("after restore: ping %+v", r)
	}

	// LACP off on the switch: our partner information times out.
	o.vsctl("set", "port", "bond0", "lacp=off")
	for _, nic := range []string{"eth1", "eth2"} {
		if d := e.waitMember("Team0", nic, "LacpNegotiationIssue", 5*time.Second); d > 4*time.Second {
			t.Errorf("%s: LacpNegotiationIssue after %s, want within the 3 s fast timeout", nic, d)
		}
	}
	e.waitStatus("Team0", "Down")
}

// waitLacp waits until ovs-appctl lacp/show reports bond0 negotiated with
// partner, and n members attached, enabled and, on both sides, collecting
// and distributing.
func (o *ovs) waitLacp(t *testing.T, partner string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := o.appctl("lacp/show", "bond0")
		if strings.Contains(out, "status: active negotiated") && strings.Count(out, "partner sys_id: "+partner) == n &&
			strings.Count(out, "current attached") == n && strings.Count(out, "may_enable: true") == n &&
			strings.Count(out, "synchronized collecting distributing") == 2*n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("OVS bond0 not negotiated with %s on %d members:\n%s", partner, n, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLacpPartnerInAnotherAggregation cables a's two members to two other
// systems: the aggregation follows one partner, and the member facing the
// other is Failed with LacpNegotiationIssue and carries nothing.
func TestLacpPartnerInAnotherAggregation(t *testing.T) {
	needRoot(t)
	l := lab.New(lab.UniquePrefix("l"))
	t.Cleanup(func() { l.Close() })
	var hosts [3]*lab.Host
	for i, name := range []string{"a", "b", "c"} {
		h, err := l.AddHost(name)
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	cable(t, l, hosts[0], "eth1", hosts[1], "eth1")
	cable(t, l, hosts[0], "eth2", hosts[2], "eth1")
	a, b, c := newHostEnv(t, l, hosts[0]), newHostEnv(t, l, hosts[1]), newHostEnv(t, l, hosts[2])
	a.mustCLI("new", "Team0", "--members", "eth1,eth2", "--mode", "lacp")
	for _, e := range []*env{b, c} {
		e.mustCLI("new", "Team0", "--members", "eth1", "--mode", "lacp")
	}
	a.waitStatus("Team0", "Degraded")
	var carrying, other []string
	for _, m := range []string{"eth1", "eth2"} {
		switch a.member("Team0", m).FailureReason.String() {
		case "NoFailure":
			carrying = append(carrying, m)
		case "LacpNegotiationIssue":
			other = append(other, m)
		}
	}
	if len(carrying) != 1 || len(other) != 1 {
		t.Fatalf("members carrying %v, with LacpNegotiationIssue %v; want one each", carrying, other)
	}
	for _, p := range a.lacpOf("Team0").Ports {
		if p.Member == other[0] && (p.Selected || p.Receive != "Current" || p.Mux == "CollectingDistributing") {
			t.Errorf("port facing the other aggregation: %+v", p)
		}
	}
}
