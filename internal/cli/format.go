package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/nicteam/nicteam/internal/api"
)

// formatSpeed spells a bit rate as Get-NetAdapter does: "20 Gbps".
func formatSpeed(bps uint64) string {
	units := []struct {
		div  float64
		name string
	}{{1e12, "Tbps"}, {1e9, "Gbps"}, {1e6, "Mbps"}, {1e3, "Kbps"}}
	for _, u := range units {
		if float64(bps) >= u.div {
			return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", float64(bps)/u.div), "0"), ".") + " " + u.name
		}
	}
	return fmt.Sprintf("%d bps", bps)
}

// writeList prints records the way PowerShell's list view does: one
// "Key : Value" line per property, keys padded, records apart by a blank line.
func writeList(w io.Writer, records [][][2]string) {
	width := 0
	for _, r := range records {
		for _, kv := range r {
			width = max(width, len(kv[0]))
		}
	}
	for i, r := range records {
		if i > 0 {
			fmt.Fprintln(w)
		}
		for _, kv := range r {
			fmt.Fprintf(w, "%-*s : %s\n", width, kv[0], kv[1])
		}
	}
}

func writeTeams(w io.Writer, ts []api.Team) {
	var recs [][][2]string
	for _, t := range ts {
		if t.Orphaned {
			recs = append(recs, [][2]string{
				{"Name", t.Name},
				{"TeamNics", t.TeamNics},
				{"Status", "Orphaned: made by nicteam, declared by no team; remove with nicteam rm " + t.Name},
			})
			continue
		}
		r := [][2]string{
			{"Name", t.Name},
			{"Members", "{" + strings.Join(t.Members, ", ") + "}"},
			{"TeamNics", t.TeamNics},
		}
		if t.TeamNicStatus != "" && t.TeamNicStatus != "Up" {
			r = append(r, [2]string{"TeamNicStatus", t.TeamNicStatus})
		}
		r = append(r, [][2]string{
			{"TeamingMode", t.TeamingMode.String()},
			{"LoadBalancingAlgorithm", t.LoadBalancingAlgorithm.String()},
		}...)
		if t.LacpTimer != nil {
			r = append(r, [2]string{"LacpTimer", t.LacpTimer.String()})
		}
		if t.FlowletGap != "" {
			r = append(r, [2]string{"FlowletGap", t.FlowletGap}, [2]string{"RebalanceInterval", t.RebalanceInterval})
		}
		recs = append(recs, append(r, [2]string{"DatapathFailover", boolString(t.DatapathFailover)}, [2]string{"Status", t.Status.String()}))
	}
	writeList(w, recs)
}

func writeMembers(w io.Writer, ms []api.Member) {
	var recs [][][2]string
	for _, m := range ms {
		recs = append(recs, [][2]string{
			{"Name", m.Name},
			{"Team", m.Team},
			{"AdministrativeMode", m.AdministrativeMode.String()},
			{"OperationalStatus", m.OperationalStatus.String()},
			{"FailureReason", m.FailureReason.String()},
			{"TransmitLinkSpeed", formatSpeed(m.TransmitLinkSpeed)},
			{"ReceiveLinkSpeed", formatSpeed(m.ReceiveLinkSpeed)},
		})
	}
	writeList(w, recs)
}

// writeLacp shows the team's LACP settings, then one record per member.
func writeLacp(w io.Writer, l api.Lacp) {
	recs := [][][2]string{{
		{"Team", l.Team},
		{"TeamingMode", l.TeamingMode.String()},
		{"LacpTimer", l.LacpTimer.String()},
		{"SystemPriority", fmt.Sprint(l.SystemPriority)},
		{"Key", fmt.Sprint(l.Key)},
		{"MinLinks", fmt.Sprint(l.MinLinks)},
		{"MalformedPdus", fmt.Sprint(l.Malformed)},
	}}
	info := func(who string, i api.LacpInfo) [][2]string {
		return [][2]string{
			{who + "System", fmt.Sprintf("%d,%s", i.SystemPriority, i.System)},
			{who + "Key", fmt.Sprint(i.Key)},
			{who + "Port", fmt.Sprintf("%d (priority %d)", i.Port, i.PortPriority)},
			{who + "State", fmt.Sprintf("0x%02x {%s}", i.State, strings.Join(i.StateBits, ", "))},
		}
	}
	for _, p := range l.Ports {
		r := [][2]string{{"Member", p.Member}, {"Selected", fmt.Sprint(p.Selected)}, {"Mux", p.Mux}, {"Receive", p.Receive}}
		r = append(r, info("Actor", p.Actor)...)
		recs = append(recs, append(r, info("Partner", p.Partner)...))
	}
	writeList(w, recs)
}

func writeAdapters(w io.Writer, as []api.Adapter) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Name\tInterfaceDescription\tifIndex\tStatus\tMacAddress\tLinkSpeed")
	fmt.Fprintln(tw, "----\t--------------------\t-------\t------\t----------\t---------")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", a.Name, a.InterfaceDescription, a.IfIndex, a.Status, a.MacAddress, formatSpeed(a.LinkSpeed))
	}
	tw.Flush()
}

func writePorts(w io.Writer, ps []api.Port) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MacAddress\tMember")
	fmt.Fprintln(tw, "----------\t------")
	for _, p := range ps {
		member := p.Member
		if member == "" {
			member = "(none carrying)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", p.MAC, member)
	}
	tw.Flush()
}

// eventTimeLayout has microseconds: failover is measured in them.
const eventTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

func writeEvent(w io.Writer, e api.Event) {
	line := fmt.Sprintf("%s  %-8s %-15s", e.Time.Format(eventTimeLayout), e.Team, e.Kind)
	if e.Member != "" {
		line += " " + e.Member
	}
	if e.Detail != "" {
		line += "  " + e.Detail
	}
	fmt.Fprintln(w, line)
}

// boolString spells a boolean as PowerShell prints one.
func boolString(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
