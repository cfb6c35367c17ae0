package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// linkSnapshot is what a member must get back after the team is gone.
type linkSnapshot struct {
	MAC     string
	MTU     int
	Promisc bool
	Up      bool
}

func (e *env) snapshot(names ...string) map[string]linkSnapshot {
	e.t.Helper()
	out := map[string]linkSnapshot{}
	e.inHost(func(h *netlink.Handle) {
		for _, n := range names {
			l, err := h.LinkByName(n)
			if err != nil {
				e.t.Fatalf("link %s: %v", n, err)
			}
			a := l.Attrs()
			out[n] = linkSnapshot{MAC: a.HardwareAddr.String(), MTU: a.MTU, Promisc: a.Promisc != 0, Up: a.Flags&1 != 0}
		}
	})
	return out
}

// inHost gives fn a netlink handle in the host namespace.
func (e *env) inHost(fn func(*netlink.Handle)) {
	e.t.Helper()
	ns, err := netns.GetFromName(e.b.Host.NS)
	if err != nil {
		e.t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		e.t.Fatal(err)
	}
	defer h.Close()
	fn(h)
}

func (e *env) linkNames() []string {
	var names []string
	e.inHost(func(h *netlink.Handle) {
		ls, err := h.LinkList()
		if err != nil {
			e.t.Fatal(err)
		}
		for _, l := range ls {
			names = append(names, l.Attrs().Name)
		}
	})
	return names
}

func (e *env) pins() []string {
	var found []string
	filepath.Walk(e.pinDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func nicNames(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("eth%d", i))
	}
	return out
}

// TestTeamOfTwo walks a team through its life: created Up with the
// primary's MAC and the members' summed speed, Degraded and still
// forwarding with either cable pulled, Down with both, Up again, and
// removed without a trace.
func TestTeamOfTwo(t *testing.T) {
	e := newEnv(t, 2)
	before := e.snapshot("eth1", "eth2")
	linksBefore := e.linkNames()

	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	tm := e.waitStatus("Team0", "Up")
	if strings.Join(tm.Members, ",") != "eth1,eth2" || tm.TeamNics != "Team0" ||
		tm.TeamingMode.String() != "SwitchIndependent" || tm.LoadBalancingAlgorithm.String() != "Dynamic" {
		t.Errorf("get Team0: %+v", tm)
	}
	var ads []api.Adapter
	e.getJSON(&ads, "adapters", "Team0", "eth1", "eth2")
	if ads[0].LinkSpeed != 20e9 || !strings.EqualFold(strings.ReplaceAll(ads[0].MacAddress, "-", ":"), before["eth1"].MAC) {
		t.Errorf("Team0 adapter: %+v, want 20 Gbps and eth1's MAC %s", ads[0], before["eth1"].MAC)
	}
	table := e.mustCLI("adapters")
	if !strings.Contains(table, "20 Gbps") || strings.Contains(table, "ntp") {
		t.Errorf("adapters table shows the hidden peer or the wrong speed:\n%s", table)
	}
	// eth1 owns the team MAC and eth2 sends and receives with its own:
	// neither must receive a MAC not its own, so neither is promiscuous.
	after := e.snapshot("eth1", "eth2")
	if after["eth1"].Promisc || after["eth2"].Promisc {
		t.Errorf("promiscuity: eth1 %v, eth2 %v; want neither", after["eth1"].Promisc, after["eth2"].Promisc)
	}

	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	if r := e.ping("10.77.0.2", 20, 10*time.Millisecond); r.Received == 0 {
		t.Fatalf("no ping through the team: %+v", r)
	}

	for _, nic := range []string{"eth1", "eth2"} {
		if err := e.b.Fail(e.b.Host, nic); err != nil {
			t.Fatal(err)
		}
		e.waitStatus("Team0", "Degraded")
		m := e.member("Team0", nic)
		if m.OperationalStatus.String() != "Failed" || m.FailureReason.String() != "PhysicalMediaDisconnected" {
			t.Errorf("%s pulled: %+v", nic, m)
		}
		if got := e.team("Team0").LinkSpeed; got != 10e9 {
			t.Errorf("%s pulled: link speed %d, want 10 Gbps", nic, got)
		}
		if r := e.ping("10.77.0.2", 50, 5*time.Millisecond); r.Received < 45 {
			t.Errorf("%s pulled: ping %+v", nic, r)
		}
		if err := e.b.Restore(e.b.Host, nic); err != nil {
			t.Fatal(err)
		}
		e.waitStatus("Team0", "Up")
	}

	e.b.Fail(e.b.Host, "eth1")
	e.b.Fail(e.b.Host, "eth2")
	e.waitStatus("Team0", "Down")
	if out := e.hostRun("ip", "-o", "link", "show", "Team0"); !strings.Contains(out, "NO-CARRIER") {
		t.Errorf("Down team NIC should have no carrier: %s", out)
	}
	e.b.Restore(e.b.Host, "eth1")
	e.b.Restore(e.b.Host, "eth2")
	e.waitStatus("Team0", "Up")
	if r := e.ping("10.77.0.2", 20, 10*time.Millisecond); r.Received < 18 {
		t.Errorf("after restore: ping %+v", r)
	}

	var events []api.Event
	e.client().Events(context.Background(), false, func(ev api.Event) error { events = append(events, ev); return nil })
	kinds := map[string]bool{}
	for _, ev := range events {
		kinds[ev.Kind] = true
	}
	for _, k := range []string{api.EventTeamCreated, api.EventMemberFailed, api.EventMemberUp, api.EventStatusChanged, api.EventBucketsMoved} {
		if !kinds[k] {
			t.Errorf("no %s event in %v", k, events)
		}
	}

	e.mustCLI("rm", "Team0")
	if got := e.snapshot("eth1", "eth2"); got["eth1"] != before["eth1"] || got["eth2"] != before["eth2"] {
		t.Errorf("members not restored: before %+v after %+v", before, got)
	}
	if got := e.linkNames(); strings.Join(got, ",") != strings.Join(linksBefore, ",") {
		t.Errorf("interfaces after rm %v, before %v", got, linksBefore)
	}
	if p := e.pins(); len(p) != 0 {
		t.Errorf("pins left after rm: %v", p)
	}
	if out := e.hostRun("tc", "filter", "show", "dev", "eth1", "ingress"); strings.TrimSpace(out) != "" {
		t.Errorf("filter left on eth1: %s", out)
	}
}

// TestTeamOfEight pulls each of eight members in turn under traffic from
// eight source addresses (which hash onto different members); every
// address keeps reaching the peer.
func TestTeamOfEight(t *testing.T) {
	e := newEnv(t, 8)
	e.mustCLI("new", "Team0", "--members", strings.Join(nicNames(8), ","), "--lb", "ip-addresses")
	e.waitStatus("Team0", "Up")
	if got := e.team("Team0").LinkSpeed; got != 80e9 {
		t.Errorf("8 × 10 Gbps team: link speed %d", got)
	}
	var srcs []string
	for i := 1; i <= 8; i++ {
		src := fmt.Sprintf("10.77.0.%d", 10+i)
		e.hostRun("ip", "addr", "add", src+"/24", "dev", "Team0")
		srcs = append(srcs, src)
	}
	for _, nic := range nicNames(8) {
		e.b.Fail(e.b.Host, nic)
		e.waitStatus("Team0", "Degraded")
		for _, src := range srcs {
			if r := e.ping("10.77.0.2", 5, 10*time.Millisecond, "-I", src); r.Received < 4 {
				t.Errorf("%s pulled: from %s: %+v", nic, src, r)
			}
		}
		e.b.Restore(e.b.Host, nic)
		e.waitStatus("Team0", "Up")
	}
	var ms []api.Member
	e.getJSON(&ms, "members", "Team0")
	if len(ms) != 8 {
		t.Errorf("members: %d", len(ms))
	}
}

// TestBadInputChangesNothing feeds every kind of bad input and checks each
// is refused with an error naming the problem while the host and the
// daemon's teams stay exactly as they were.
func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, 4)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "link", "add", "spare0", "type", "veth", "peer", "name", "spare1")
	// Other names of eth1 (in Team0) and eth3, which the kernel resolves too.
	e.hostRun("ip", "link", "property", "add", "dev", "eth1", "altname", "alt1")
	e.hostRun("ip", "link", "property", "add", "dev", "eth3", "altname", "a-long-altname-of-eth3")
	e.hostRun("ip", "tuntap", "add", "dev", "tun0", "mode", "tun")

	links := e.linkNames()
	snap := e.snapshot("eth1", "eth2", "eth3", "eth4")
	teams := e.mustCLI("get", "-o", "json")
	pins := e.pins()

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"new", "Team1", "--members", "alt1"}, `member "alt1" is another name of interface "eth1"`},
		{[]string{"member", "add", "Team0", "alt1"}, `another name of interface "eth1"`},
		{[]string{"new", "Team1", "--members", "a-long-altname-of-eth3"}, "interface names are at most 15"},
		{[]string{"new", "Team1", "--members", "eth3,eth3"}, "listed twice"},
		{[]string{"new", "Team1", "--members", "eth3,tun0"}, `"tun0" is not an Ethernet interface`},
		{[]string{"new", "..", "--members", "eth3"}, `team name ".." is not an interface name`},
		{[]string{"new", ".", "--members", "eth3"}, `team name "." is not an interface name`},
		{[]string{"new", "a/b", "--members", "eth3"}, "not allowed in an interface name"},
		{[]string{"get", ".."}, `no team ".."`},
		{[]string{"rm", "."}, `no team "."`},
		{[]string{"new", "Team1", "--members", "eth3", "--verify-timeout", "2000000h"}, "verify timeout 2000000h0m0s: want 100µs to 1s"},
		{[]string{"new", "Team1", "--members", "eth3", "--up-delay", "1000h"}, "up-delay 1000h0m0s: want 0s to 1h0m0s"},
		{[]string{"new", "Team1", "--members", "eth3", "--notify-interval", "1h"}, "notify interval 1h0m0s: want 1ms to 10s"},
		{[]string{"new", "Team1", "--members", "eth3", "--notify-count", "1000"}, "notify count 1000: want 1 to 100"},
		{[]string{"new", "Team1", "--members", "eth3,eth4", "--min-links", "3"}, "min-links 3: want 0 to 2"},
		{[]string{"new", "Team1", "--members", "eth3,nosuch"}, `"nosuch": no such interface`},
		{[]string{"new", "Team1", "--members", "eth3,eth1"}, `already in team "Team0"`},
		{[]string{"new", "Team1", "--members", "eth3,lo"}, "loopback"},
		{[]string{"new", "Team1", "--members", "eth3,Team0"}, "cannot be a member"},
		{[]string{"new", "ThisNameIsTooLong", "--members", "eth3"}, "at most 15"},
		{[]string{"new", "spare0", "--members", "eth3"}, "already the name of an interface"},
		{[]string{"new", "Team1", "--members", "eth3,eth4", "--standby", "eth4"}, ""}, // valid; removed below
		{[]string{"member", "add", "Team1", "eth2"}, `already in team "Team0"`},
		{[]string{"new", "Team2", "--members", "eth3"}, `already in team "Team1"`},
		{[]string{"member", "remove", "Team0", "eth3"}, "not a member"},
		{[]string{"new", "Team2", "--members", "spare0", "--mode", "bogus"}, "unknown teaming mode"},
		{[]string{"new", "Team2", "--members", "spare0", "--lb", "bogus"}, "unknown load-balancing algorithm"},
		{[]string{"new", "Team2", "--members", "spare0", "--mode", "lacp", "--lacp-timer", "bogus"}, "unknown LACP timer"},
		{[]string{"new", "Team2", "--members", "spare0", "--mode", "lacp", "--lacp-key", "70000"}, "want 1 to 65535"},
		{[]string{"set", "Team0", "--min-links", "3"}, "min-links 3: want 0 to 2"},
		{[]string{"set", "Team0", "--min-links", "-1"}, "min-links -1: want 0 to 2"},
		{[]string{"set", "Team0", "--lb", "bogus"}, "unknown load-balancing algorithm"},
		{[]string{"set", "Team0", "--flowlet-gap", "5us"}, "flowlet gap 5µs: want 10µs to 1s"},
		{[]string{"set", "Team0", "--rebalance-interval", "2m"}, "rebalance interval 2m0s: want 10ms to 1m0s"},
		{[]string{"new", "Team2", "--members", "spare0", "--flowlet-gap", "soon"}, "want a duration"},
		{[]string{"get", "NoTeam"}, `no team "NoTeam"`},
	}
	for _, c := range cases {
		_, errb, code := e.cli(c.args...)
		if c.want == "" {
			if code != 0 {
				t.Fatalf("%v: %s", c.args, errb)
			}
			continue
		}
		if code == 0 || !strings.Contains(errb, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error mentioning %q", c.args, code, errb, c.want)
		}
	}
	// Requests the CLI would not send: each is refused with 4xx, not 500.
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/v1/teams", `{"name":"Team2","members":["spare0"]} {"name":"Team3"}`, 400, "more than one JSON value"},
		{"POST", "/v1/teams", `{"name":"Team2","members":["spare0"]}]`, 400, "more than one JSON value"},
		{"POST", "/v1/teams", `{"name":"Team2","members":["eth1\u0000x"]}`, 400, "not allowed in an interface name"},
		{"POST", "/v1/teams", `{"name":"Team2","members":["spare0"],"bogus":1}`, 400, `unknown field "bogus"`},
		{"POST", "/v1/teams", ``, 400, "empty"},
		{"POST", "/v1/teams/Team0/members", `{"name":"eth1\u0000x"}`, 400, "not allowed in an interface name"},
		{"POST", "/v1/teams/Team0/members", `{"name":"alt1"}`, 400, "another name of interface"},
		{"PATCH", "/v1/teams/Team0", `{"minLinks":3}`, 400, "min-links 3"},
		{"DELETE", "/v1/teams/%2E%2E", ``, 404, `no team ".."`},
		{"PUT", "/v1/teams/Team0", ``, 405, "method not allowed"},
		{"GET", "/v2/teams", ``, 404, "no such API endpoint"},
	} {
		code, msg := e.raw(c.method, c.path, strings.NewReader(c.body))
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("%s %s %s: %d %q; want %d mentioning %q", c.method, c.path, c.body, code, msg, c.code, c.want)
		}
	}
	// min-links binds member removal too.
	e.mustCLI("set", "Team0", "--min-links", "2")
	_, errb, code := e.cli("member", "remove", "Team0", "eth2")
	if code == 0 || !strings.Contains(errb, "min-links 2: want 0 to 1") {
		t.Errorf("removing a member below min-links: exit %d %q", code, errb)
	}
	e.mustCLI("set", "Team0", "--min-links", "0")
	// More than one standby, and removing the last member.
	_, errb, code = e.cli("member", "add", "Team0", "eth3", "--standby")
	if code == 0 || !strings.Contains(errb, `already in team "Team1"`) {
		t.Errorf("member add of a member of another team: %q", errb)
	}
	e.mustCLI("rm", "Team1")
	e.mustCLI("member", "add", "Team0", "eth3", "--standby")
	_, errb, code = e.cli("member", "add", "Team0", "eth4", "--standby")
	if code == 0 || !strings.Contains(errb, "at most one standby") {
		t.Errorf("second standby: exit %d %q", code, errb)
	}
	e.mustCLI("member", "remove", "Team0", "eth3")
	e.mustCLI("member", "remove", "Team0", "eth2")
	_, errb, code = e.cli("member", "remove", "Team0", "eth1")
	if code == 0 || !strings.Contains(errb, "remove the team instead") {
		t.Errorf("removing the last member: exit %d %q", code, errb)
	}
	e.mustCLI("member", "add", "Team0", "eth2")

	if got := e.linkNames(); strings.Join(got, ",") != strings.Join(links, ",") {
		t.Errorf("interfaces changed: %v → %v", links, got)
	}
	if got := e.snapshot("eth1", "eth2", "eth3", "eth4"); fmt.Sprint(got) != fmt.Sprint(snap) {
		t.Errorf("members changed:\n before %v\n after  %v", snap, got)
	}
	if got := e.mustCLI("get", "-o", "json"); got != teams {
		t.Errorf("teams changed:\n before %s\n after  %s", teams, got)
	}
	if got := e.pins(); fmt.Sprint(got) != fmt.Sprint(pins) {
		t.Errorf("pins changed:\n before %v\n after  %v", pins, got)
	}

	// The daemon itself: a second one on the same socket is refused, and a
	// CLI without a daemon says how to start one.
	p, err := e.b.Host.Start(filepath.Join(bin, "nicteamd"), "--socket", e.socket, "--state-dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
		if err := p.Wait(); err == nil || !strings.Contains(p.Output(), "already serving") {
			t.Errorf("second daemon on the same socket: %v\n%s", err, p.Output())
		}
	case <-time.After(5 * time.Second):
		p.Kill()
		t.Errorf("a second daemon on the same socket kept running:\n%s", p.Output())
	}
	_, errb, code = e.cli("--socket", filepath.Join(t.TempDir(), "none.sock"), "get")
	if code == 0 || !strings.Contains(errb, "start it as root with `nicteamd") {
		t.Errorf("no daemon: exit %d %q", code, errb)
	}
}

// TestDaemonRestartLosesNoPing kills nicteamd with SIGKILL while a ping
// runs every millisecond, starts it again and checks that no ping was lost
// (the pinned datapath forwarded throughout) and that the restarted daemon
// adopted the team and reports the same state.
func TestDaemonRestartLosesNoPing(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--lb", "transport-ports")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	e.ping("10.77.0.2", 3, 10*time.Millisecond) // resolve the neighbour first
	before := e.mustCLI("get", "Team0", "-o", "json")
	membersBefore := e.mustCLI("members", "Team0", "-o", "json")

	result := e.pingInBackground("10.77.0.2", time.Millisecond, 3000)
	time.Sleep(time.Second)
	if err := e.daemon.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	e.startDaemon()
	if got := <-result; got != "3000/3000" {
		t.Errorf("pings across the daemon restart: %s received, want 3000/3000", got)
	}
	if got := e.mustCLI("get", "Team0", "-o", "json"); got != before {
		t.Errorf("state after restart:\n%s\nbefore:\n%s", got, before)
	}
	if got := e.mustCLI("members", "Team0", "-o", "json"); got != membersBefore {
		t.Errorf("members after restart:\n%s\nbefore:\n%s", got, membersBefore)
	}
	var events []api.Event
	e.client().Events(context.Background(), false, func(ev api.Event) error { events = append(events, ev); return nil })
	if len(events) == 0 || events[0].Kind != api.EventTeamAdopted {
		t.Errorf("restarted daemon should adopt the team, events: %+v", events)
	}
}

// TestStandbyAndUpDelay checks the standby member takes over only while an
// active member is down, and that a restored member waits out the
// up-delay as WaitingForStableConnectivity.
func TestStandbyAndUpDelay(t *testing.T) {
	e := newEnv(t, 3)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--standby", "eth3", "--up-delay", "1s")
	e.waitStatus("Team0", "Up")
	if m := e.member("Team0", "eth3"); m.OperationalStatus.String() != "Standby" || m.AdministrativeMode.String() != "Standby" {
		t.Errorf("standby member: %+v", m)
	}
	e.b.Fail(e.b.Host, "eth1")
	e.waitStatus("Team0", "Degraded")
	if m := e.member("Team0", "eth3"); m.OperationalStatus.String() != "Active" {
		t.Errorf("standby should carry while eth1 is down: %+v", m)
	}
	e.b.Restore(e.b.Host, "eth1")
	deadline := time.Now().Add(time.Second)
	for e.member("Team0", "eth1").FailureReason.String() != "WaitingForStableConnectivity" {
		if time.Now().After(deadline) {
			t.Fatalf("eth1 restored: %+v, want WaitingForStableConnectivity", e.member("Team0", "eth1"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.waitStatus("Team0", "Up")
	if m := e.member("Team0", "eth3"); m.OperationalStatus.String() != "Standby" {
		t.Errorf("standby should return to standby: %+v", m)
	}
}

// TestEndpointsBehindTeamAnnounced puts a container on a bridge above the
// team. When the member its frames left by is pulled, the daemon's RARP
// for the container's MAC, sent from the live member, moves the switch's
// entry for it there — with the container silent, so nothing else could.
func TestEndpointsBehindTeamAnnounced(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--mac-policy", "keep")
	e.waitStatus("Team0", "Up")
	ctr, err := e.b.AddHost("ctr")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"ip", "link", "add", "br0", "type", "bridge"},
		{"ip", "link", "set", "br0", "up"},
		{"ip", "link", "set", "Team0", "master", "br0"},
		{"ip", "link", "add", "cv0", "type", "veth", "peer", "name", "eth0", "netns", ctr.NS},
		{"ip", "link", "set", "cv0", "master", "br0", "up"},
	} {
		e.hostRun(args...)
	}
	if _, err := ctr.Run("ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	if _, err := ctr.Run("ip", "addr", "add", "10.77.0.50/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	r, err := ctr.PingFlood(context.Background(), "10.77.0.2", 10*time.Millisecond, 5)
	if err != nil || r.Received == 0 {
		t.Fatalf("container cannot reach the peer: %v %+v", err, r)
	}
	l, err := ctr.Link("eth0")
	if err != nil {
		t.Fatal(err)
	}
	ctrMAC := l.Attrs().HardwareAddr.String()

	port := func() string {
		out, err := e.b.Switch.Run("bridge", "fdb", "show", "br", e.b.Switch.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && strings.EqualFold(f[0], ctrMAC) {
				return f[2]
			}
		}
		return ""
	}
	carrying := ""
	for _, nic := range []string{"eth1", "eth2"} {
		if port() == e.b.SwitchPort(e.b.Host, nic) {
			carrying = nic
		}
	}
	if carrying == "" {
		t.Fatalf("the switch did not learn the container's MAC %s on a team port (%q)", ctrMAC, port())
	}
	// Whether the container's frames hashed onto the primary (the team
	// MAC moves and is announced) or onto the other member (only the
	// endpoints are), its MAC must follow to the live port.
	live := map[string]string{"eth1": "eth2", "eth2": "eth1"}[carrying]
	t.Logf("container %s behind %s; pulling it", ctrMAC, carrying)
	e.b.Fail(e.b.Host, carrying)
	deadline := time.Now().Add(2 * time.Second)
	for port() != e.b.SwitchPort(e.b.Host, live) {
		if time.Now().After(deadline) {
			t.Fatalf("after pulling %s the switch still has the container's MAC on %q, want %s (RARP from the live member)", carrying, port(), e.b.SwitchPort(e.b.Host, live))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventsFollow follows the event log through the CLI, as `nicteam
// events --follow` does, and sees a pulled cable arrive as it happens.
func TestEventsFollow(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	e.waitStatus("Team0", "Up")

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "nicteam"), "--socket", e.socket, "events", "--follow")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The log so far comes first; the pull must come after it, live.
	deadline := time.After(5 * time.Second)
	for created := false; !created; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("events --follow ended before TeamCreated")
			}
			created = strings.Contains(l, "TeamCreated")
		case <-deadline:
			t.Fatal("no TeamCreated from events --follow within 5s")
		}
	}
	e.b.Fail(e.b.Host, "eth2")
	deadline = time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("events --follow ended")
			}
			if strings.Contains(l, "MemberFailed") && strings.Contains(l, "eth2") {
				// µs timestamps: 2006-01-02T15:04:05.000000Z
				if f := strings.Fields(l); len(f) == 0 || len(f[0]) != len("2006-01-02T15:04:05.000000Z") {
					t.Errorf("event time not in µs: %q", l)
				}
				return
			}
		case <-deadline:
			t.Fatal("no MemberFailed event for eth2 on events --follow within 5s")
		}
	}
}
