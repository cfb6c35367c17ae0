package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

// The daemon follows what the host does to its teams (README, "What the
// daemon follows"): each test does one thing an operator might, and checks
// what nicteam shows and that traffic flows.

// waitEvent waits for an event of kind (and member, if given) and returns
// it.
func (e *env) waitEvent(kind, member string) api.Event {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var found *api.Event
		var all []string
		e.client().Events(context.Background(), false, func(ev api.Event) error {
			if ev.Kind == kind && (member == "" || ev.Member == member) {
				found = &ev
			}
			all = append(all, ev.Kind+" "+ev.Member+" "+ev.Detail)
			return nil
		})
		if found != nil {
			return *found
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s event for %q within 5s; events:\n%s", kind, member, strings.Join(all, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// buckets counts the buckets each member holds.
func (e *env) buckets(teamName string) map[string]int {
	e.t.Helper()
	st, err := e.client().Stats(context.Background(), teamName)
	if err != nil {
		e.t.Fatal(err)
	}
	n := map[string]int{}
	for _, b := range st.Buckets {
		n[b.Member]++
	}
	return n
}

// pingOK checks that the host reaches the peer through the team.
func (e *env) pingOK(what string) {
	e.t.Helper()
	if r := e.ping("10.77.0.2", 40, 5*time.Millisecond); r.Received < 38 {
		e.t.Errorf("%s: ping %v", what, r)
	}
}

// addSources gives Team0 n more addresses: pings from them are flows the
// team hashes onto different members.
func (e *env) addSources(n int) []string {
	e.t.Helper()
	var srcs []string
	for i := 1; i <= n; i++ {
		src := fmt.Sprintf("10.77.0.%d", 100+i)
		e.hostRun("ip", "addr", "add", src+"/24", "dev", "Team0")
		srcs = append(srcs, src)
	}
	return srcs
}

// pingFrom checks that every source reaches the peer.
func (e *env) pingFrom(what string, srcs []string) {
	e.t.Helper()
	for _, src := range srcs {
		if r := e.ping("10.77.0.2", 5, 5*time.Millisecond, "-I", src); r.Received < 4 {
			e.t.Errorf("%s: from %s: %v", what, src, r)
		}
	}
}

// txOf returns the frames the team sent through member.
func (e *env) txOf(teamName, member string) uint64 {
	e.t.Helper()
	st, err := e.client().Stats(context.Background(), teamName)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range st.Members {
		if m.Name == member {
			return m.TxPackets
		}
	}
	return 0
}

// persistedMembers reads the member names from the daemon's state file,
// waiting for the background save.
func (e *env) persistedMembers(teamName, want string) {
	e.t.Helper()
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var sf struct {
			Teams []struct {
				Spec struct {
					Name    string `json:"name"`
					Members []struct {
						Name string `json:"name"`
					} `json:"members"`
				} `json:"spec"`
			} `json:"teams"`
		}
		b, _ := os.ReadFile(filepath.Join(e.state, "teams.json"))
		if json.Unmarshal(b, &sf) == nil {
			for _, tm := range sf.Teams {
				if tm.Spec.Name == teamName {
					got = got[:0]
					for _, m := range tm.Spec.Members {
						got = append(got, m.Name)
					}
				}
			}
		}
		if strings.Join(got, ",") == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Errorf("state file: team %s members %v, want %s", teamName, got, want)
}

// TestFollowRenamedMember renames a member (down, rename, up, as the
// kernel wants it), then pulls its cable: the team knows it by its new
// name, persisted, and fails it over.
func TestFollowRenamedMember(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	srcs := e.addSources(8)
	e.pingFrom("before", srcs)

	e.hostRun("ip", "link", "set", "eth2", "down")
	e.hostRun("ip", "link", "set", "eth2", "name", "uplink2")
	e.hostRun("ip", "link", "set", "uplink2", "up")
	ev := e.waitEvent(api.EventMemberRenamed, "uplink2")
	if !strings.Contains(ev.Detail, "eth2 -> uplink2") {
		t.Errorf("rename event: %+v", ev)
	}
	tm := e.waitStatus("Team0", "Up")
	if got := strings.Join(tm.Members, ","); got != "eth1,uplink2" {
		t.Errorf("members after rename: %s", got)
	}
	e.waitMember("Team0", "uplink2", "NoFailure", 5*time.Second)
	if out := e.mustCLI("members", "Team0"); !strings.Contains(out, "uplink2") || strings.Contains(out, "eth2") {
		t.Errorf("nicteam members:\n%s", out)
	}
	e.persistedMembers("Team0", "eth1,uplink2")

	// Its cable is still eth2's in the lab: pulled, the renamed member
	// fails and leaves the bucket table.
	if err := e.b.Fail(e.b.Host, "eth2"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("Team0", "Degraded")
	e.waitMember("Team0", "uplink2", "PhysicalMediaDisconnected", 5*time.Second)
	if n := e.buckets("Team0"); n["uplink2"] != 0 || n["eth1"] != 256 {
		t.Errorf("buckets with uplink2 pulled: %v", n)
	}
	e.pingFrom("uplink2 pulled", srcs)
	e.b.Restore(e.b.Host, "eth2")
	e.waitStatus("Team0", "Up")
	if n := e.buckets("Team0"); n["uplink2"] == 0 {
		t.Errorf("buckets with uplink2 back: %v", n)
	}
	tx := e.txOf("Team0", "uplink2")
	e.pingFrom("uplink2 back", srcs)
	if e.txOf("Team0", "uplink2") == tx {
		t.Errorf("no flow left through uplink2 once it was back")
	}
	// Removed, the member gets back what it had, under its new name.
	e.mustCLI("member", "remove", "Team0", "uplink2")
	if out := e.hostRun("tc", "filter", "show", "dev", "uplink2", "ingress"); strings.TrimSpace(out) != "" {
		t.Errorf("filter left on uplink2: %s", out)
	}
}

// TestFollowMemberGoneAndBack moves a member to another namespace and
// back, and deletes another that then appears again under its name.
func TestFollowMemberGoneAndBack(t *testing.T) {
	e := newEnv(t, 3)
	away, err := e.b.AddHost("away")
	if err != nil {
		t.Fatal(err)
	}
	e.mustCLI("new", "Team0", "--members", "eth1,eth2,eth3")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	srcs := e.addSources(8)

	e.hostRun("ip", "link", "set", "eth2", "netns", away.NS)
	e.waitMember("Team0", "eth2", "NicNotPresent", 5*time.Second)
	e.waitEvent(api.EventMemberGone, "eth2")
	e.waitStatus("Team0", "Degraded")
	if n := e.buckets("Team0"); n["eth2"] != 0 {
		t.Errorf("buckets with eth2 away: %v", n)
	}
	e.pingFrom("eth2 away", srcs)

	if _, err := away.Run("ip", "link", "set", "eth2", "netns", e.b.Host.NS); err != nil {
		t.Fatal(err)
	}
	e.waitEvent(api.EventMemberBack, "eth2")
	e.waitStatus("Team0", "Up")
	if n := e.buckets("Team0"); n["eth2"] == 0 {
		t.Errorf("buckets with eth2 back: %v", n)
	}
	tx := e.txOf("Team0", "eth2")
	e.pingFrom("eth2 back", srcs)
	if e.txOf("Team0", "eth2") == tx {
		t.Errorf("no flow left through eth2 once it was back")
	}

	e.hostRun("ip", "link", "del", "eth3")
	e.waitMember("Team0", "eth3", "NicNotPresent", 5*time.Second)
	e.pingFrom("eth3 deleted", srcs)
	e.hostRun("ip", "link", "add", "eth3", "type", "veth", "peer", "name", "eth3p")
	e.hostRun("ip", "link", "set", "eth3p", "up")
	e.waitEvent(api.EventMemberBack, "eth3")
	e.waitMember("Team0", "eth3", "NoFailure", 5*time.Second)
}

// TestFollowMTUAndMAC changes members' and the team NIC's MTU and the
// members' MACs behind the daemon's back.
func TestFollowMTUAndMAC(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	mtu := func(name string) string {
		out := e.hostRun("cat", "/sys/class/net/"+name+"/mtu")
		return strings.TrimSpace(out)
	}
	waitMTU := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for mtu(name) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s MTU %s, want %s", name, mtu(name), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// A member's MTU is the team's: set back.
	e.hostRun("ip", "link", "set", "eth2", "mtu", "1400")
	e.waitEvent(api.EventMemberMTU, "eth2")
	waitMTU("eth2", "1500")
	// The team NIC's is the operator's: the members follow.
	e.hostRun("ip", "link", "set", "Team0", "mtu", "1400")
	e.waitEvent(api.EventTeamNicMTU, "")
	waitMTU("eth1", "1400")
	waitMTU("eth2", "1400")
	if r := e.ping("10.77.0.2", 10, 10*time.Millisecond, "-s", "1300", "-M", "do"); r.Received < 9 {
		t.Errorf("ping at MTU 1400: %v", r)
	}

	// A member's MAC the team does not wear: listings follow.
	e.hostRun("ip", "link", "set", "eth2", "address", "02:00:00:00:22:22")
	e.waitEvent(api.EventMemberMAC, "eth2")
	var ads []api.Adapter
	e.getJSON(&ads, "adapters", "eth2")
	if ads[0].MacAddress != "02-00-00-00-22-22" {
		t.Errorf("eth2 adapter: %+v", ads[0])
	}
	// The MAC the team wears: the team follows and tells the peer.
	e.hostRun("ip", "link", "set", "eth1", "address", "02:00:00:00:11:11")
	ev := e.waitEvent(api.EventMemberMAC, "eth1")
	if !strings.Contains(ev.Detail, "follows") {
		t.Errorf("eth1 MAC event: %+v", ev)
	}
	if tm := e.team("Team0"); tm.MacAddress != "02-00-00-00-11-11" || tm.Status.String() != "Up" {
		t.Errorf("team after eth1's MAC changed: %+v", tm)
	}
	e.pingOK("after the MAC changes")
	if out, _ := e.b.Peer.Run("ip", "neigh", "show", "10.77.0.1"); !strings.Contains(out, "02:00:00:00:11:11") {
		t.Errorf("peer's neighbour entry for the team: %s", out)
	}
}

// TestFollowTeamNICDeleted deletes the team NIC: it is rebuilt with its
// addresses and routes, and traffic flows again.
func TestFollowTeamNICDeleted(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	e.hostRun("ip", "addr", "add", "fd77::1/64", "dev", "Team0", "nodad")
	e.hostRun("ip", "route", "add", "10.99.0.0/24", "via", "10.77.0.2", "dev", "Team0")
	e.pingOK("before")
	time.Sleep(100 * time.Millisecond) // the address events reach the daemon

	e.hostRun("ip", "link", "del", "Team0")
	ev := e.waitEvent(api.EventTeamNicRebuilt, "")
	if !strings.Contains(ev.Detail, "2 addresses and 1 routes") {
		t.Errorf("rebuilt: %+v", ev)
	}
	e.waitStatus("Team0", "Up")
	addrs := e.hostRun("ip", "addr", "show", "dev", "Team0")
	if !strings.Contains(addrs, "10.77.0.1/24") || !strings.Contains(addrs, "fd77::1/64") {
		t.Errorf("rebuilt Team0's addresses:\n%s", addrs)
	}
	if out := e.hostRun("ip", "route", "get", "10.99.0.5"); !strings.Contains(out, "via 10.77.0.2 dev Team0") {
		t.Errorf("route through the rebuilt Team0: %s", out)
	}
	e.pingOK("rebuilt")
	// A second time, through its hidden peer, from the record the rebuild
	// left.
	peer := ""
	for _, n := range e.linkNames() {
		if strings.HasPrefix(n, "ntp") {
			peer = n
		}
	}
	e.hostRun("ip", "link", "del", peer)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := e.b.Host.Run("ip", "route", "show", "dev", "Team0")
		if strings.Contains(out, "10.99.0.0/24 via 10.77.0.2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second rebuild: no route: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.waitStatus("Team0", "Up")
	e.pingOK("rebuilt twice")

	// Deleted while nicteamd is not running: a restart rebuilds it the same.
	e.daemon.Stop()
	e.hostRun("ip", "link", "del", "Team0")
	e.startDaemon()
	e.waitStatus("Team0", "Up")
	if out := e.hostRun("ip", "route", "get", "10.99.0.5"); !strings.Contains(out, "via 10.77.0.2 dev Team0") {
		t.Errorf("route after a restart rebuilt Team0: %s", out)
	}
	e.pingOK("rebuilt by a restart")
}

// TestFollowTeamNICDown sets the team NIC down and up: reported, shown,
// and not undone.
func TestFollowTeamNICDown(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	e.waitStatus("Team0", "Up")

	e.hostRun("ip", "link", "set", "Team0", "down")
	e.waitEvent(api.EventTeamNicDown, "")
	tm := e.waitStatus("Team0", "Down")
	if tm.TeamNicStatus != "Disabled" {
		t.Errorf("team with its NIC down: %+v", tm)
	}
	if out := e.mustCLI("get", "Team0"); !strings.Contains(out, "TeamNicStatus          : Disabled") {
		t.Errorf("nicteam get:\n%s", out)
	}
	time.Sleep(100 * time.Millisecond)
	if out := e.hostRun("ip", "-o", "link", "show", "Team0"); strings.Contains(out, ",UP") || strings.Contains(out, "<UP") {
		t.Errorf("the daemon set Team0 up again: %s", out)
	}
	e.hostRun("ip", "link", "set", "Team0", "up")
	e.waitEvent(api.EventTeamNicUp, "")
	if tm := e.waitStatus("Team0", "Up"); tm.TeamNicStatus != "Up" {
		t.Errorf("team with its NIC up: %+v", tm)
	}
}

// TestFollowRenamedLacpMember renames a member of a LACP team: its port
// negotiates again under the new name and its partner keeps both.
func TestFollowRenamedLacpMember(t *testing.T) {
	a, b := newBackToBack(t)
	for i, e := range []*env{a, b} {
		e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--mode", "lacp")
		e.hostRun("ip", "addr", "add", fmt.Sprintf("10.78.0.%d/24", i+1), "dev", "Team0")
	}
	a.waitStatus("Team0", "Up")
	tb := b.waitStatus("Team0", "Up")

	a.hostRun("ip", "link", "set", "eth2", "down")
	a.hostRun("ip", "link", "set", "eth2", "name", "uplink2")
	a.hostRun("ip", "link", "set", "uplink2", "up")
	a.waitEvent(api.EventMemberRenamed, "uplink2")
	a.waitMember("Team0", "uplink2", "NoFailure", 5*time.Second)
	a.waitStatus("Team0", "Up")
	b.waitStatus("Team0", "Up")
	wantCollecting(t, a, "Team0", macOf(tb))
	if l := a.lacpOf("Team0"); l.Ports[0].Member != "eth1" || l.Ports[1].Member != "uplink2" {
		t.Errorf("LACP ports after the rename: %+v", l.Ports)
	}
	if n := a.lacpSockets(); n != 2 {
		t.Errorf("%d LACP sockets, want 2", n)
	}
	if r := a.ping("10.78.0.2", 20, 5*time.Millisecond); r.Received < 19 {
		t.Errorf("ping after the rename: %+v", r)
	}
}
