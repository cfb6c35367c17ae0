package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

func TestExplain(t *testing.T) {
	keep := DemoOutcome{Run: fakeRun(seqs(1002, 3001)), Owners: fakeOwners}
	keep.Run.Events = append(keep.Run.Events, NodeEvent{Node: "node1", Event: api.Event{
		Time: keep.Run.Pulled.Add(14 * time.Millisecond), Kind: api.EventAnnounced, Member: "eth2"}})
	keep.Verdict = judge(keep.Run)
	auto := DemoOutcome{Run: fakeRun(seqs(1002, 1010)), Owners: fakeOwners}
	moved := &auto.Run.Snapshots[1]
	moved.TeamMAC, moved.Neighbor.MAC, moved.Neighbor.State = "02:00:00:00:01:02", "02:00:00:00:01:02", "DELAY"
	auto.Run.Events = append(auto.Run.Events, NodeEvent{Node: "node1", Event: api.Event{
		Time: auto.Run.Pulled.Add(19961 * time.Microsecond), Kind: api.EventMACChanged}})
	auto.Verdict = judge(auto.Run)
	got := explain(keep, auto)
	t.Logf("\n%s", got)
	for _, want := range []string{
		"node1's Team0 kept the MAC 02:00:00:00:01:01 (node1 eth1) while the cable was out.",
		"node2's neighbour entry for 10.10.0.1 still said 02:00:00:00:01:01 (node1 eth1) REACHABLE",
		"The static switch delivers that MAC only to the port of node1 eth1",
		"nicteamd did announce the MAC from eth2 (+14.000 ms)",
		"moved from 02:00:00:00:01:01 (node1 eth1) to 02:00:00:00:01:02 (node1 eth2)",
		"19.961 ms after the pull",
		"neighbour entry followed (02:00:00:00:01:02 (node1 eth2) DELAY)",
		"Traffic went on over node1's other NIC",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q", want)
		}
	}
}
