package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
)

// container is a namespace on a bridge above the team, as a container or
// VM sits behind a Hyper-V switch: one port with its own MAC.
type container struct {
	host *lab.Host
	ip   string
	mac  string
}

// addContainers puts Team0 into a bridge br0 in the host and hangs n
// containers on it, with addresses next to the peer's.
func (e *env) addContainers(n int) []container {
	e.t.Helper()
	e.hostRun("ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	e.hostRun("ip", "link", "set", "Team0", "master", "br0")
	e.hostRun("ip", "link", "set", "br0", "up")
	var cs []container
	for i := 1; i <= n; i++ {
		h, err := e.b.AddHost(fmt.Sprintf("c%d", i))
		if err != nil {
			e.t.Fatal(err)
		}
		port := fmt.Sprintf("c%d", i)
		e.hostRun("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
		e.hostRun("ip", "link", "set", port, "master", "br0", "up")
		c := container{host: h, ip: fmt.Sprintf("10.77.0.%d", 10+i)}
		if err := h.AddAddr("eth0", c.ip+"/24"); err != nil {
			e.t.Fatal(err)
		}
		if err := h.SetUp("eth0"); err != nil {
			e.t.Fatal(err)
		}
		l, err := h.Link("eth0")
		if err != nil {
			e.t.Fatal(err)
		}
		c.mac = l.Attrs().HardwareAddr.String()
		cs = append(cs, c)
	}
	return cs
}

// portsOf returns the containers' members as `nicteam ports` lists them,
// by container MAC in colon notation.
func (e *env) portsOf(teamName string) map[string]string {
	e.t.Helper()
	var ps []api.Port
	e.getJSON(&ps, "ports", teamName)
	out := map[string]string{}
	for _, p := range ps {
		mac, err := net.ParseMAC(p.MAC)
		if err != nil {
			e.t.Fatalf("ports lists MAC %q: %v", p.MAC, err)
		}
		out[mac.String()] = p.Member
	}
	return out
}

// waitPorts polls `nicteam ports` until ok accepts the listing.
func (e *env) waitPorts(what string, ok func(map[string]string) bool) map[string]string {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ps := e.portsOf("Team0")
		if ok(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("ports never became %s: %v", what, ps)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spread reports whether every container is pinned and the members hold
// them as evenly as members allows.
func spread(cs []container, ps map[string]string, members ...string) bool {
	n := map[string]int{}
	for _, c := range cs {
		n[ps[c.mac]]++
	}
	for _, m := range members {
		if n[m] != len(cs)/len(members) {
			return false
		}
	}
	return true
}

// pingAll pings the peer from every container and every container from
// the peer, and fails on a container that is not reached.
func (e *env) pingAll(cs []container, maxLost int) {
	e.t.Helper()
	for _, c := range cs {
		for _, p := range []struct {
			from *lab.Host
			dst  string
		}{{c.host, lab.PeerIPv4}, {e.b.Peer, c.ip}} {
			r, err := p.from.PingFlood(context.Background(), p.dst, 20*time.Millisecond, 10)
			if err != nil {
				e.t.Fatal(err)
			}
			if r.Lost() > maxLost {
				e.t.Errorf("ping %s from %s: %v", p.dst, p.from.Name, r)
			}
		}
	}
}

// checkFabric checks that the switch reaches every container through its
// member, and that the host's bridge never learned a container on the
// team's port (a broadcast flooded back into the team would teach it so).
func (e *env) checkFabric(cs []container, ps map[string]string) {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		fdb, err := e.b.Switch.FDB()
		if err != nil {
			e.t.Fatal(err)
		}
		var wrong []string
		for _, c := range cs {
			want := lab.FDBEntry{MAC: c.mac, Port: e.b.SwitchPort(e.b.Host, ps[c.mac])}
			if !slices.Contains(fdb, want) {
				wrong = append(wrong, fmt.Sprintf("%s not on %s", c.mac, want.Port))
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("switch does not reach the containers through their members: %v\nfdb %v", wrong, fdb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := e.hostRun("bridge", "-j", "fdb", "show", "br", "br0")
	var fdb []struct {
		MAC    string `json:"mac"`
		IfName string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(out), &fdb); err != nil {
		e.t.Fatal(err)
	}
	for _, f := range fdb {
		for _, c := range cs {
			if f.MAC == c.mac && f.IfName == "Team0" {
				e.t.Errorf("the host's bridge learned container %s on Team0: a broadcast came back in", c.mac)
			}
		}
	}
}

// TestPortsPinnedAndSpread hangs four containers on a bridge above a
// HyperVPort or Dynamic team: each is pinned to one member, two per member,
// the switch reaches each through its member, and a failure moves only the
// failed member's containers, which go back to it on restore.
func TestPortsPinnedAndSpread(t *testing.T) {
	for _, lb := range []string{"hyperv-port", "dynamic"} {
		t.Run(lb, func(t *testing.T) {
			e := newEnv(t, 2)
			e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--lb", lb)
			e.waitStatus("Team0", "Up")
			cs := e.addContainers(4)
			e.pingAll(cs, 0)
			ps := e.waitPorts("two per member", func(ps map[string]string) bool {
				return len(ps) == len(cs) && spread(cs, ps, "eth1", "eth2")
			})
			t.Logf("pinned: %v", ps)
			e.checkFabric(cs, ps)
			if out := e.mustCLI("ports", "Team0"); !strings.Contains(out, "MacAddress") || strings.Count(out, "eth") != len(cs) {
				t.Errorf("nicteam ports Team0:\n%s", out)
			}

			if err := e.b.Fail(e.b.Host, "eth2"); err != nil {
				t.Fatal(err)
			}
			e.waitStatus("Team0", "Degraded")
			failed := e.waitPorts("all on eth1", func(ps map[string]string) bool { return spread(cs, ps, "eth1") })
			for mac, m := range ps {
				if m == "eth1" && failed[mac] != "eth1" {
					t.Errorf("%s moved off eth1, which did not fail", mac)
				}
			}
			e.pingAll(cs, 1)
			e.checkFabric(cs, failed)

			if err := e.b.Restore(e.b.Host, "eth2"); err != nil {
				t.Fatal(err)
			}
			e.waitStatus("Team0", "Up")
			// eth2 takes back its own containers, so nothing else moved.
			restored := e.waitPorts("as before the failure", func(got map[string]string) bool { return maps.Equal(got, ps) })
			e.pingAll(cs, 1)
			e.checkFabric(cs, restored)
			e.client().Events(context.Background(), false, func(ev api.Event) error {
				if ev.Kind == api.EventPortsMoved {
					t.Logf("%s %s", ev.Kind, ev.Detail)
				}
				return nil
			})

			// A restarted daemon adopts the pins: nothing moves.
			if err := e.daemon.Stop(); err != nil {
				t.Fatal(err)
			}
			e.startDaemon()
			if got := e.portsOf("Team0"); !maps.Equal(got, ps) {
				t.Errorf("after a daemon restart: %v, want %v", got, ps)
			}

			// Another algorithm drops every pin.
			e.mustCLI("set", "Team0", "--lb", "transport-ports")
			if _, errb, code := e.cli("ports", "Team0"); code == 0 || !strings.Contains(errb, "only hyperv-port and dynamic") {
				t.Errorf("ports of a transport-ports team: exit %d, %s", code, errb)
			}
			e.pingAll(cs, 0)
		})
	}
}
