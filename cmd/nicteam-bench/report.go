package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// renderJSON is the results file beside the report.
func renderJSON(res *Results) ([]byte, error) {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return append(b, '\n'), nil
}

// renderMarkdown is the report: where and how it was measured, a summary
// against the targets, then each figure's runs and what it means.
func renderMarkdown(res *Results) string {
	var b strings.Builder
	b.WriteString("# nicteam benchmarks\n\n")
	b.WriteString("Written by nicteam-bench (`make bench`); do not edit by hand: rerun it.\n\n")
	writeSetup(&b, res)
	if compared(res) {
		writeSummary(&b, res)
		writeThroughput(&b, &res.Throughput, res.Machine.CPUs)
		writeFailover(&b, &res.Failover)
	}
	writeBalance(&b, res)
	return b.String()
}

func writeSetup(b *strings.Builder, res *Results) {
	m := res.Machine
	fmt.Fprintf(b, "Command: `%s`  \nDate: %s\n\n", res.Command, res.Date.Format("2006-01-02 15:04:05 MST"))
	b.WriteString("| machine | |\n|---|---|\n")
	fmt.Fprintf(b, "| kernel | %s |\n", m.Kernel)
	fmt.Fprintf(b, "| CPU | %s |\n", m.CPU)
	fmt.Fprintf(b, "| CPUs (nproc) | %d |\n", m.CPUs)
	fmt.Fprintf(b, "| memory | %.1f GiB |\n", m.MemoryGiB)
	fmt.Fprintf(b, "| load average 1/5/15 min, before → after | %s → %s |\n", m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(b, "| Go, iperf3 | %s, %s |\n\n", m.Go, m.Iperf3)
	if busy(m) {
		b.WriteString("The machine was busy with other work during the run (see the load average), so single " +
			"runs are noisier than on an idle machine.\n\n")
	}
	if res.Settings.Quick {
		b.WriteString("**Quick mode**: one iteration of each figure, a smoke test; the figures are not medians of anything.\n\n")
	}
	if !compared(res) {
		return
	}
	fmt.Fprintf(b, "The lab is network namespaces on this machine: a host, a peer and a switch (a Linux bridge), "+
		"cabled with veth pairs. On the host, nicteamd runs `%s` = %s (SwitchIndependent, TransportPorts) "+
		"with 10.77.0.1/24, and %s stays a plain NIC with %s; the peer holds 10.77.0.2 and %s on one NIC, "+
		"so the destination address picks the path. Everything is removed at the end.\n\n",
		teamName, strings.Join(teamMembers, " + "), plainNIC, plainCIDR, plainPeer)
}

// compared says whether the run measured the team against the plain NIC
// (throughput and failover), which -only skips.
func compared(res *Results) bool { return len(res.Throughput.Directions) > 0 }

func writeSummary(b *strings.Builder, res *Results) {
	b.WriteString("## Summary\n\n| figure | measured | target | met |\n|---|---|---|---|\n")
	for _, d := range res.Throughput.Directions {
		fmt.Fprintf(b, "| single-flow TCP, %s: team / plain | %.3f (%.2f / %.2f Gbit/s) | ≥ %.2f | %s |\n",
			d.Direction, d.Ratio, d.TeamGbps, d.PlainGbps, res.Throughput.Target, yesNo(d.Met))
	}
	f := &res.Failover
	fmt.Fprintf(b, "| failover outage at %d pps, median of %d pulls | %.0f µs (max %d µs) | ≤ %d µs | %s |\n",
		f.PPS, len(f.Pulls), f.MedianOutageUs, f.MaxOutageUs, f.TargetUs, yesNo(f.Met))
	fmt.Fprintf(b, "| outages when the cable is plugged back | %d | 0 | %s |\n\n", f.RestoreOutages, yesNo(f.RestoreMet))
}

func writeThroughput(b *strings.Builder, t *Throughput, cpus int) {
	b.WriteString("## Single-flow TCP throughput\n\n")
	fmt.Fprintf(b, "iperf3, one TCP flow, %s per run after %s of warm-up that iperf3 discards (`-O`); "+
		"in each iteration the team and the plain NIC run back to back, so noise on the machine hits both. "+
		"The rate is the receiver's.\n\n", t.Duration, t.Omit)
	for _, d := range t.Directions {
		fmt.Fprintf(b, "### %s\n\n", d.Direction)
		b.WriteString("| run | team Gbit/s | team's busiest member | plain Gbit/s | team retransmits | plain retransmits |\n|---|---|---|---|---|---|\n")
		for _, pair := range runPairs(d.Runs) {
			fmt.Fprintf(b, "| %d | %.2f | %s | %.2f | %d | %d |\n",
				pair[0].Run, pair[0].Gbps, pair[0].Member, pair[1].Gbps, pair[0].Retransmits, pair[1].Retransmits)
		}
		fmt.Fprintf(b, "| **median** | **%.2f** | | **%.2f** | | |\n\n", d.TeamGbps, d.PlainGbps)
		fmt.Fprintf(b, "team / plain = **%.3f**; target ≥ %.2f: %s.\n\n", d.Ratio, t.Target, metText(d.Met))
		writeByMember(b, d)
	}
	writeOffloads(b, t.Offloads)
	send, recv := t.Directions[0], t.Directions[len(t.Directions)-1]
	fmt.Fprintf(b, "What it means: a single TCP connection through the team gets %.2f× (sending) and %.2f× "+
		"(receiving) of what it gets through a plain NIC. A flow always leaves by one member, so that it "+
		"is never reordered: one flow gets at most one member's bandwidth, and the team adds capacity "+
		"only across flows. What the team adds to each frame is one eBPF program run and one redirect "+
		"(on the team NIC's egress when sending, on the member's ingress when receiving). The frames "+
		"are the up to 64 KiB GSO frames TCP built, never cut to MTU size on the way (through veth, the "+
		"bridge and the redirect), so that cost is paid per 64 KiB, not per 1500 bytes; on hardware the "+
		"member's TSO and GRO play that part. Were TSO/GSO off on the team NIC, TCP would segment in "+
		"software and the team would lose far more than the program costs.\n\n", send.Ratio, recv.Ratio)
	fmt.Fprintf(b, "What bounds it: CPU, not a wire. Sender, receiver and all softirq work share %d cores, "+
		"and the paths are veth pairs and a bridge, so single runs vary by tens of percent with whatever "+
		"else the machine does (see the load average); the medians of alternated runs are what to compare. "+
		"On real NICs line rate bounds both paths alike, and the ratio is what carries over.\n\n", cpus)
}

// writeByMember splits the team's ratio by the member that sent: on eth1,
// the primary, frames leave as they are; on eth2 the program replaces the
// source MAC with eth2's own, which costs a copy of the frame's head when
// TCP's frame is a clone (as locally sent TCP frames are).
func writeByMember(b *strings.Builder, d DirectionResult) {
	team, plain := map[string][]float64{}, []float64{}
	for _, r := range d.Runs {
		if r.Path == "team" {
			team[r.Member] = append(team[r.Member], r.Gbps)
		} else {
			plain = append(plain, r.Gbps)
		}
	}
	if len(team) < 2 || median(plain) == 0 {
		return
	}
	b.WriteString("By the member the team sent on:")
	for _, m := range teamMembers {
		if len(team[m]) > 0 {
			fmt.Fprintf(b, " %s %d runs, median %.2f Gbit/s (%.3f of plain);", m, len(team[m]), median(team[m]), median(team[m])/median(plain))
		}
	}
	b.WriteString(" eth1 is the primary; on eth2 each frame's source MAC is replaced with eth2's own.\n\n")
}

// runPairs groups runs into (team, plain) pairs of the same iteration.
func runPairs(runs []TCPRun) [][2]TCPRun {
	by := map[int]*[2]TCPRun{}
	var order []int
	for _, r := range runs {
		p, ok := by[r.Run]
		if !ok {
			p = &[2]TCPRun{}
			by[r.Run] = p
			order = append(order, r.Run)
		}
		if r.Path == "team" {
			p[0] = r
		} else {
			p[1] = r
		}
	}
	pairs := make([][2]TCPRun, 0, len(order))
	for _, n := range order {
		pairs = append(pairs, *by[n])
	}
	return pairs
}

func writeOffloads(b *strings.Builder, offs []Offloads) {
	if len(offs) == 0 {
		return
	}
	b.WriteString("Offloads during the runs (`ethtool -k` on the host):\n\n| interface |")
	for _, f := range offloadFeatures {
		fmt.Fprintf(b, " %s |", f)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(offloadFeatures)) + "\n")
	for _, o := range offs {
		fmt.Fprintf(b, "| %s |", o.Interface)
		for _, f := range offloadFeatures {
			v := o.Features[f]
			if v == "" {
				v = "–"
			}
			fmt.Fprintf(b, " %s |", v)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func writeFailover(b *strings.Builder, f *Failover) {
	b.WriteString("## Failover outage\n\n")
	fmt.Fprintf(b, "nicteam-seqstream sends %d UDP packets per second from the host through the team to the peer. "+
		"The member carrying the stream (the one whose transmit counter grows) loses its cable "+
		"(its switch port is set down), stays out %s, and is plugged back; the stream goes on until the "+
		"daemon reports the team Up and %v more. An outage is the gap the receiver saw between the last "+
		"packet before lost ones and the first after them; those starting before the midpoint between "+
		"pull and restore belong to the pull, the others to the restore. Gaps that late packets filled "+
		"are reordering, not outages. *Lost time* is the missing packets at the stream's rate, the "+
		"outage by the sender's clock; *buckets moved* is when, after the pull, the daemon logged moving "+
		"the pulled member's buckets to the other member.\n\n", f.PPS, f.Down, tail)
	b.WriteString("| pull | member | longest outage µs | missing packets | lost time µs | buckets moved after µs | " +
		"outages on restore | team Up after restore ms | sender pps |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range f.Pulls {
		fmt.Fprintf(b, "| %d | %s | %d | %d | %d | %d | %d | %.1f | %.0f |\n",
			p.Pull, p.Member, p.OutageUs, p.Missing, p.LostUs, p.MovedAfterUs, p.RestoreOutages, p.UpAfterMs, p.SentPPS)
	}
	fmt.Fprintf(b, "| **median** | | **%.0f** | **%.0f** | **%.0f** | **%.0f** | | | |\n",
		f.MedianOutageUs, f.MedianMissing, f.MedianLostUs, f.MedianMovedAfterUs)
	fmt.Fprintf(b, "| **max** | | **%d** | **%d** | | | | | |\n\n", f.MaxOutageUs, f.MaxMissing)
	fmt.Fprintf(b, "Median outage %.0f µs; target ≤ %d µs: %s. Outages on restore: %d; target 0: %s. %s\n\n",
		f.MedianOutageUs, f.TargetUs, metText(f.Met), f.RestoreOutages, metText(f.RestoreMet), keptUpText(f))
	interval := 1e6 / float64(f.PPS)
	fmt.Fprintf(b, "What it means: when the cable of the member carrying a flow is pulled, that flow stops "+
		"for about %.0f µs (median of %d pulls; the worst %d µs) and loses about %.0f packets at this rate; "+
		"flows hashed to the other member are not moved. The stop lasts from the kernel's carrier loss until "+
		"the daemon has rewritten the bucket table, moving only the dead member's buckets (median %.0f µs "+
		"here); frames hashed to the dead member in between are dropped, so the lost time follows the "+
		"daemon's reaction. Plugging the cable back should cost nothing, and the outages on restore say "+
		"whether it did: the buckets move back only after the kernel has activated the member and reported it.\n\n",
		f.MedianOutageUs, len(f.Pulls), f.MaxOutageUs, f.MedianMissing, f.MedianMovedAfterUs)
	fmt.Fprintf(b, "What bounds it: the outage is resolved to one packet interval (%.0f µs at %d pps). The "+
		"daemon's reaction is a netlink notification, a wake-up of a Go process and a map write, so on a "+
		"busy machine scheduling delay dominates it, which the maximum shows (the sender busy-waits "+
		"between packets and so occupies a core itself). The receiver's timing has the same noise: "+
		"it blocks while nothing arrives, so its wake-up latency lengthens the gap it times, and one "+
		"that has fallen behind reads queued packets in a burst and sees the gap shorter. Lost time, by the "+
		"sender's clock, has neither error as long as the sender holds its rate. The lab pulls a veth cable, whose carrier "+
		"loss the kernel reports at once. A physical NIC first has to notice the loss of signal (its "+
		"driver and PHY take milliseconds or more), and the kernel's link watcher may hold back the report "+
		"of a device that is not a bond or team port by up to a second after the previous link event: on "+
		"hardware the outage is at least that detection time, which no teaming software can shorten.\n",
		interval, f.PPS)
}

// keptUpText says whether the sender held the stream's rate: if it fell
// behind, the machine was too busy and missing packets understate the
// outage.
func keptUpText(f *Failover) string {
	slow := 0
	for _, p := range f.Pulls {
		if p.SentPPS < 0.95*float64(f.PPS) {
			slow++
		}
	}
	if slow == 0 {
		return "The sender held its rate in every pull."
	}
	return fmt.Sprintf("**The sender fell more than 5%% behind its rate in %d of %d pulls**: the machine was too busy for this rate, and missing packets understate those outages.", slow, len(f.Pulls))
}

// busy says whether the load before the run shows other work: a 1-minute
// load average of half a runnable task per CPU or more.
func busy(m Machine) bool {
	f := strings.Fields(m.LoadBefore)
	if len(f) == 0 || m.CPUs == 0 {
		return false
	}
	load, err := strconv.ParseFloat(f[0], 64)
	return err == nil && load >= 0.5*float64(m.CPUs)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func metText(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}
