package lab

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

// WriteDemoReport writes what RunDemo's outcomes showed: a table of the
// scenarios' losses and verdicts, then why keep failed and what auto did
// differently.
func WriteDemoReport(w io.Writer, outcomes []DemoOutcome) {
	writeDemoSummary(w, outcomes)
	fmt.Fprintln(w)
	fmt.Fprint(w, explain(outcomes[1], outcomes[0]))
}

func writeDemoSummary(w io.Writer, os []DemoOutcome) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tpings lost\tlongest outage\tseed's failure")
	fmt.Fprintln(tw, "--------\t----------\t--------------\t--------------")
	for _, o := range os {
		happened := "did not happen"
		if o.Verdict.Happened {
			happened = "happened"
		}
		fmt.Fprintf(tw, "%s\t%d of %d\t%s\t%s\n", o.Scenario.Title, o.Verdict.Lost, o.Verdict.Sent, millis(o.Verdict.Longest), happened)
	}
	tw.Flush()
	fmt.Fprintln(w, "(while requests go unanswered ping sends one every 10 ms, not every 1 ms)")
}

// snapshotAt returns the first snapshot taken in [from, to).
func snapshotAt(run *PullRun, from, to time.Time) (Snapshot, bool) {
	for _, s := range run.Snapshots {
		if !s.Time.Before(from) && s.Time.Before(to) {
			return s, true
		}
	}
	return Snapshot{}, false
}

// explain says why keep failed and what auto did differently, from what
// the snapshots of each run saw.
func explain(keep, auto DemoOutcome) string {
	var b strings.Builder
	p := keep.Run.Plan
	node, peer := fmt.Sprintf("node%d", p.Node), fmt.Sprintf("node%d", 3-p.Node)
	pulled := node + " " + p.NIC // as owners names it

	fmt.Fprintf(&b, "Why c2 lost c1 with MAC policy keep:\n")
	if k, ok := snapshotAt(keep.Run, keep.Run.Pulled, keep.Run.Restored); ok {
		fmt.Fprintf(&b, "  - %s's %s kept the MAC %s while the cable was out.\n", node, TeamName, keep.Owners.MAC(k.TeamMAC))
		fmt.Fprintf(&b, "  - %s's neighbour entry for %s still said %s,\n", peer, k.Neighbor.IP, keep.Owners.Neighbor(k.Neighbor))
		fmt.Fprintf(&b, "    so %s kept sending the tunnel to that MAC.\n", peer)
		if keep.Owners[k.Neighbor.MAC] == pulled {
			fmt.Fprintf(&b, "  - The static switch delivers that MAC only to the port of %s, whose cable\n", pulled)
			fmt.Fprintf(&b, "    was out; it neither learns where a MAC went nor floods unknown unicast, so\n")
			fmt.Fprintf(&b, "    every frame was dropped although %s's other NIC was up: the seed's failure.\n", node)
		}
	}
	if e, ok := firstEvent(keep.Run, node, api.EventAnnounced); ok {
		fmt.Fprintf(&b, "  - nicteamd did announce the MAC from %s (+%s), which tells a learning switch\n", e.Member, millis(e.Time.Sub(keep.Run.Pulled)))
		fmt.Fprintf(&b, "    where it went; a static switch does not listen.\n")
	}
	if !keep.Verdict.Happened {
		fmt.Fprintf(&b, "  (This time traffic went on all the same: %s.)\n", keep.Verdict.Ping)
	}

	fmt.Fprintf(&b, "\nWhat auto did differently:\n")
	before, okB := snapshotAt(auto.Run, time.Time{}, auto.Run.Pulled)
	after, okA := snapshotAt(auto.Run, auto.Run.Pulled, auto.Run.Restored)
	nb := auto.Owners.Neighbor(after.Neighbor)
	switch {
	case !okB || !okA:
		fmt.Fprintf(&b, "  (no snapshots to compare)\n")
	case after.TeamMAC != before.TeamMAC && after.Neighbor.MAC == after.TeamMAC:
		fmt.Fprintf(&b, "  - %s's %s moved from %s to %s\n", node, TeamName, auto.Owners.MAC(before.TeamMAC), auto.Owners.MAC(after.TeamMAC))
		if e, ok := firstEvent(auto.Run, node, api.EventMACChanged); ok {
			fmt.Fprintf(&b, "    %s after the pull", millis(e.Time.Sub(auto.Run.Pulled)))
			if v, ok := firstEvent(auto.Run, node, api.EventVerified); ok {
				fmt.Fprintf(&b, " (%s)", v.Detail)
			}
			fmt.Fprintf(&b, ",\n")
		}
		fmt.Fprintf(&b, "    and told its peers; %s's neighbour entry followed (%s),\n", peer, nb)
		fmt.Fprintf(&b, "    and the switch delivers that MAC to a port whose cable is in.\n")
	case after.TeamMAC != before.TeamMAC:
		fmt.Fprintf(&b, "  - %s's %s moved from %s to %s,\n", node, TeamName, auto.Owners.MAC(before.TeamMAC), auto.Owners.MAC(after.TeamMAC))
		fmt.Fprintf(&b, "    but %s's neighbour entry still said %s.\n", peer, nb)
	case after.Neighbor.MAC != before.Neighbor.MAC:
		fmt.Fprintf(&b, "  - %s kept its MAC, and %s's neighbour entry changed to %s.\n", TeamName, peer, nb)
	default:
		fmt.Fprintf(&b, "  - Nothing: %s kept %s,\n", TeamName, auto.Owners.MAC(after.TeamMAC))
		fmt.Fprintf(&b, "    and %s's neighbour entry still said %s.\n", peer, nb)
	}
	if auto.Verdict.Happened {
		fmt.Fprintf(&b, "  - So auto failed the same way: %s, longest outage %s.\n", auto.Verdict.Ping, millis(auto.Verdict.Longest))
	} else {
		fmt.Fprintf(&b, "  - Traffic went on over %s's other NIC: %s, longest outage %s.\n", node, auto.Verdict.Ping, millis(auto.Verdict.Longest))
	}
	return b.String()
}

// firstEvent returns node's first event of kind between the pull and the
// restore.
func firstEvent(run *PullRun, node, kind string) (NodeEvent, bool) {
	for _, e := range run.Events {
		if e.Node == node && e.Kind == kind && !e.Time.Before(run.Pulled) && e.Time.Before(run.Restored) {
			return e, true
		}
	}
	return NodeEvent{}, false
}
