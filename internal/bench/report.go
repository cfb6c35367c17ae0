package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/nicteam/nicteam/internal/lab"
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
// against the targets, then each measured figure's runs and what it means.
func renderMarkdown(res *Results) string {
	var b strings.Builder
	b.WriteString("# nicteam benchmarks\n\n")
	b.WriteString("Written by nicteam-bench (`make bench`); do not edit by hand: rerun it.\n\n")
	writeSetup(&b, res)
	writeSummary(&b, res)
	if res.Throughput != nil {
		writeThroughput(&b, res.Throughput, res.Machine.CPUs)
	}
	if res.PPS != nil {
		writePPS(&b, res.PPS, res.Machine.CPUs)
	}
	if res.Failover != nil {
		writeFailover(&b, res.Failover)
	}
	if res.Control != nil {
		writeControl(&b, res.Control)
	}
	if res.Contention != nil {
		writeContention(&b, res.Contention)
	}
	if res.Balance != nil {
		writeBalance(&b, res)
	}
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
	fmt.Fprintf(b, "| Go, iperf3 | %s, %s |\n", m.Go, m.Iperf3)
	if m.OVS != "" {
		fmt.Fprintf(b, "| Open vSwitch | %s |\n", m.OVS)
	}
	b.WriteString("\n")
	if busy(m) {
		b.WriteString("The machine was busy with other work during the run (see the load average), so single " +
			"runs are noisier than on an idle machine.\n\n")
	}
	if res.Settings.Quick {
		b.WriteString("**Quick mode**: one iteration of each figure, a smoke test; the figures are not medians of anything.\n\n")
	}
	if len(res.Settings.Sections) < len(sections) {
		fmt.Fprintf(b, "Only some sections were measured: %s.\n\n", strings.Join(res.Settings.Sections, ", "))
	}
	if res.Lab.Prefix == "" {
		return // no section ran in the shared lab
	}
	fmt.Fprintf(b, "The lab is network namespaces on this machine: a host, a peer and a switch (a Linux bridge), "+
		"cabled with veth pairs. On the host, nicteamd runs `%s` = %s (SwitchIndependent, TransportPorts) "+
		"with %s; %s stays a plain NIC with %s; and Open vSwitch bonds %s as `%s` (%s, userspace "+
		"datapath, carrier detection) with %s on its bridge port `%s`. All five NICs are cabled to the same "+
		"switch. The peer holds %s, %s and %s on one NIC, so the destination address picks the path. "+
		"Everything is removed at the end.\n\n",
		teamName, strings.Join(teamMembers, " + "), lab.HostCIDRv4, plainNIC, plainCIDR, strings.Join(ovsMembers, " + "),
		ovsBond, ovsMode, ovsCIDR, ovsBridge, lab.PeerIPv4, plainPeer, ovsPeer)
}

func writeSummary(b *strings.Builder, res *Results) {
	b.WriteString("## Summary\n\n| figure | measured | target | met |\n|---|---|---|---|\n")
	if t := res.Throughput; t != nil {
		for _, c := range t.Cases {
			fmt.Fprintf(b, "| TCP, %s, %s: team / plain | %.3f (%.2f / %.2f Gbit/s) | ≥ %.2f | %s |\n",
				flowsText(c.Flows), c.Direction, c.Ratio, c.TeamGbps, c.PlainGbps, t.Target, yesNo(c.Met))
			fmt.Fprintf(b, "| TCP, %s, %s: team / OVS bond | %.1f (%.2f / %.2f Gbit/s) | ≥ %.0f | %s |\n",
				flowsText(c.Flows), c.Direction, c.OVSRatio, c.TeamGbps, c.OVSGbps, t.OVSTarget, yesNo(c.OVSMet))
		}
	}
	if p := res.PPS; p != nil {
		for _, d := range p.Directions {
			fmt.Fprintf(b, "| %d-byte UDP, %s: team / plain | %.3f (%.0f / %.0f kpps) | – | – |\n",
				p.PayloadBytes, d.Direction, d.Ratio, d.TeamKpps, d.PlainKpps)
		}
	}
	if f := res.Failover; f != nil {
		for _, bf := range f.Bonds {
			target, met := "–", "–"
			if bf.Bond == teamPath.name {
				target = fmt.Sprintf("≤ %d µs (max ≤ %d µs)", f.TargetUs, f.MaxTargetUs)
				met = yesNo(bf.Met)
			}
			fmt.Fprintf(b, "| failover outage at %d pps, %s, median of %d pulls | %.0f µs (max %d µs) | %s | %s |\n",
				f.PPS, pathText(bf.Bond), len(bf.Pulls), bf.MedianOutageUs, bf.MaxOutageUs, target, met)
		}
		for _, bf := range f.Bonds {
			if bf.Bond == teamPath.name {
				fmt.Fprintf(b, "| outages when the cable is plugged back, team | %d | 0 | %s |\n", bf.RestoreOutages, yesNo(bf.RestoreMet))
			}
		}
	}
	if c := res.Control; c != nil {
		for _, s := range c.Sizes {
			fmt.Fprintf(b, "| team of %d members: create until Up, remove until gone (medians) | %.1f ms, %.1f ms | – | – |\n",
				s.Members, s.Median.UpMs, s.Median.GoneMs)
		}
		fmt.Fprintf(b, "| nicteamd idle: RSS, CPU | %s, %s | – | – |\n", kib(c.Idle.RSSKiB), cpuText(c.Idle))
		fmt.Fprintf(b, "| nicteamd with a Dynamic team carrying %d flows: RSS, CPU | %s, %s | – | – |\n",
			rebalanceFlows, kib(c.Busy.RSSKiB), cpuText(c.Busy))
	}
	if c := res.Contention; c != nil {
		fmt.Fprintf(b, "| failover reaction with %d API clients listing, %d interfaces: hammered / idle median | %.2f (%.0f / %.0f µs) | ≤ %.0f | %s |\n",
			c.Clients, c.Interfaces, c.Ratio, c.Loads[1].MedianUs, c.Loads[0].MedianUs, c.Target, yesNo(c.Met))
	}
	if bl := res.Balance; bl != nil {
		fmt.Fprintf(b, "| rate-limited members, flows ≥ members: Dynamic / ceiling | worst case %.3f | ≥ %.2f | %s |\n",
			bl.worstDynamic(), bl.Target, yesNo(bl.Met))
		fmt.Fprintf(b, "| rate-limited members: Dynamic's reordering against TransportPorts' | see the figure | no worse | %s |\n",
			yesNo(bl.ReorderMet))
	}
	b.WriteString("\n")
}

func flowsText(n int) string {
	if n == 1 {
		return "1 flow"
	}
	return fmt.Sprintf("%d flows", n)
}

// pathText names a path (or a bond of the failover figure) for people.
func pathText(name string) string {
	switch name {
	case ovsPath.name:
		return "OVS bond"
	case plainPath.name:
		return "plain NIC"
	}
	return name
}

func writeThroughput(b *strings.Builder, t *Throughput, cpus int) {
	b.WriteString("## TCP throughput\n\n")
	fmt.Fprintf(b, "iperf3, 1 and 8 TCP flows (`-P 8`), %s per run after %s of warm-up that iperf3 discards (`-O`); "+
		"in each iteration the team, the plain NIC and the OVS bond run back to back, each iteration starting "+
		"with the next, so noise on the machine hits all three. The rate is the receiver's.\n\n", t.Duration, t.Omit)
	if t.Plot != "" {
		fmt.Fprintf(b, "![TCP throughput medians: team, plain NIC, OVS bond](%s)\n\n", t.Plot)
	}
	for _, c := range t.Cases {
		fmt.Fprintf(b, "### %s, %s\n\n", flowsText(c.Flows), c.Direction)
		b.WriteString("| run | team Gbit/s | team's busiest member | plain Gbit/s | OVS bond Gbit/s | retransmits team / plain / OVS |\n" +
			"|---|---|---|---|---|---|\n")
		for _, g := range groupRuns(c.Runs, func(r TCPRun) (int, string) { return r.Run, r.Path }) {
			tm, pl, ovs := g[teamPath.name], g[plainPath.name], g[ovsPath.name]
			fmt.Fprintf(b, "| %d | %.2f | %s | %.2f | %.2f | %d / %d / %d |\n", tm.Run, tm.Gbps, memberText(tm),
				pl.Gbps, ovs.Gbps, tm.Retransmits, pl.Retransmits, ovs.Retransmits)
		}
		fmt.Fprintf(b, "| **median** | **%.2f** | | **%.2f** | **%.2f** | |\n\n", c.TeamGbps, c.PlainGbps, c.OVSGbps)
		fmt.Fprintf(b, "team / plain = **%.3f**; target ≥ %.2f: %s. team / OVS bond = **%.1f**; target ≥ %.0f: %s.\n\n",
			c.Ratio, t.Target, metText(c.Met), c.OVSRatio, t.OVSTarget, metText(c.OVSMet))
		if c.Flows == 1 {
			writeByMember(b, c)
		}
	}
	writeOffloads(b, t.Offloads)
	b.WriteString("The OVS bond needs transmit checksumming off on the switch ports facing its members: Open vSwitch's " +
		"userspace datapath reads the members with AF_PACKET and passes on frames as it gets them, and a frame the " +
		"peer's TCP sent through veths and a bridge is a GSO frame of up to 64 KiB whose checksum an offload is " +
		"to fill in later, which OVS neither does nor asks for. With the offload off the kernel segments and " +
		"checksums each frame before it crosses the cable, as a NIC on a physical wire would have. The other way " +
		"needs nothing, since OVS asks for no offloads on its bridge port (a tap), so the host's stack hands it " +
		"finished MTU-sized frames. The team and the plain NIC keep every offload.\n\n")
	caseDir := func(c ThroughputCase) string { return c.Direction }
	ratio := func(c ThroughputCase) string { return fmt.Sprintf("%.2f×", c.Ratio) }
	least, most := math.Inf(1), 0.0
	for _, c := range t.Cases {
		least, most = min(least, c.OVSRatio), max(most, c.OVSRatio)
	}
	fmt.Fprintf(b, "What it means: a single TCP connection through the team gets %s of what it gets through a "+
		"plain NIC, and 8 connections together get %s. A flow always leaves by one member, so that it "+
		"is never reordered: one flow gets at most one member's bandwidth, and the team adds capacity "+
		"only across flows, which the 8 flows spread over both members (the busiest member's share is "+
		"shown). What the team adds to each frame is one eBPF program run and one redirect "+
		"(on the team NIC's egress when sending, on the member's ingress when receiving). The frames "+
		"are the up to 64 KiB GSO frames TCP built, never cut to MTU size on the way (through veth, the "+
		"bridge and the redirect), so that cost is paid per 64 KiB, not per 1500 bytes; on hardware the "+
		"member's TSO and GRO play that part. The OVS bond forwards every frame through a userspace process "+
		"one MTU-sized frame at a time, so the team carries %.0f to %.0f times what it does.\n\n",
		roleText(pickCases(t.Cases, 1), caseDir, ratio), roleText(pickCases(t.Cases, 8), caseDir, ratio), least, most)
	fmt.Fprintf(b, "What bounds it: CPU, not a wire. Sender, receiver and all softirq work share %d cores, "+
		"and the paths are veth pairs and a bridge, so single runs vary by tens of percent with whatever "+
		"else the machine does (see the load average); the medians of alternated runs are what to compare. "+
		"With 8 flows both cores are busy whichever way the frames go, so the 8-flow figures say what the "+
		"team costs when the CPU is the bottleneck, not what two links add. On real NICs line rate bounds "+
		"the team and the plain NIC alike, and the ratio is what carries over; the OVS bond stays bound by "+
		"its per-frame userspace work unless OVS is given DPDK or AF_XDP and cores of its own.\n\n", cpus)
}

// pickCases returns the cases of n flows.
func pickCases(cs []ThroughputCase, n int) []ThroughputCase {
	var out []ThroughputCase
	for _, c := range cs {
		if c.Flows == n {
			out = append(out, c)
		}
	}
	return out
}

// memberText is a run's busiest member, with its share when it did not
// carry (nearly) all of it.
func memberText(r TCPRun) string {
	if r.Member == "" || r.Share >= 0.99 {
		return r.Member
	}
	return fmt.Sprintf("%s (%.0f%%)", r.Member, 100*r.Share)
}

// writeByMember splits the team's ratio by the member that sent: on eth1,
// the primary, frames leave as they are; on eth2 the program replaces the
// source MAC with eth2's own, which costs a copy of the frame's head when
// TCP's frame is a clone (as locally sent TCP frames are).
func writeByMember(b *strings.Builder, c ThroughputCase) {
	team, plain := map[string][]float64{}, []float64{}
	for _, r := range c.Runs {
		switch r.Path {
		case teamPath.name:
			team[r.Member] = append(team[r.Member], r.Gbps)
		case plainPath.name:
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

// groupRuns groups runs by iteration, in the order run, each by path.
func groupRuns[R any](runs []R, key func(R) (int, string)) []map[string]R {
	by := map[int]map[string]R{}
	var order []int
	for _, r := range runs {
		n, p := key(r)
		if by[n] == nil {
			by[n] = map[string]R{}
			order = append(order, n)
		}
		by[n][p] = r
	}
	groups := make([]map[string]R, 0, len(order))
	for _, n := range order {
		groups = append(groups, by[n])
	}
	return groups
}

func writeOffloads(b *strings.Builder, offs []Offloads) {
	if len(offs) == 0 {
		return
	}
	b.WriteString("Offloads during the runs (`ethtool -k`; on the host unless a switch port):\n\n| interface |")
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
	fmt.Fprintf(b, "nicteam-seqstream sends %d UDP packets per second from the host to the peer, through the team "+
		"or through the OVS bond; pulls alternate between the two. The member carrying the stream (the team's "+
		"member whose transmit counter grows, the OVS bond's active member) loses its cable (its switch port is set down), stays out %s, and is plugged "+
		"back; the stream goes on until the team is Up again (the OVS bond has both members enabled) and %v "+
		"more. An outage is the gap the receiver saw between the last packet before lost ones and the first "+
		"after them; those starting before the midpoint between pull and restore belong to the pull, the "+
		"others to the restore. Gaps that late packets filled are reordering, not outages. *Lost time* is the "+
		"missing packets at the stream's rate, the outage by the sender's clock; *reacted after* is when, "+
		"after the pull, nicteamd logged moving the pulled member's buckets to the other member (OVS logs "+
		"its reaction to the millisecond only, so it is not shown).\n\n", f.PPS, f.Down, tail)
	if f.Plot != "" {
		fmt.Fprintf(b, "![Share of the stream delivered around the median pull, team and OVS bond](%s)\n\n", f.Plot)
		fmt.Fprintf(b, "The plot follows the stream across the pull with the median outage of each bond: its "+
			"packets in blocks of %d, %s's worth, each block placed at when its first packet was sent and "+
			"drawn as the share of it that arrived. Counted by sequence number, neither the receiver's nor "+
			"the sender's scheduling moves a packet to another block, so a dip is loss and nothing else; a "+
			"dip just before the pull is packets that were still on their way when the cable went.\n\n",
			binSeqs(f.PPS), traceBin)
	}
	for _, bf := range f.Bonds {
		writeBondPulls(b, f, &bf)
	}
	team := f.bond(teamPath.name)
	ovs := f.bond(ovsPath.name)
	if team == nil {
		return
	}
	interval := 1e6 / float64(f.PPS)
	fmt.Fprintf(b, "What it means: when the cable of the member carrying a flow is pulled, that flow stops "+
		"for about %.0f µs (median of %d pulls; the worst %d µs) and loses about %.0f packets at this rate; "+
		"flows hashed to the other member are not moved. The stop lasts from the kernel's carrier loss until "+
		"the daemon has rewritten the bucket table, moving only the dead member's buckets (median %.0f µs "+
		"here); frames hashed to the dead member in between are dropped, so the lost time follows the "+
		"daemon's reaction. Plugging the cable back should cost nothing, and the outages on restore say "+
		"whether it did: the buckets move back only after the kernel has activated the member and reported it.",
		team.MedianOutageUs, len(team.Pulls), team.MaxOutageUs, team.MedianMissing, team.MedianMovedAfterUs)
	if ovs != nil {
		fmt.Fprintf(b, " The OVS bond, told of the same carrier loss by the same kernel, stops the stream for "+
			"%.0f µs in the median (worst %d µs): ovs-vswitchd has to notice the link change in its main loop, "+
			"pick the other member as active and revalidate the datapath flows that send to the dead one, "+
			"and the frames queued in its userspace path when the cable went are lost with it. On a busy "+
			"machine its userspace forwarding also drops packets of its own at this rate, which shows as "+
			"outages on restore and as missing packets far beyond the outage.",
			ovs.MedianOutageUs, ovs.MaxOutageUs)
	}
	b.WriteString("\n\n")
	fmt.Fprintf(b, "What bounds it: the outage is resolved to one packet interval (%.0f µs at %d pps). The "+
		"daemon's reaction is a netlink notification, a wake-up of a Go process and a map write, so on a "+
		"busy machine scheduling delay dominates it, which the maximum shows (the sender busy-waits "+
		"between packets and so occupies a core itself). Arrival times are the kernel's receive "+
		"timestamps, so the receiver's own scheduling does not enter the gap; the sender's does: a sender "+
		"kept off its core for a while sends nothing, and then catches up, which shows as a long gap with "+
		"few or no packets missing. Lost time, by the sender's schedule, has no such error, though a stall "+
		"across the pull can hide loss. The lab pulls a veth cable, whose carrier "+
		"loss the kernel reports at once. A physical NIC first has to notice the loss of signal (its "+
		"driver and PHY take milliseconds or more), and the kernel's link watcher may hold back the report "+
		"of a device that is not a bond or team port by up to a second after the previous link event: on "+
		"hardware the outage is at least that detection time, which no teaming software can shorten.\n\n",
		interval, f.PPS)
}

// bond returns the pulls of the bond called name, or nil.
func (f *Failover) bond(name string) *BondFailover {
	for i := range f.Bonds {
		if f.Bonds[i].Bond == name {
			return &f.Bonds[i]
		}
	}
	return nil
}

// writeBondPulls is the table of one bond's pulls and its verdict.
func writeBondPulls(b *strings.Builder, f *Failover, bf *BondFailover) {
	fmt.Fprintf(b, "### %s\n\n", pathText(bf.Bond))
	b.WriteString("| pull | member | longest outage µs | missing packets | lost time µs | reacted after µs | " +
		"outages on restore | Up after restore ms | sender pps |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range bf.Pulls {
		reacted := "–"
		if p.MovedAfterUs != 0 {
			reacted = strconv.FormatInt(p.MovedAfterUs, 10)
		}
		fmt.Fprintf(b, "| %d | %s | %d | %d | %d | %s | %d | %.1f | %.0f |\n",
			p.Pull, p.Member, p.OutageUs, p.Missing, p.LostUs, reacted, p.RestoreOutages, p.UpAfterMs, p.SentPPS)
	}
	reacted := "–"
	if bf.MedianMovedAfterUs != 0 {
		reacted = fmt.Sprintf("**%.0f**", bf.MedianMovedAfterUs)
	}
	fmt.Fprintf(b, "| **median** | | **%.0f** | **%.0f** | **%.0f** | %s | | | |\n",
		bf.MedianOutageUs, bf.MedianMissing, bf.MedianLostUs, reacted)
	fmt.Fprintf(b, "| **max** | | **%d** | **%d** | | | | | |\n\n", bf.MaxOutageUs, bf.MaxMissing)
	if bf.Bond == teamPath.name {
		fmt.Fprintf(b, "Median outage %.0f µs, longest %d µs; target ≤ %d µs, longest ≤ %d µs: %s. ",
			bf.MedianOutageUs, bf.MaxOutageUs, f.TargetUs, f.MaxTargetUs, metText(bf.Met))
		fmt.Fprintf(b, "Outages on restore: %d; target 0: %s. ", bf.RestoreOutages, metText(bf.RestoreMet))
	} else {
		fmt.Fprintf(b, "Median outage %.0f µs, longest %d µs. Outages on restore: %d. ",
			bf.MedianOutageUs, bf.MaxOutageUs, bf.RestoreOutages)
	}
	fmt.Fprintf(b, "%s\n\n", keptUpText(f.PPS, bf.Pulls))
}

// keptUpText says whether the sender held the stream's rate: if it fell
// behind, the machine was too busy and missing packets understate the
// outage.
func keptUpText(pps uint64, pulls []Pull) string {
	slow := 0
	for _, p := range pulls {
		if p.SentPPS < 0.95*float64(pps) {
			slow++
		}
	}
	if slow == 0 {
		return "The sender held its rate in every pull."
	}
	return fmt.Sprintf("**The sender fell more than 5%% behind its rate in %d of %d pulls**: the machine was too busy for this rate, and missing packets understate those outages.", slow, len(pulls))
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
