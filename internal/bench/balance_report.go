package bench

import (
	"fmt"
	"math"
	"strings"

	"github.com/nicteam/nicteam/internal/balance"
	"github.com/nicteam/nicteam/internal/datapath"
)

// writeBalance is the load-balancing figure's section of the report.
func writeBalance(b *strings.Builder, res *Results) {
	bl := res.Balance
	b.WriteString("## Load balancing across rate-limited members\n\n")
	fmt.Fprintf(b, "Command: `%s`; this figure alone: `go run ./cmd/nicteam-bench -only balance`.\n\n", res.Command)
	fmt.Fprintf(b, "A lab of its own: the host's NICs eth1..eth4 on the switch, each held to %.0f Mbit/s on the wire "+
		"by a token bucket on its egress (`tc qdisc add dev ethN root tbf rate %.0fmbit burst %s latency %s`). "+
		"For each run nicteamd creates a team of the first 2 or 4 of them with the algorithm under test, "+
		"and iperf3 sends N TCP flows (`-P N`, each from its own port) from the team to the peer for %s after %s "+
		"of warm-up that it discards; then the team is removed, so every run starts afresh. "+
		"The ratio is the TCP payload received over the ceiling, members × %.1f Mbit/s: the payload in %.0f Mbit/s "+
		"of full-sized frames (1448 of every 1514 bytes), which one flow through one member reaches. "+
		"The algorithms alternate run by run, so noise on the machine hits both; figures are medians of %d runs. "+
		"The sender's TCP congestion control is %s.\n\n",
		bl.RateMbit, bl.RateMbit, bl.Burst, bl.Latency, bl.Duration, bl.Omit, bl.CeilingMbit, bl.RateMbit, bl.RunsPerCase, bl.CongestionControl)
	b.WriteString("Reordering is what the receiver saw: its `TcpExtTCPOFOQueue` (segments, or batches GRO merged, " +
		"queued out of order) per 1000 segments sent (the sender's `TcpOutSegs`), from `nstat` in each namespace over " +
		"the whole run, warm-up included, since that is when Dynamic moves flows. A segment the token bucket drops " +
		"also leaves those after it out of order, so the sender's retransmissions stand beside it, and the " +
		"reorderings the sender itself detected " +
		"(`TcpExtTCPSACKReorder` + `TcpExtTCPTSReorder` + `TcpExtTCPRenoReorder`). *Expected* is TransportPorts' " +
		"average under a uniform hash, the members that some flow hashes to: 1 − (1 − 1/members)^flows.\n\n")
	fmt.Fprintf(b, "| members | flows | best possible | TransportPorts (expected) | Dynamic | Dynamic ≥ %.2f | "+
		"out of order per 1000, TransportPorts / Dynamic | reorderings the sender saw | retransmits | flows Dynamic moved | "+
		"reordering no worse |\n|---|---|---|---|---|---|---|---|---|---|---|\n", bl.Target)
	for _, c := range bl.Cases {
		target := "n/a (flows < members)"
		if c.TargetApplies {
			target = yesNo(c.Met)
		}
		tp, dy := c.TransportPorts, c.Dynamic
		fmt.Fprintf(b, "| %d | %d | %.3f | %.3f (%.3f) | %.3f | %s | %.2f / %.2f | %.0f / %.0f | %.0f / %.0f | %.0f | %s |\n",
			c.Members, c.Flows, c.Best, tp.Ratio, c.Expected, dy.Ratio, target,
			tp.OFOPer1000, dy.OFOPer1000, tp.SenderReorder, dy.SenderReorder, tp.Retransmits, dy.Retransmits,
			dy.FlowletMoves, yesNo(c.ReorderMet))
	}
	fmt.Fprintf(b, "\nTarget: Dynamic ≥ %.2f of the ceiling whenever flows ≥ members: %s%s. Reordering no worse than "+
		"TransportPorts (Dynamic's median at most %.1f per 1000 segments above it, the lab's own noise: veth hands "+
		"frames to per-CPU backlogs, so even a flow that never moves arrives out of order now and then): %s%s.\n\n",
		bl.Target, metText(bl.Met), failing(bl.Cases, func(c BalanceCase) bool { return c.Met }),
		bl.ReorderSlack, metText(bl.ReorderMet), failing(bl.Cases, func(c BalanceCase) bool { return c.ReorderMet }))
	writeBalanceRuns(b, bl)
	fmt.Fprintf(b, "What it means: TransportPorts keeps a flow on the member its addresses and ports hash to, so "+
		"flows collide: some members carry two flows while others idle, and the team gives its flows only the "+
		"busy members' rate, by luck of the ports (the *expected* column; each run draws new source ports). "+
		"Dynamic places a TCP connection when it sees it open: its SYN takes the next bucket in an order that "+
		"interleaves the members by their share of the table, so the N flows start on N different members "+
		"(or evenly on fewer) whatever their ports, and no flow has to move (*flows Dynamic moved*). A move is "+
		"for load that shifts later (flows that end, rates that change, flows that were running before the "+
		"team saw them open): every %s the daemon measures each bucket's load and moves buckets from members "+
		"above their share to those below, and a flow follows its bucket at its next pause longer than the "+
		"flowlet gap (%s). With fewer flows than members nothing that keeps a flow on one member (as both do, "+
		"to keep it in order) can do better than flows / members (*best possible*).\n\n",
		balance.DefaultInterval, datapath.DefaultFlowlet)
	fmt.Fprintf(b, "What bounds it: by construction the token buckets, not the CPU: %.0f Mbit/s per member is a few "+
		"percent of what a team forwards on this machine unshaped. Where Dynamic has to move flows it falls "+
		"short of the ceiling by the time that takes (a first reading of the counters, then a move %s later), "+
		"and by its tolerance: a member within %.0f%% of its share counts as balanced. "+
		"A move reorders a flow when its frames still wait in the old member's queue after the flowlet gap: the "+
		"gap, %s, is sized for NIC queues, but a token bucket queues up to %s, so a flow that pauses while its "+
		"member's queue is long can overtake its own frames: each flow moved then leaves some dozens of segments "+
		"out of order, once. A longer `--flowlet-gap` trades that for balance: a TCP flow that fills its member "+
		"rarely pauses for as long as the queue it builds, so with a gap near the token bucket's queue bound "+
		"flows stop moving and Dynamic does no better than TransportPorts. A member's queue on real hardware is its NIC ring "+
		"(tens to hundreds of µs) unless a switch port behind it congests. Placing connections as they open "+
		"avoids the trade-off for the flows it sees start; runs are %s long, and each opens its flows afresh.\n\n",
		bl.RateMbit, balance.DefaultInterval, balance.DefaultTolerance*100, datapath.DefaultFlowlet, bl.Latency, bl.Duration)
}

// writeBalanceRuns lists every run.
func writeBalanceRuns(b *strings.Builder, bl *Balance) {
	b.WriteString("Every run, in the order run (Mbit/s per member averaged over the whole run, warm-up included):\n\n" +
		"| run | members | flows | algorithm | Mbit/s | ratio | Mbit/s per member | out of order / segments | " +
		"retransmits | flows moved |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range bl.Runs {
		fmt.Fprintf(b, "| %d | %d | %d | %s | %.1f | %.3f | %s | %d / %d | %d | %d |\n",
			r.Run, r.Members, r.Flows, r.Algorithm, r.Mbit, r.Ratio, mbitList(r.MemberMbit),
			r.OFO, r.Segments, r.Retransmits, r.FlowletMoves)
	}
	b.WriteString("\n")
}

// failing names the cases where ok is false, as " (2 members, 4 flows; ...)".
func failing(cases []BalanceCase, ok func(BalanceCase) bool) string {
	var bad []string
	for _, c := range cases {
		if !ok(c) {
			bad = append(bad, fmt.Sprintf("%d members, %d flows", c.Members, c.Flows))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return " (" + strings.Join(bad, "; ") + ")"
}

// mbitList spells per-member rates as "191 / 190 / 0 / 0".
func mbitList(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, " / ")
}

// hashExpectation is the fraction of members that at least one of flows
// lands on when each flow picks one uniformly at random: what
// TransportPorts gives on average when each busy member is filled.
func hashExpectation(members, flows int) float64 {
	return 1 - math.Pow(1-1/float64(members), float64(flows))
}
